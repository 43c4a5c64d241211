// A bounded pool of context sequences, one context per request (EngineOptions.batching
// "context-per-request", the baseline the batched pool is measured against). Each request borrows
// one sequence for its whole life (prefill, or load + decode) and gives it back cleared. Every
// sequence has a context of its own: requests never share a llama_decode batch or a KV buffer,
// and cancelling one request cannot disturb another. Contexts are created on first need, up to
// `size`.

import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { runDirectly, type Exclusive } from "./exclusive-gate.js";
import { WaiterQueue } from "./waiter-queue.js";

export interface SequencePoolOptions {
  size: number;
  contextSize: number;
  /** Tokens per llama_decode call. */
  batchSize: number;
  threads: number;
  flashAttention: boolean;
  /** Longest wait for a free sequence before RESOURCE_EXHAUSTED. */
  waitMs: number;
}

export interface SequenceLease {
  readonly sequence: LlamaContextSequence;
  /** Passed as evaluationPriority on every evaluation of this sequence: orders rows in a shared batch (batch-order.ts). */
  readonly priority: number;
  /**
   * Runs an operation that takes the context's lock (a state load or save, a clear): in a shared
   * context, the other sequences' evaluations wait meanwhile, so it gets the lock after the batch
   * in flight instead of after every sequence has stopped (exclusive-gate.ts). A context of its
   * own runs it directly.
   */
  readonly exclusive: Exclusive;
  /** Awaited (when not undefined) before each evaluation of this sequence: a pending exclusive operation goes first. */
  turn(): Promise<void> | undefined;
  /** Clears the sequence and returns it to the pool. Idempotent. */
  release(): Promise<void>;
}

/** What the engine borrows sequences from: one context per request, or contexts shared by several. */
export interface SequenceSource {
  readonly size: number;
  readonly inUse: number;
  acquire(signal?: AbortSignal): Promise<SequenceLease>;
  close(): Promise<void>;
}


export class SequencePool implements SequenceSource {
  private readonly idle: LlamaContext[] = [];
  private readonly waiters = new WaiterQueue<LlamaContext>();
  private readonly leased = new Set<LlamaContext>();
  private created = 0;
  private closed = false;
  private closing: Promise<void> = Promise.resolve();
  private readonly drained = new Set<() => void>();

  constructor(
    private readonly model: LlamaModel,
    private readonly opts: SequencePoolOptions,
  ) {}

  get size(): number {
    return this.opts.size;
  }
  get inUse(): number {
    return this.leased.size;
  }

  /** A context made now, outside the pool's count: for the engine's layout probe at open. */
  createContext(): Promise<LlamaContext> {
    return this.model.createContext({
      contextSize: this.opts.contextSize,
      batchSize: this.opts.batchSize,
      sequences: 1,
      threads: this.opts.threads,
      flashAttention: this.opts.flashAttention,
    });
  }

  /** Waits (bounded by `waitMs` and `signal`) for a sequence of its own. */
  async acquire(signal?: AbortSignal): Promise<SequenceLease> {
    this.ensureOpen();
    throwIfAborted(signal, "waiting for a free sequence");
    const ctx = await this.takeContext(signal);
    this.leased.add(ctx);
    let released = false;
    return {
      sequence: firstSequence(ctx),
      priority: 1,
      exclusive: runDirectly,
      turn: () => undefined,
      release: async () => {
        if (released) return;
        released = true;
        await this.giveBack(ctx);
      },
    };
  }

  private async takeContext(signal?: AbortSignal): Promise<LlamaContext> {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.created < this.opts.size) {
      this.created++; // counted before the await so concurrent callers never overshoot
      try {
        return await this.createContext();
      } catch (err) {
        this.created--;
        throw new KvbridgeError("RESOURCE_EXHAUSTED", `creating a context of ${this.opts.contextSize} tokens failed (${(err as Error).message}); lower contextSize or maxSequences`, { cause: err });
      }
    }
    return this.waiters.wait(this.opts.waitMs, signal, () => new KvbridgeError("RESOURCE_EXHAUSTED", `all ${this.opts.size} sequences stayed busy for ${this.opts.waitMs} ms; raise maxSequences or retry later`));
  }

  private async giveBack(ctx: LlamaContext): Promise<void> {
    let healthy = !this.closed;
    if (healthy) {
      try {
        // A sequence is only reused empty: the next request's cells start at position 0.
        await firstSequence(ctx).clearHistory();
      } catch {
        healthy = false;
      }
    }
    this.leased.delete(ctx);
    if (!healthy) {
      this.created--;
      await ctx.dispose().catch(() => undefined);
      if (!this.closed) this.serveWaiterWithNewContext();
    } else {
      const next = this.waiters.take();
      if (next) next.resolve(ctx);
      else this.idle.push(ctx);
    }
    if (this.leased.size === 0) for (const d of this.drained) d();
  }

  private serveWaiterWithNewContext(): void {
    const next = this.waiters.take();
    if (!next) return;
    this.created++;
    this.createContext().then(
      (ctx) => next.resolve(ctx),
      (err: unknown) => {
        this.created--;
        next.reject(new KvbridgeError("RESOURCE_EXHAUSTED", `creating a replacement context failed: ${(err as Error).message}`, { cause: err }));
      },
    );
  }

  /**
   * Rejects waiters, waits for leased sequences to come back (their owners are expected to have
   * been cancelled), and disposes every context. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return this.closing;
    this.closed = true;
    this.waiters.rejectAll(new KvbridgeError("UNAVAILABLE", "the engine is closing; retry on another node"));
    this.closing = (async () => {
      if (this.leased.size > 0) {
        await new Promise<void>((resolve) => this.drained.add(resolve));
      }
      await Promise.all(this.idle.splice(0).map((c) => c.dispose().catch(() => undefined)));
    })();
    return this.closing;
  }

  private ensureOpen(): void {
    if (this.closed) throw new KvbridgeError("UNAVAILABLE", "the engine is closed; open a new one");
  }
}

function firstSequence(ctx: LlamaContext): LlamaContextSequence {
  // One sequence per context, taken once and kept: node-llama-cpp hands out each sequence id once.
  let seq = sequences.get(ctx);
  if (!seq) {
    seq = ctx.getSequence();
    sequences.set(ctx, seq);
  }
  return seq;
}
const sequences = new WeakMap<LlamaContext, LlamaContextSequence>();

export function throwIfAborted(signal: AbortSignal | undefined, during: string): void {
  if (signal?.aborted) throw cancelled(during, signal);
}

/**
 * The error for a fired signal: the reason itself when it is a KvbridgeError (the engine closing,
 * a caller's own code), DEADLINE_EXCEEDED for AbortSignal.timeout, else CANCELLED.
 */
export function cancelled(during: string, signal?: AbortSignal): KvbridgeError {
  const reason: unknown = signal?.reason;
  if (reason instanceof KvbridgeError) return reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new KvbridgeError("DEADLINE_EXCEEDED", `request deadline passed while ${during}`, { cause: reason });
  }
  const why = reason instanceof Error ? `: ${reason.message}` : "";
  return new KvbridgeError("CANCELLED", `request cancelled while ${during}${why}`, { cause: reason });
}
