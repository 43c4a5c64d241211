// Sequences of one shared llama.cpp context (EngineOptions.batching "invariant" or "shared", the
// default): node-llama-cpp evaluates what the sequences of one context queue together, in one
// llama_decode call per step, composed by batch-order.ts. Each request borrows one sequence for
// its whole life and gives it back cleared; every sequence has a KV stream of its own (llama.cpp's
// non-unified cache), so a request's cells, positions and saved state (llama_state_seq_*) are what
// a lone context would hold. Cancelling a request only stops its own evaluations: a batch another
// request is in is never aborted. Waits for a free sequence are bounded like SequencePool's.
// Operations that take the context's lock (state loads and saves, clears) go through one
// ExclusiveGate: the sequences' next evaluations wait for them, so they are not starved by the
// batches of sequences that keep decoding (exclusive-gate.ts).

import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { ExclusiveGate } from "./exclusive-gate.js";
import { WaiterQueue } from "./waiter-queue.js";
import { batchOrder, type BatchMode } from "./batch-order.js";
import { throwIfAborted, type SequenceLease, type SequencePoolOptions, type SequenceSource } from "./sequence-pool.js";

interface Slot {
  sequence: LlamaContextSequence;
  /** The sequence id + 1: batch-order.ts orders rows by it. */
  priority: number;
}


export class BatchedSequencePool implements SequenceSource {
  /** Free slots, lowest id last (popped first): busy sequences stay on consecutive ids. */
  private readonly idle: Slot[];
  /** Sequences that can serve requests (less any retired after a failed clear). */
  private capacity: number;
  private readonly waiters = new WaiterQueue<Slot>();
  private readonly gate = new ExclusiveGate();
  private leased = 0;
  private closed = false;
  private closing: Promise<void> | null = null;
  private readonly drained = new Set<() => void>();

  private constructor(
    private readonly context: LlamaContext,
    private readonly opts: SequencePoolOptions,
  ) {
    // node-llama-cpp hands out sequence ids 0, 1, 2 ... in order on a fresh context.
    const slots: Slot[] = [];
    for (let id = 0; id < opts.size; id++) slots.push({ sequence: context.getSequence(), priority: id + 1 });
    this.idle = slots.reverse();
    this.capacity = opts.size;
  }

  static async create(model: LlamaModel, opts: SequencePoolOptions & { mode: BatchMode }): Promise<BatchedSequencePool> {
    const context = await model
      .createContext({
        contextSize: opts.contextSize,
        // A prompt piece (batchSize) or one row per sequence fits one call.
        batchSize: Math.max(opts.batchSize, opts.size),
        sequences: opts.size,
        threads: opts.threads,
        flashAttention: opts.flashAttention,
        batching: { itemPrioritizationStrategy: batchOrder(opts.mode) },
      })
      .catch((err: unknown) => {
        throw new KvbridgeError(
          "RESOURCE_EXHAUSTED",
          `creating a context of ${opts.size} sequences of ${opts.contextSize} tokens failed (${(err as Error).message}); lower contextSize or maxSequences`,
          { cause: err },
        );
      });
    return new BatchedSequencePool(context, opts);
  }

  get size(): number {
    return this.capacity;
  }
  get inUse(): number {
    return this.leased;
  }

  async acquire(signal?: AbortSignal): Promise<SequenceLease> {
    if (this.closed) throw new KvbridgeError("UNAVAILABLE", "the engine is closed; open a new one");
    throwIfAborted(signal, "waiting for a free sequence");
    const slot = this.idle.pop() ?? (await this.wait(signal));
    this.leased++;
    let released = false;
    return {
      sequence: slot.sequence,
      priority: slot.priority,
      exclusive: this.gate.run,
      turn: () => this.gate.turn(),
      release: async () => {
        if (released) return;
        released = true;
        await this.giveBack(slot);
      },
    };
  }

  private wait(signal?: AbortSignal): Promise<Slot> {
    return this.waiters.wait(this.opts.waitMs, signal, () => new KvbridgeError("RESOURCE_EXHAUSTED", `all ${this.capacity} sequences stayed busy for ${this.opts.waitMs} ms; raise maxSequences or retry later`));
  }

  private async giveBack(slot: Slot): Promise<void> {
    let healthy = !this.closed;
    if (healthy) {
      try {
        // A sequence is only reused empty: the next request's cells start at position 0.
        await this.gate.run(() => slot.sequence.clearHistory());
      } catch {
        healthy = false;
      }
    }
    this.leased--;
    if (healthy) {
      const next = this.waiters.take();
      if (next) next.resolve(slot);
      else {
        this.idle.push(slot);
        this.idle.sort((a, b) => b.priority - a.priority);
      }
    } else if (!this.closed) {
      // The sequence could not be cleared: retire it. The pool serves one request fewer at once.
      slot.sequence.dispose();
      this.capacity--;
      if (this.capacity === 0) this.waiters.rejectAll(new KvbridgeError("UNAVAILABLE", "every sequence of the context failed; restart the node"));
    }
    if (this.leased === 0) for (const d of this.drained) d();
  }

  /** Rejects waiters, waits for leased sequences to come back (their owners were cancelled), disposes the context. Idempotent. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.waiters.rejectAll(new KvbridgeError("UNAVAILABLE", "the engine is closing; retry on another node"));
    this.closing = (async () => {
      if (this.leased > 0) await new Promise<void>((resolve) => this.drained.add(resolve));
      this.idle.splice(0);
      await this.context.dispose().catch(() => undefined);
    })();
    return this.closing;
  }
}
