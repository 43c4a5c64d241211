// Which data planes a node may use once it has mutual TLS. UCX moves KV bytes with one-sided puts
// (RDMA, shared memory or UCX's own TCP) that carry no TLS: on a TLS node they would be the one
// path where KV travels in clear. So a TLS node offers and uses only the TLS'd TCP data plane,
// unless the operator opts in with --allow-plaintext-ucx (a dedicated, trusted RDMA fabric where
// bandwidth matters more). The control plane stays mTLS either way: only an authenticated peer
// can Alloc and learn the rkey and slot addresses that UCX puts need.
import { KvbridgeError } from "../errors/kvbridge-error.js";

export type TransportChoice = "auto" | "tcp" | "ucx";

export interface TransportDecision {
  transport: TransportChoice;
  /** Set when UCX was dropped because of TLS: one log line says so. */
  note?: string;
}

export function transportUnderTls(requested: TransportChoice, tls: boolean, allowPlaintextUcx: boolean): TransportDecision {
  if (!tls || allowPlaintextUcx || requested === "tcp") return { transport: requested };
  if (requested === "ucx") {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      "--transport ucx moves KV bytes without TLS, and mutual TLS is on (--tls-*); add --allow-plaintext-ucx (KVBRIDGE_ALLOW_PLAINTEXT_UCX=true) to accept plaintext KV on the fabric, or use --transport tcp for the TLS data plane",
    );
  }
  return {
    transport: "tcp",
    note: "mutual TLS is on: the data plane is TLS over TCP only (UCX carries no TLS; --allow-plaintext-ucx offers it anyway)",
  };
}
