// Turns for operations that need a shared context to themselves. node-llama-cpp's batch dispatcher
// holds the context's "context" lock for as long as any sequence has an evaluation queued
// (LlamaContext.dispatchPendingBatch loops `while (shouldHaveAnotherLoop)`), and a decoding
// sequence queues its next token while the dispatcher still awaits the sampling of the other rows
// of the same batch. So with two or more sequences decoding, the lock is never released, and a
// sequence state load or save (loadStateFromFile, saveStateToFile) or a clearHistory, which take
// that lock, waits until every sequence has stopped: 21 s for a 2048-token KV load beside 4
// streams of 1500 tokens (docs/engine.md, "Loads beside running decodes").
//
// The gate gives such an operation its turn: while one is pending, sequences ask for their next
// evaluation (turn()) only once it is done. The batch in flight completes, nothing new is queued,
// the dispatcher leaves its loop and releases the lock, the operation runs, and the sequences go
// on. A pending operation waits at most for the batches already queued (one, occasionally two),
// and each running sequence sees one gap: that wait plus the operation itself.

/** Runs an operation that takes the context lock, with the context's evaluations held back meanwhile. */
export type Exclusive = <T>(op: () => Promise<T>) => Promise<T>;

export const runDirectly: Exclusive = (op) => op();

export class ExclusiveGate {
  private pending = 0;
  private opened: Promise<void> | null = null;
  private open: (() => void) | null = null;

  /**
   * Called before each evaluation a sequence queues (a prompt piece, a next token): undefined
   * when no operation is pending (no await needed), otherwise resolves when none is.
   */
  turn(): Promise<void> | undefined {
    return this.opened ?? undefined;
  }

  /** Operations pending now (a gauge for tests and metrics). */
  get waiting(): number {
    return this.pending;
  }

  readonly run: Exclusive = async (op) => {
    if (this.pending++ === 0) this.opened = new Promise<void>((resolve) => (this.open = resolve));
    try {
      return await op();
    } finally {
      if (--this.pending === 0) {
        const open = this.open!;
        this.opened = null;
        this.open = null;
        open();
      }
    }
  };
}
