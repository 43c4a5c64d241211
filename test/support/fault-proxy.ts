// A TCP proxy on loopback that puts data-plane faults between a real sender and a real receiver:
// tearing connections in the middle of a frame, or stopping to read (a receiver whose buffers fill).
import net from "node:net";

/**
 * pass: forward both ways. cut: forward, and reset both sides of a connection once `cutAfterBytes`
 * more sender bytes went through it (mid-frame for any frame larger than that); with `once`, the
 * proxy goes back to pass after the first cut. stall: stop reading from senders and forward nothing
 * either way, while keeping the connections open.
 */
export type FaultProxyMode = { kind: "pass" } | { kind: "cut"; cutAfterBytes: number; once?: boolean } | { kind: "stall" };

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  /** Sender bytes forwarded since the mode last changed. */
  forwarded: number;
  /** The cut is decided: nothing more is forwarded, the reset follows. */
  cutting: boolean;
}

export class FaultProxy {
  readonly port: number;
  /** Connections reset by the proxy (cut mode, or cutAll). */
  cuts = 0;
  /** Sender bytes forwarded in total. */
  bytesForwarded = 0;
  private mode: FaultProxyMode = { kind: "pass" };
  private readonly pairs = new Set<Pair>();
  private readonly server: net.Server;

  private constructor(server: net.Server, port: number) {
    this.server = server;
    this.port = port;
  }

  /** Listens on 127.0.0.1 (an ephemeral port) and forwards to `upstreamPort` on 127.0.0.1. */
  static async start(upstreamPort: number): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client, upstreamPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    proxy = new FaultProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  setMode(mode: FaultProxyMode): void {
    this.mode = mode;
    for (const p of this.pairs) {
      p.forwarded = 0;
      // Leaving stall: read again what the kernel buffered meanwhile.
      if (mode.kind !== "stall") {
        p.client.resume();
        p.upstream.resume();
      } else {
        p.client.pause();
        p.upstream.pause();
      }
    }
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Resets every open connection now (both sides see ECONNRESET or an abrupt close). */
  cutAll(): number {
    let n = 0;
    for (const p of [...this.pairs]) {
      this.cut(p);
      n++;
    }
    return n;
  }

  /** Idempotent. */
  async close(): Promise<void> {
    for (const p of [...this.pairs]) this.cut(p);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket, upstreamPort: number): void {
    const upstream = net.connect({ host: "127.0.0.1", port: upstreamPort, noDelay: true });
    client.setNoDelay(true);
    const pair: Pair = { client, upstream, forwarded: 0, cutting: false };
    this.pairs.add(pair);
    const drop = (): void => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    // Errors end the pair; the peers see the close, which is the fault being modelled.
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
    if (this.mode.kind === "stall") {
      client.pause();
      upstream.pause();
    }
    client.on("data", (chunk: Buffer) => {
      const mode = this.mode;
      if (pair.cutting) return;
      if (mode.kind === "stall") {
        // Data read before the pause took effect is held back, like a receiver that stopped reading.
        client.pause();
        client.unshift(chunk);
        return;
      }
      if (mode.kind === "cut" && pair.forwarded + chunk.length > mode.cutAfterBytes) {
        const head = chunk.subarray(0, Math.max(0, mode.cutAfterBytes - pair.forwarded));
        pair.cutting = true;
        if (mode.once) this.mode = { kind: "pass" };
        this.bytesForwarded += head.length;
        // The partial frame reaches the receiver first, then the reset.
        upstream.write(head, () => setTimeout(() => this.cut(pair), 20));
        return;
      }
      pair.forwarded += chunk.length;
      this.bytesForwarded += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once("drain", () => {
          if (this.mode.kind !== "stall") client.resume();
        });
      }
    });
    upstream.on("data", (chunk: Buffer) => {
      if (pair.cutting) return;
      if (this.mode.kind === "stall") {
        upstream.pause();
        upstream.unshift(chunk);
        return;
      }
      if (!client.write(chunk)) {
        upstream.pause();
        client.once("drain", () => {
          if (this.mode.kind !== "stall") upstream.resume();
        });
      }
    });
  }

  private cut(p: Pair): void {
    if (!this.pairs.delete(p)) return;
    this.cuts++;
    // resetAndDestroy sends RST (not FIN): the abrupt end a dead link or a killed peer gives.
    p.client.resetAndDestroy();
    p.upstream.resetAndDestroy();
  }
}
