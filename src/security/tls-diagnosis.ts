// Why a connection to a node failed, when TLS is the reason. grpc-js reports a plaintext client at a
// TLS server, or a certificate the server refused, as a bare "Failed to connect"; one bounded TLS
// handshake of our own against the same address tells which side is misconfigured and how.
import net from "node:net";
import tls from "node:tls";
import type { TlsMaterial } from "./tls-material.js";

export interface TlsDiagnosis {
  /**
   * "server-requires-tls": we are plaintext, the node speaks TLS. "server-is-plaintext": we use TLS,
   * the node does not. "server-untrusted": the node's certificate does not verify against our CA or
   * does not carry the expected name. "client-refused": the node refused our certificate.
   */
  kind: "server-requires-tls" | "server-is-plaintext" | "server-untrusted" | "client-refused";
  /** One sentence: what is wrong and what to do. */
  message: string;
}

/** Certificate verification errors of node:tls (OpenSSL's X509_V_ERR names). */
const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** OpenSSL's text when the other end does not speak TLS at all. */
const NOT_TLS = /wrong version number|packet length too long|unknown protocol|record layer failure|http request/i;
/** TLS alerts a server sends when it rejects the client's certificate (or the lack of one). */
const CLIENT_REFUSED = /alert (unknown ca|bad certificate|certificate required|certificate unknown|certificate expired|certificate revoked|unsupported certificate|access denied|handshake failure)/i;

/** How long after the handshake a TLS 1.3 server's rejection of our certificate may take to arrive. */
const ALERT_WAIT_MS = 300;

function parseHostPort(target: string): { host: string; port: number } | undefined {
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(target.replace(/^dns:(\/\/\/)?/, ""));
  if (!m) return undefined;
  return { host: m[1]!, port: Number(m[2]) };
}

/** After our handshake: the node spoke (accepted us), stayed quiet, or hung up (refused our certificate). */
type ProbeOutcome = { kind: "handshake"; after: "spoke" | "quiet" | "closed" } | { kind: "error"; err: NodeJS.ErrnoException } | { kind: "timeout" };

function probe(host: string, port: number, material: TlsMaterial | undefined, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise<ProbeOutcome>((resolve) => {
    const expected = material?.serverName ?? host;
    const socket = tls.connect({
      host,
      port,
      ALPNProtocols: ["h2"],
      servername: net.isIP(expected) ? undefined : expected,
      ...(material
        ? { cert: material.cert, key: material.key, ca: material.ca, rejectUnauthorized: true, checkServerIdentity: (_h: string, c: tls.PeerCertificate) => tls.checkServerIdentity(expected, c) }
        : // Plaintext caller: only asking whether the node speaks TLS, so its certificate is not judged.
          { rejectUnauthorized: false }),
    });
    let settled = false;
    let handshaken = false;
    const finish = (o: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish(handshaken ? { kind: "handshake", after: "quiet" } : { kind: "timeout" }), timeoutMs);
    socket.once("secureConnect", () => {
      handshaken = true;
      // TLS 1.3: the server checks our certificate after we consider the handshake done; its
      // verdict is its first bytes (gRPC's HTTP/2 SETTINGS), an alert, or hanging up.
      clearTimeout(timer);
      setTimeout(() => finish({ kind: "handshake", after: "quiet" }), ALERT_WAIT_MS).unref();
    });
    socket.on("data", () => finish({ kind: "handshake", after: "spoke" }));
    socket.once("error", (err: NodeJS.ErrnoException) => finish({ kind: "error", err }));
    socket.once("close", () =>
      finish(handshaken ? { kind: "handshake", after: "closed" } : { kind: "error", err: Object.assign(new Error("connection closed during the TLS handshake"), { code: "ECONNRESET" }) }),
    );
  });
}

/**
 * Explains a failed connection to `target` (host:port) when TLS is the cause; undefined when it is
 * not (node down, address wrong) or cannot be told. `material` is what the failed caller used.
 * Bounded by timeoutMs; never throws.
 */
export async function diagnoseTls(target: string, material: TlsMaterial | undefined, timeoutMs = 2_000): Promise<TlsDiagnosis | undefined> {
  const hp = parseHostPort(target);
  if (!hp) return undefined;
  let outcome: ProbeOutcome;
  try {
    outcome = await probe(hp.host, hp.port, material, timeoutMs);
  } catch {
    return undefined;
  }
  if (!material) {
    // A node that completes (or gets far enough into) a TLS handshake speaks TLS.
    const spokeTls = outcome.kind === "handshake" || (outcome.kind === "error" && CLIENT_REFUSED.test(outcome.err.message));
    if (!spokeTls) return undefined;
    return {
      kind: "server-requires-tls",
      message: `${target} requires mutual TLS and this client is plaintext; pass --tls-cert, --tls-key and --tls-ca (KVBRIDGE_TLS_CERT/KEY/CA) with a client certificate signed by the node's CA`,
    };
  }
  if (outcome.kind === "handshake" && outcome.after === "closed") return clientRefused(target, "it hung up right after the handshake");
  if (outcome.kind !== "error") return undefined;
  const err = outcome.err;
  if (NOT_TLS.test(err.message)) {
    return {
      kind: "server-is-plaintext",
      message: `${target} does not speak TLS but this client has --tls-cert/--tls-key/--tls-ca; start the node with the same --tls-* flags, or drop them here for a plaintext node`,
    };
  }
  if (err.code && UNTRUSTED_CODES.has(err.code)) {
    const name = material.serverName ?? hp.host;
    const what =
      err.code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? `its certificate does not name ${name}; reissue it with that name in its subject alternative names, or pass --tls-server-name with a name it carries`
        : `its certificate does not verify against --tls-ca (${err.code}); give the CA that signed the node's certificate`;
    return { kind: "server-untrusted", message: `${target} is not trusted: ${what}` };
  }
  const alert = CLIENT_REFUSED.exec(err.message);
  if (alert) return clientRefused(target, `TLS alert "${alert[1]}"`);
  return undefined;
}

function clientRefused(target: string, how: string): TlsDiagnosis {
  return {
    kind: "client-refused",
    message: `${target} refused this client's certificate (${how}); use a certificate signed by a CA in the node's --tls-ca`,
  };
}
