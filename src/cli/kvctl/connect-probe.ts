// Why a node could not be reached, told from one TCP connection attempt of our own: grpc-js reports
// a refused connection, an unknown host and a silent address alike as UNAVAILABLE, and only the
// socket's error code (ECONNREFUSED, ENOTFOUND...) tells them apart without reading prose.
import net from "node:net";
import { parseHostPort } from "../../roles/host-port.js";

export type ConnectOutcome =
  /** Something accepted the connection: the address is right, what listens there is not a kvbridge node (or it hung up). */
  | { kind: "connected" }
  /** Nothing listens on that port (the host answered with a reset). */
  | { kind: "refused" }
  /** The host name does not resolve. */
  | { kind: "unresolved"; code: string }
  /** No route to the host or network. */
  | { kind: "unreachable"; code: string }
  /** No answer at all within the bound (a firewall dropping packets, a host that is down). */
  | { kind: "timeout" }
  | { kind: "other"; code: string };

const UNRESOLVED = new Set(["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME", "EAI_FAIL"]);
const UNREACHABLE = new Set(["EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN", "EADDRNOTAVAIL"]);

/** One bounded connection attempt to `address` (host:port). Never throws. */
export function probeConnect(address: string, timeoutMs: number): Promise<ConnectOutcome> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseHostPort(address, "node address"));
  } catch {
    return Promise.resolve({ kind: "other", code: "EINVAL" });
  }
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const finish = (o: ConnectOutcome): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    socket.once("connect", () => finish({ kind: "connected" }));
    socket.once("error", (err: NodeJS.ErrnoException) => {
      const code = err.code ?? "UNKNOWN";
      if (code === "ECONNREFUSED") finish({ kind: "refused" });
      else if (UNRESOLVED.has(code)) finish({ kind: "unresolved", code });
      else if (UNREACHABLE.has(code)) finish({ kind: "unreachable", code });
      else finish({ kind: "other", code });
    });
  });
}
