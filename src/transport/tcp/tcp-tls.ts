// Mutual TLS for the TCP data plane: the node:tls options of both ends. A TLS receiver always
// requires a client certificate signed by its CA (a data connection writes into the pool, so an
// unauthenticated one is never acceptable), and a TLS sender always verifies the receiver.
import net from "node:net";
import tls from "node:tls";

export interface TcpTlsOptions {
  /** PEM certificate chain this end presents. */
  cert: Buffer;
  /** PEM private key of `cert`. */
  key: Buffer;
  /** PEM CA bundle the other end's certificate must chain to. */
  ca: Buffer;
  /** Sender: the name the receiver's certificate must carry; default the dialed host. */
  serverName?: string;
}

/** Bound on a TLS handshake on either end: a peer that stalls it cannot hold a connection open. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export function tlsServerOptions(o: TcpTlsOptions): tls.TlsOptions {
  return {
    cert: o.cert,
    key: o.key,
    ca: o.ca,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

export function tlsConnectOptions(o: TcpTlsOptions, host: string, port: number): tls.ConnectionOptions {
  const expected = o.serverName ?? host;
  return {
    host,
    port,
    cert: o.cert,
    key: o.key,
    ca: o.ca,
    rejectUnauthorized: true,
    minVersion: "TLSv1.2",
    // SNI may not carry an IP address (RFC 6066); the identity check below still covers IPs.
    servername: net.isIP(expected) ? undefined : expected,
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(expected, cert),
  };
}

/** OpenSSL's reason out of its error line ("...:SSL routines:ssl3_get_record:wrong version number:..."). */
export function tlsErrorReason(err: Error): string {
  const m = /SSL routines:[^:]*:([^:]+)/.exec(err.message);
  return m ? m[1]!.trim() : err.message.trim();
}

/** The other end answered our ClientHello with something that is not TLS. */
export function isNotTlsError(err: Error): boolean {
  return /wrong version number|packet length too long|unknown protocol|http request/i.test(err.message);
}
