// The models of one node as a pure state machine: which are loaded, loading, draining, unloading or
// failed, with which options, how many requests each has in flight, and what to do next. Every method
// is synchronous, takes the time from the injected clock, decides and changes the state in the same
// step (no await between "is it loaded?" and "mark it loading"), and returns the decision with the
// effects the shell (model-host.ts) must run: call the loader, close a model, arm a drain timer,
// answer the callers of an operation. An entry exists only for a model somebody asked for; reads
// never insert.
import { EventEmitter } from "node:events";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { Clock } from "../store/clock.js";
import type { ModelCatalog, ModelSpec } from "./model-catalog.js";
import { sameModelOptions, withDefaults, type ModelLoadOptions } from "./model-options.js";
import { isLegalTransition, type ModelEventMap, type ModelSnapshot, type ModelState, type UnloadCause } from "./model-state.js";

export interface ModelRegistryOptions {
  /** Models resident at once (loading, loaded, draining or unloading): --models-max. */
  readonly maxResident: number;
  /** Bound on draining a model's requests before a reload or unload. */
  readonly drainMs: number;
  /** The node's options for a load that names none (flags); a caller's options fall back to them. */
  readonly defaults: ModelLoadOptions;
  readonly clock: Clock;
}

/** What the shell must do after a step, in order. */
export type ModelEffect<H> =
  | { readonly kind: "load"; readonly spec: ModelSpec; readonly op: number; readonly options: ModelLoadOptions }
  | { readonly kind: "close"; readonly id: string; readonly op: number; readonly handle: H }
  | { readonly kind: "drain-timer"; readonly id: string; readonly op: number; readonly deadline: number }
  /** Answer everyone who joined `op`. `retry`: callers that asked for no particular options may try again (the model stayed loaded). */
  | { readonly kind: "settle"; readonly op: number; readonly outcome: { ok: true; snapshot: ModelSnapshot } | { ok: false; error: KvbridgeError; retry: boolean } }
  /** Some state or in-flight count changed: callers parked on `wait` should ask again. */
  | { readonly kind: "changed" };

export type ModelDecision<H> =
  /** Answered at once; `handle` when a lease was taken (requests in flight counted). */
  | { readonly kind: "done"; readonly snapshot: ModelSnapshot; readonly handle?: H }
  /** An operation is under way whose outcome is the answer: wait for its settle effect. */
  | { readonly kind: "join"; readonly op: number }
  /** Nothing to start now: ask again after the next change. `busy`: the error to give if room never comes. */
  | { readonly kind: "wait"; readonly busy: KvbridgeError | null }
  | { readonly kind: "refuse"; readonly error: KvbridgeError };

export interface ModelStep<H> {
  readonly decision: ModelDecision<H>;
  readonly effects: readonly ModelEffect<H>[];
}

/** An effect-only step (outcomes of loads, closes, timers, releases); `stale` when it was about an overtaken operation. */
export interface ModelUpdate<H> {
  readonly stale: boolean;
  readonly effects: readonly ModelEffect<H>[];
}

interface Entry<H> {
  readonly spec: ModelSpec;
  state: ModelState<H>;
  inFlight: number;
  lastUsed: number | null;
  loads: number;
  /**
   * Loads given up (past their bound) whose loader has not yet ended: each may still hold memory, so
   * it holds room, and the model loads again only once none is left (never two loaders at once).
   */
  abandoned: number;
  /** Order of first ask: breaks lastUsed ties so eviction is deterministic. */
  readonly order: number;
}

export class ModelRegistry<H> {
  readonly events = new EventEmitter<ModelEventMap>();
  private readonly entries = new Map<string, Entry<H>>();
  private nextOp = 1;
  private nextOrder = 0;
  private stopped = false;

  constructor(
    readonly catalog: ModelCatalog,
    private readonly opts: ModelRegistryOptions,
  ) {
    if (!Number.isInteger(opts.maxResident) || opts.maxResident < 1) throw new KvbridgeError("INVALID_ARGUMENT", `--models-max must be at least 1, got ${opts.maxResident}`);
  }

