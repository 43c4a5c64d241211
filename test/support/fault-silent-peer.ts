// A TCP server on loopback that accepts connections and then says nothing and reads nothing: a
// gRPC endpoint or data port whose process hangs, or a middlebox that swallows traffic.
import net from "node:net";
import { once } from "node:events";

export interface SilentPeer {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Idempotent. */
  close(): Promise<void>;
}

export async function startSilentPeer(): Promise<SilentPeer> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  // pauseOnConnect: not even the kernel's buffers drain into this process, so a sender's writes
  // back up exactly as they would against a peer that stopped reading.
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on("error", () => undefined);
    s.on("close", () => sockets.delete(s));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  let closing: Promise<void> | undefined;
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close() {
      closing ??= (async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => server.close(() => r()));
      })();
      return closing;
    },
  };
}
