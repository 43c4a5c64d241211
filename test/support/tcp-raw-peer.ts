// A hand-driven TCP data-plane client for fault tests: writes arbitrary bytes (valid frames,
// garbage, truncated frames) and collects the receiver's replies until the connection closes.

import net from "node:net";
import { once } from "node:events";
import { ReplyDecoder, type ReplyFrame } from "../../src/transport/tcp/tcp-frame.js";

export class RawPeer {
  readonly socket: net.Socket;
  readonly replies: ReplyFrame[] = [];
  readonly closed: Promise<void>;
  private readonly decoder = new ReplyDecoder();
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.replies.push(...this.decoder.push(chunk));
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    socket.on("error", () => {
      // A reset from the receiver is an expected outcome here; `closed` reports it.
    });
    this.closed = new Promise((resolve) => socket.once("close", () => resolve()));
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    await once(socket, "connect");
    return new RawPeer(socket);
  }

  send(...parts: Buffer[]): void {
    for (const p of parts) this.socket.write(p);
  }

  /** Resolves with the replies once at least `count` arrived; rejects after timeoutMs. */
  async waitForReplies(count: number, timeoutMs = 5_000): Promise<ReplyFrame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`got ${this.replies.length} replies, expected ${count} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.replies;
  }

  /** Resolves when the connection is closed; rejects if it stays open for timeoutMs. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}