  /**
   * "This model, loaded": `options` undefined accepts whatever it is loaded with (an auto-load by a
   * request); options that differ from the loaded ones reload it. `lease`: count a request in flight
   * when the answer is immediate.
   */
  ensure(name: string, options: ModelLoadOptions | undefined, lease: boolean): ModelStep<H> {
    const effects: ModelEffect<H>[] = [];
    const spec = this.catalog.resolve(name);
    if (!spec) return { decision: { kind: "refuse", error: notFound(name) }, effects };
    if (this.stopped) return { decision: { kind: "refuse", error: shuttingDown() }, effects };
    const wanted = options === undefined ? null : withDefaults(options, this.opts.defaults);
    const entry = this.entries.get(spec.id) ?? this.insert(spec);
    const s = entry.state;
    const fits = (o: ModelLoadOptions): boolean => wanted === null || sameModelOptions(wanted, o);
    switch (s.state) {
      case "loaded": {
        if (fits(s.options)) {
          entry.lastUsed = this.opts.clock();
          if (lease) entry.inFlight++;
          return { decision: lease ? { kind: "done", snapshot: this.snap(entry), handle: s.handle } : { kind: "done", snapshot: this.snap(entry) }, effects };
        }
        const op = this.nextOp++;
        this.leaveLoaded(entry, s, op, wanted, "reload", effects);
        return { decision: { kind: "join", op }, effects };
      }
      case "loading":
        return { decision: fits(s.options) ? { kind: "join", op: s.op } : { kind: "wait", busy: null }, effects };
      case "draining":
      case "unloading":
        // Joining a reload under way is joining its outcome; anything else waits for it to end.
        return { decision: s.next !== null && fits(s.next) ? { kind: "join", op: s.op } : { kind: "wait", busy: null }, effects };
      case "unloaded":
      case "failed":
        return { decision: this.startLoad(entry, wanted ?? withDefaults({}, this.opts.defaults), effects), effects };
      default:
        return exhausted(s);
    }
  }

  /** "This model, not loaded." Idempotent; a model never asked for is answered unloaded without an entry. */
  unload(name: string): ModelStep<H> {
    const effects: ModelEffect<H>[] = [];
    const spec = this.catalog.resolve(name);
    if (!spec) return { decision: { kind: "refuse", error: notFound(name) }, effects };
    const entry = this.entries.get(spec.id);
    if (!entry) return { decision: { kind: "done", snapshot: this.snapshot(spec.id)! }, effects };
    const s = entry.state;
    switch (s.state) {
      case "unloaded":
        return { decision: { kind: "done", snapshot: this.snap(entry) }, effects };
      case "failed":
        this.move(entry, { state: "unloaded" });
        return { decision: { kind: "done", snapshot: this.snap(entry) }, effects };
      case "loaded": {
        const op = this.nextOp++;
        this.leaveLoaded(entry, s, op, null, "unload", effects);
        return { decision: { kind: "join", op }, effects };
      }
      case "draining":
      case "unloading":
        return { decision: s.next === null ? { kind: "join", op: s.op } : { kind: "wait", busy: null }, effects };
      case "loading":
        return { decision: { kind: "wait", busy: null }, effects };
      default:
        return exhausted(s);
    }
  }

