// The sender's bookkeeping for one writeAll call: how many of its frames the receiver still has to
// acknowledge, and how many are still being read by the kernel out of the caller's buffers.

import { KvbridgeError } from "../../errors/kvbridge-error.js";

export class RequestWrite {
  readonly requestId: string;
  readonly promise: Promise<void>;
  private framesLeft: number;
  /** Frames handed to a socket whose bytes may still be read out of the caller's buffers. */
  private unflushed = 0;
  private failure: KvbridgeError | null = null;
  private done = false;
  private resolve!: () => void;
  private reject!: (err: KvbridgeError) => void;

  constructor(requestId: string, frames: number) {
    this.requestId = requestId;
    this.framesLeft = frames;
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (frames === 0) this.settle();
  }

  /** True once the write failed or was cancelled: its frames not yet sent must be dropped. */
  get failed(): boolean {
    return this.failure !== null;
  }

  get settled(): boolean {
    return this.done;
  }

  frameHanded(): void {
    this.unflushed++;
  }

  frameFlushed(): void {
    this.unflushed--;
    this.settle();
  }

  frameAcked(): void {
    this.framesLeft--;
    this.settle();
  }

  /** First failure wins; later ones (e.g. the connection dying after a NACK) are dropped. */
  fail(err: KvbridgeError): void {
    if (this.failure || this.done) return;
    this.failure = err;
    this.settle();
  }

  private settle(): void {
    if (this.done) return;
    if (this.failure) {
      // The contract lets callers reuse their buffers once writeAll settles, so a failed write
      // rejects only after the kernel is done reading every frame already handed to a socket.
      if (this.unflushed > 0) return;
      this.done = true;
      this.reject(this.failure);
      return;
    }
    if (this.framesLeft === 0) {
      this.done = true;
      this.resolve();
    }
  }
}
