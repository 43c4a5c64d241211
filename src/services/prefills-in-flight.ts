// The Prefill calls a prefill node is running, and where each is (evaluating its prompt, pushing its
// KV to a decode node): the node's in-flight set (a second call with the same id is refused while the
// first runs) and what Inspect lists of it. Updated in the same synchronous step as the work it names.

export type PrefillPhase = "evaluating" | "pushing";

export interface PrefillView {
  requestId: string;
  phase: PrefillPhase;
  /** The model it runs on ("" until resolved, the node's default then). */
  model: string;
  promptTokens: number;
  /** KV chunks being pushed (pushing only). */
  chunks: number;
  /** The decode node it pushes to. */
  decodeTarget: string;
  /** Date.now() when it started. */
  startedAt: number;
}

export class PrefillsInFlight {
  private readonly running = new Map<string, PrefillView>();

  get size(): number {
    return this.running.size;
  }

  has(requestId: string): boolean {
    return this.running.has(requestId);
  }

  /** Records a call starting (phase evaluating). */
  add(requestId: string, model = "", decodeTarget = ""): void {
    this.running.set(requestId, { requestId, phase: "evaluating", model, promptTokens: 0, chunks: 0, decodeTarget, startedAt: Date.now() });
  }

  /** The prompt was tokenized under `model`: it is being evaluated. */
  evaluating(requestId: string, model: string, promptTokens: number): void {
    const v = this.running.get(requestId);
    if (v) Object.assign(v, { phase: "evaluating", model, promptTokens });
  }

  /** Its KV is being pushed to the decode node. */
  pushing(requestId: string, chunks: number): void {
    const v = this.running.get(requestId);
    if (v) Object.assign(v, { phase: "pushing", chunks });
  }

  delete(requestId: string): boolean {
    return this.running.delete(requestId);
  }

  /** Copies, oldest first. */
  list(): PrefillView[] {
    return [...this.running.values()].map((v) => ({ ...v })).sort((a, b) => a.startedAt - b.startedAt);
  }
}