  /** One request on `id` ended. A miss (a lease outliving shutdown) changes nothing. */
  release(id: string): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    const entry = this.entries.get(id);
    if (!entry || entry.inFlight === 0) return { stale: true, effects };
    entry.inFlight--;
    entry.lastUsed = this.opts.clock();
    if (entry.inFlight === 0) {
      const s = entry.state;
      if (s.state === "draining") {
        this.move(entry, { state: "unloading", options: s.options, handle: s.handle, op: s.op, next: s.next, heldFor: null, cause: s.next ? "reload" : "unload" });
        effects.push({ kind: "close", id, op: s.op, handle: s.handle });
      }
      effects.push({ kind: "changed" });
    }
    return { stale: false, effects };
  }

  /** The loader of `op` gave a model. Stale (the operation was overtaken): the shell closes `handle`. */
  loadSucceeded(id: string, op: number, handle: H): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    const entry = this.entries.get(id);
    const s = entry?.state;
    if (!entry || s?.state !== "loading" || s.op !== op) return { stale: true, effects };
    const now = this.opts.clock();
    entry.lastUsed = now;
    this.move(entry, { state: "loaded", options: s.options, handle });
    this.events.emit("load", { id, outcome: "loaded", seconds: (now - s.since) / 1000 });
    effects.push({ kind: "settle", op, outcome: { ok: true, snapshot: this.snap(entry) } }, { kind: "changed" });
    return { stale: false, effects };
  }

  /**
   * The loader of `op` failed, or ran past its bound (`abandoned`: it may still be running; the shell
   * calls abandonedEnded when it ends). The model is `failed` with the reason; a later ask retries.
   */
  loadFailed(id: string, op: number, cause: unknown, abandoned = false): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    const entry = this.entries.get(id);
    const s = entry?.state;
    if (!entry || s?.state !== "loading" || s.op !== op) return { stale: true, effects };
    if (abandoned) entry.abandoned++;
    const error = loadError(id, cause);
    this.move(entry, { state: "failed", options: s.options, error });
    this.events.emit("load", { id, outcome: "failed", seconds: (this.opts.clock() - s.since) / 1000, error });
    effects.push({ kind: "settle", op, outcome: { ok: false, error, retry: false } }, { kind: "changed" });
    return { stale: false, effects };
  }

  /** A load given up by loadFailed(..., abandoned) has ended (its late model, if any, closed): its room is free. */
  abandonedEnded(id: string): ModelUpdate<H> {
    const entry = this.entries.get(id);
    if (!entry || entry.abandoned === 0) return { stale: true, effects: [] };
    entry.abandoned--;
    return { stale: false, effects: [{ kind: "changed" }] };
  }

  /** A close of `op` ended (`error` when it failed or overran its bound; the model counts as freed either way). */
  closed(id: string, op: number, error?: KvbridgeError): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    const entry = this.entries.get(id);
    const s = entry?.state;
    if (!entry || s?.state !== "unloading" || s.op !== op) return { stale: true, effects };
    this.events.emit("unloaded", error ? { id, cause: s.cause, error } : { id, cause: s.cause });
    if (s.next !== null && !this.stopped) {
      // A reload: the same operation goes on to load with the new options, in the room it already holds.
      this.move(entry, { state: "loading", options: s.next, op, awaiting: null, since: this.opts.clock() });
      entry.loads++;
      effects.push({ kind: "load", spec: entry.spec, op, options: s.next });
    } else {
      this.move(entry, { state: "unloaded" });
      if (s.next !== null) effects.push({ kind: "settle", op, outcome: { ok: false, error: shuttingDown(), retry: false } });
      else effects.push({ kind: "settle", op, outcome: { ok: true, snapshot: this.snap(entry) } });
    }
    // The model this one was evicted for may load now.
    const heir = s.heldFor === null ? undefined : this.entries.get(s.heldFor);
    const h = heir?.state;
    if (heir && h?.state === "loading" && h.awaiting === id) {
      heir.state = { ...h, awaiting: null }; // same state, its wait is over: not a transition
      effects.push({ kind: "load", spec: heir.spec, op: h.op, options: h.options });
    }
    effects.push({ kind: "changed" });
    return { stale: false, effects };
  }

  /** The drain bound of `op` passed. Requests still in flight: the model stays loaded as it was, and the reload or unload is refused. */
  drainExpired(id: string, op: number): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    const entry = this.entries.get(id);
    const s = entry?.state;
    if (!entry || s?.state !== "draining" || s.op !== op) return { stale: true, effects };
    this.move(entry, { state: "loaded", options: s.options, handle: s.handle });
    const error = new KvbridgeError(
      "DEADLINE_EXCEEDED",
      `model ${id} still has ${entry.inFlight} request(s) in flight after ${this.opts.drainMs} ms; it stays loaded with its current options: retry when it is idle`,
      { details: { reason: "models_busy", param: "model" } },
    );
    effects.push({ kind: "settle", op, outcome: { ok: false, error, retry: true } }, { kind: "changed" });
    return { stale: false, effects };
  }

  /**
   * The node is stopping: no new loads; loads under way fail, loaded and draining models close (the
   * caller has drained the node's requests first). Closes under way finish as they are.
   */
  shutdown(): ModelUpdate<H> {
    const effects: ModelEffect<H>[] = [];
    this.stopped = true;
    for (const entry of this.entries.values()) {
      const s = entry.state;
      switch (s.state) {
        case "loading":
          this.move(entry, { state: "failed", options: s.options, error: shuttingDown() });
          effects.push({ kind: "settle", op: s.op, outcome: { ok: false, error: shuttingDown(), retry: false } });
          break;
        case "draining":
          effects.push({ kind: "settle", op: s.op, outcome: { ok: false, error: shuttingDown(), retry: false } });
          this.move(entry, { state: "unloading", options: s.options, handle: s.handle, op: s.op, next: null, heldFor: null, cause: "shutdown" });
          effects.push({ kind: "close", id: entry.spec.id, op: s.op, handle: s.handle });
          break;
        case "loaded": {
          const op = this.nextOp++;
          this.move(entry, { state: "unloading", options: s.options, handle: s.handle, op, next: null, heldFor: null, cause: "shutdown" });
          effects.push({ kind: "close", id: entry.spec.id, op, handle: s.handle });
          break;
        }
        case "unloading":
        case "unloaded":
        case "failed":
          break;
        default:
          exhausted(s);
      }
    }
    effects.push({ kind: "changed" });
    return { stale: false, effects };
  }

  /** One model's snapshot (a catalog model never asked for reads unloaded); undefined for an unknown name. */
  snapshot(name: string): ModelSnapshot | undefined {
    const spec = this.catalog.resolve(name);
    if (!spec) return undefined;
    const entry = this.entries.get(spec.id);
    return entry ? this.snap(entry) : { id: spec.id, aliases: spec.aliases, path: spec.path, state: "unloaded", options: null, lastUsedMs: null, requestsInFlight: 0, failure: null, loads: 0 };
  }

  /** Every model the node can serve, in catalog order. */
  snapshots(): ModelSnapshot[] {
    return this.catalog.models.map((m) => this.snapshot(m.id)!);
  }

  /** Ids with an entry (models somebody asked for), for invariant checks. */
  entryIds(): string[] {
    return [...this.entries.keys()];
  }

  /** The state of an entry, for the shell and for invariant checks; undefined when never asked for. */
  stateOf(id: string): Readonly<ModelState<H>> | undefined {
    return this.entries.get(id)?.state;
  }

  private insert(spec: ModelSpec): Entry<H> {
    const entry: Entry<H> = { spec, state: { state: "unloaded" }, inFlight: 0, lastUsed: null, loads: 0, abandoned: 0, order: this.nextOrder++ };
    this.entries.set(spec.id, entry);
    return entry;
  }

  /** loaded -> draining (requests in flight) or straight to unloading (idle), for a reload (`next`) or an unload. */
  private leaveLoaded(entry: Entry<H>, s: Extract<ModelState<H>, { state: "loaded" }>, op: number, next: ModelLoadOptions | null, cause: UnloadCause, effects: ModelEffect<H>[]): void {
    if (entry.inFlight === 0) {
      this.move(entry, { state: "unloading", options: s.options, handle: s.handle, op, next, heldFor: null, cause });
      effects.push({ kind: "close", id: entry.spec.id, op, handle: s.handle });
    } else {
      const deadline = this.opts.clock() + this.opts.drainMs;
      this.move(entry, { state: "draining", options: s.options, handle: s.handle, op, next, deadline });
      effects.push({ kind: "drain-timer", id: entry.spec.id, op, deadline });
    }
  }

  /** A load for an unloaded or failed model: in free room, or in the room of the least recently used idle model, or not now. */
  private startLoad(entry: Entry<H>, options: ModelLoadOptions, effects: ModelEffect<H>[]): ModelDecision<H> {
    // A given-up loader of this model may still be running: one loader per model, so wait for it.
    if (entry.abandoned > 0) return { kind: "wait", busy: null };
    let used = 0;
    const idle: Entry<H>[] = [];
    const busy: string[] = [];
    for (const e of this.entries.values()) {
      const s = e.state;
      used += e.abandoned;
      if (s.state === "loading" || s.state === "loaded" || s.state === "draining" || (s.state === "unloading" && s.heldFor === null)) used++;
      if (s.state === "loaded" && e.inFlight === 0) idle.push(e);
      else if (s.state === "loaded" || s.state === "draining") busy.push(`${e.spec.id} (${e.inFlight} in flight)`);
      else if (s.state === "loading") busy.push(`${e.spec.id} (loading)`);
    }
    const since = this.opts.clock();
    if (used < this.opts.maxResident) {
      const op = this.nextOp++;
      this.move(entry, { state: "loading", options, op, awaiting: null, since });
      entry.loads++;
      effects.push({ kind: "load", spec: entry.spec, op, options }, { kind: "changed" });
      return { kind: "join", op };
    }
    const victim = idle.sort((a, b) => (a.lastUsed ?? -Infinity) - (b.lastUsed ?? -Infinity) || a.order - b.order)[0];
    if (victim && victim.state.state === "loaded") {
      const v = victim.state;
      const op = this.nextOp++;
      const closeOp = this.nextOp++;
      this.move(victim, { state: "unloading", options: v.options, handle: v.handle, op: closeOp, next: null, heldFor: entry.spec.id, cause: "evict" });
      effects.push({ kind: "close", id: victim.spec.id, op: closeOp, handle: v.handle });
      this.move(entry, { state: "loading", options, op, awaiting: victim.spec.id, since });
      entry.loads++;
      effects.push({ kind: "changed" });
      return { kind: "join", op };
    }
    const error = new KvbridgeError(
      "RESOURCE_EXHAUSTED",
      `cannot load model ${entry.spec.id}: ${this.opts.maxResident} of ${this.opts.maxResident} models resident and none idle (${busy.join(", ") || "all changing state"}); retry later or raise --models-max`,
      { details: { reason: "models_busy", param: "model", limit: this.opts.maxResident } },
    );
    return { kind: "wait", busy: error };
  }

  private move(entry: Entry<H>, next: ModelState<H>): void {
    const from = entry.state.state;
    if (!isLegalTransition(from, next.state)) {
      throw new KvbridgeError("INTERNAL", `model ${entry.spec.id}: illegal state change ${from} -> ${next.state}`);
    }
    entry.state = next;
    this.events.emit("state", { id: entry.spec.id, from, to: next.state, snapshot: this.snap(entry) });
  }

  private snap(entry: Entry<H>): ModelSnapshot {
    const s = entry.state;
    return {
      id: entry.spec.id,
      aliases: entry.spec.aliases,
      path: entry.spec.path,
      state: s.state,
      options: s.state === "unloaded" ? null : s.options,
      lastUsedMs: entry.lastUsed,
      requestsInFlight: entry.inFlight,
      failure: s.state === "failed" ? { code: s.error.code, message: s.error.message } : null,
      loads: entry.loads,
    };
  }
}

function exhausted(s: never): never {
  throw new KvbridgeError("INTERNAL", `unknown model state ${JSON.stringify(s)}`);
}

function notFound(name: string): KvbridgeError {
  return new KvbridgeError("NOT_FOUND", `model ${JSON.stringify(name)} is not served here; GET /v1/models lists the models`, { details: { reason: "model_not_found", param: "model" } });
}

function shuttingDown(): KvbridgeError {
  return new KvbridgeError("UNAVAILABLE", "the node is shutting down; retry on another node", { details: { reason: "draining" } });
}

function loadError(id: string, cause: unknown): KvbridgeError {
  const timedOut = cause instanceof KvbridgeError && cause.code === "DEADLINE_EXCEEDED";
  const message = cause instanceof Error ? cause.message : String(cause);
  return new KvbridgeError(timedOut ? "DEADLINE_EXCEEDED" : "UNAVAILABLE", `model ${id} failed to load: ${message}; a later request retries the load`, {
    cause,
    details: { reason: "model_load_failed", param: "model" },
  });
}
