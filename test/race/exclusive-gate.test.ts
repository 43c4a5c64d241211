// Interleavings of decoding sequences and lock-taking operations (state loads, saves, clears) on
// one shared context, explored with fast-check's scheduler. The context is a model of
// node-llama-cpp's: a FIFO "context" lock; a dispatcher that takes it when evaluations are queued
// and keeps it while any are (one batch per loop); each row's sampling finishing on its own, and
// its sequence queueing the next token as soon as it has one. What is under test is ExclusiveGate:
// every operation gets the lock after at most the batch in flight and one more, every sequence and
// operation finishes, no evaluation is queued while an operation waits for the lock. A control
// without the gate must find an operation starved until the sequences end.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ExclusiveGate } from "../../src/engine/exclusive-gate.js";

type Scheduler = fc.Scheduler;

class FifoLock {
  private held = false;
  private readonly waiters: Array<() => void> = [];
  acquire(): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.held = false;
  }
}

/** node-llama-cpp's shared context, as far as lock and batches go. */
class ModelContext {
  readonly lock = new FifoLock();
  batches = 0;
  private queue: Array<() => void> = [];
  private dispatchPending = false;
  constructor(private readonly s: Scheduler) {}

  /** Queues one evaluation; resolves when its row is decoded and sampled. */
  evaluate(): Promise<void> {
    return new Promise((resolve) => {
      this.queue.push(resolve);
      if (!this.dispatchPending) {
        this.dispatchPending = true;
        void this.dispatch();
      }
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  private async dispatch(): Promise<void> {
    await this.lock.acquire();
    this.dispatchPending = false;
    try {
      while (this.queue.length > 0) {
        const rows = this.queue.splice(0);
        this.batches++;
        await this.s.schedule(Promise.resolve(), "decodeBatch");
        // Each row's sampling ends on its own; its sequence may queue again before the others end.
        await Promise.all(rows.map((done) => this.s.schedule(Promise.resolve(), "sample").then(done)));
      }
    } finally {
      this.lock.release();
    }
  }
}

interface Outcome {
  /** Per operation: batches started between asking for the lock and getting it. */
  waits: number[];
  tokens: number[];
  /** Evaluations queued while an operation was waiting for the lock (it had asked, not got it). */
  queuedWhileWaiting: number;
}

async function scenario(s: Scheduler, sequences: number, steps: number, ops: number, gated: boolean): Promise<Outcome> {
  const ctx = new ModelContext(s);
  const gate = new ExclusiveGate();
  const tokens = new Array<number>(sequences).fill(0);
  const waits: number[] = [];
  let waitingOps = 0;
  let queuedWhileWaiting = 0;
  const decode = async (i: number): Promise<void> => {
    for (let t = 0; t < steps; t++) {
      const turn = gated ? gate.turn() : undefined;
      if (turn) await turn;
      if (waitingOps > 0) queuedWhileWaiting++;
      await ctx.evaluate();
      tokens[i]!++;
    }
  };
  const op = async (): Promise<void> => {
    await s.schedule(Promise.resolve(), "operation arrives");
    const body = async (): Promise<void> => {
      const asked = ctx.batches;
      waitingOps++;
      await ctx.lock.acquire();
      waitingOps--;
      waits.push(ctx.batches - asked);
      try {
        await s.schedule(Promise.resolve(), "load state");
      } finally {
        ctx.lock.release();
      }
    };
    await (gated ? gate.run(body) : body());
  };
  const all = [...Array.from({ length: sequences }, (_, i) => decode(i)), ...Array.from({ length: ops }, () => op())];
  await s.waitFor(Promise.all(all));
  expect(gate.waiting).toBe(0);
  return { waits, tokens, queuedWhileWaiting };
}

const arb = fc.tuple(fc.scheduler(), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }));
const STEPS = 12;

describe("exclusive operations beside decoding sequences (fast-check scheduler)", () => {
  it("every operation gets the lock within two batches of asking, and everything finishes", async () => {
    await fc.assert(
      fc.asyncProperty(arb, async ([s, sequences, ops]) => {
        const out = await scenario(s, sequences, STEPS, ops, true);
        expect(out.tokens).toEqual(new Array(sequences).fill(STEPS));
        expect(out.waits).toHaveLength(ops);
        for (const w of out.waits) expect(w).toBeLessThanOrEqual(2);
        expect(out.queuedWhileWaiting).toBe(0);
      }),
      { numRuns: 1_500 },
    );
  });

  it("control: without the gate an operation waits until the sequences stop", async () => {
    const result = await fc.check(
      fc.asyncProperty(fc.tuple(fc.scheduler(), fc.constant(4), fc.constant(1)), async ([s, sequences, ops]) => {
        const out = await scenario(s, sequences, STEPS, ops, false);
        for (const w of out.waits) expect(w).toBeLessThanOrEqual(2);
      }),
      { numRuns: 300, seed: 20261202 },
    );
    expect(result.failed).toBe(true);
  });
});
