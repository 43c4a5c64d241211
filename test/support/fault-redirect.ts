// A sender transport that dials a receiver's TCP data plane at another address (a FaultProxy, or a
// peer that never answers) while the control plane still talks to the real receiver.
import type { DataPlaneOffer, SenderChannel, SenderTransport } from "../../src/transport/transport.js";

export class RedirectedTcpTransport implements SenderTransport {
  readonly kind = "tcp" as const;
  /** Offers seen, as the receiver sent them (before the redirect). */
  readonly seen: DataPlaneOffer[] = [];

  constructor(
    private readonly inner: SenderTransport,
    private readonly to: { host: string; port: number },
  ) {
    if (inner.kind !== "tcp") throw new Error("RedirectedTcpTransport wraps a TCP transport");
  }

  connect(offer: DataPlaneOffer, signal: AbortSignal): Promise<SenderChannel> {
    this.seen.push(offer);
    if (offer.kind !== "tcp") return this.inner.connect(offer, signal);
    return this.inner.connect({ kind: "tcp", host: this.to.host, port: this.to.port }, signal);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
