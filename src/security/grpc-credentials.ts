// gRPC credentials from a node's TLS material: servers require and verify client certificates
// (mutual TLS), clients present theirs and verify the server against the CA.
import * as grpc from "@grpc/grpc-js";
import tls from "node:tls";
import type { TlsMaterial } from "./tls-material.js";

export function grpcServerCredentials(m: TlsMaterial): grpc.ServerCredentials {
  // checkClientCertificate: a caller without a certificate signed by our CA fails the handshake.
  return grpc.ServerCredentials.createSsl(m.ca, [{ private_key: m.key, cert_chain: m.cert }], true);
}

export function grpcChannelCredentials(m: TlsMaterial): grpc.ChannelCredentials {
  const serverName = m.serverName;
  // Without --tls-server-name the server's certificate must name the dialed host (node's default).
  const verify: grpc.VerifyOptions = serverName ? { checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert) } : {};
  return grpc.credentials.createSsl(m.ca, m.key, m.cert, verify);
}

/** Plaintext when `m` is undefined (no --tls-* flags: loopback and development). */
export function channelCredentialsFor(m: TlsMaterial | undefined): grpc.ChannelCredentials {
  return m ? grpcChannelCredentials(m) : grpc.credentials.createInsecure();
}

export function serverCredentialsFor(m: TlsMaterial | undefined): grpc.ServerCredentials {
  return m ? grpcServerCredentials(m) : grpc.ServerCredentials.createInsecure();
}
