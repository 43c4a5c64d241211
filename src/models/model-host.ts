// The shell around the model registry: runs what it decides (the injected loader, a model's close,
// drain and load timers), parks callers that must wait and asks again on every change, and answers
// every caller of one operation with that operation's outcome. Every wait is bounded: loads by
// --model-load-timeout, drains by the drain bound, closes by the close bound, waits for room by the
// load-wait bound, and each call by its own AbortSignal.
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import {
  DEFAULT_MODEL_CLOSE_TIMEOUT_MS,
  DEFAULT_MODEL_DRAIN_MS,
  DEFAULT_MODEL_LOAD_TIMEOUT_MS,
  DEFAULT_MODEL_LOAD_WAIT_MS,
  DEFAULT_MODELS_MAX,
} from "../config/defaults.js";
import { systemClock, type Clock } from "../store/clock.js";
import type { ModelCatalog, ModelSpec } from "./model-catalog.js";
import type { ModelLoadOptions } from "./model-options.js";
import { ModelRegistry, type ModelEffect, type ModelStep, type ModelUpdate } from "./model-registry.js";
import type { ModelSnapshot } from "./model-state.js";

/** What a loader gives: a model ready to serve, freed by close(). */
export interface LoadedModel {
  close(): Promise<void>;
}

/** Loads one model with the given options; should stop early (and reject) when `signal` aborts. */
export type ModelLoader<H extends LoadedModel> = (spec: ModelSpec, options: ModelLoadOptions, signal: AbortSignal) => Promise<H>;

/** Timers, injectable so tests can fire them step by step. */
export interface HostTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: HostTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface ModelHostOptions<H extends LoadedModel> {
  readonly catalog: ModelCatalog;
  readonly loader: ModelLoader<H>;
  /** --models-max. Default DEFAULT_MODELS_MAX. */
  readonly maxResident?: number;
  /** The node's engine flags, for loads that name no options. Default: none (the engine's own). */
  readonly defaults?: ModelLoadOptions;
  /** How long a load waits for a busy model to become idle; 0 refuses at once. */
  readonly loadWaitMs?: number;
  readonly drainMs?: number;
  readonly loadTimeoutMs?: number;
  readonly closeTimeoutMs?: number;
  readonly clock?: Clock;
  readonly timers?: HostTimers;
}

/** One request counted in flight on a loaded model; the model is never unloaded before release(). */
export interface ModelLease<H> {
  readonly id: string;
  readonly model: H;
  readonly options: ModelLoadOptions;
  /** Ends the request's hold on the model. Idempotent. */
  release(): void;
}

export interface ModelCallOptions {
  readonly signal?: AbortSignal;
}

type CallKind = "ensure" | "unload" | "acquire";

interface Call<H> {
  readonly kind: CallKind;
  readonly name: string;
  readonly options: ModelLoadOptions | undefined;
  readonly resolve: (value: ModelSnapshot | ModelLease<H>) => void;
  readonly reject: (err: KvbridgeError) => void;
  settled: boolean;
  busyTimer: unknown;
  busyError: KvbridgeError | null;
  detach: () => void;
}

export class ModelHost<H extends LoadedModel> {
  readonly registry: ModelRegistry<H>;
  private readonly loader: ModelLoader<H>;
  private readonly clock: Clock;
  private readonly timers: HostTimers;
  private readonly loadWaitMs: number;
  private readonly loadTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private waiters: Array<Call<H>> = [];
  private readonly joiners = new Map<number, Array<Call<H>>>();
  private readonly loads = new Map<number, { abort: AbortController; timer: unknown }>();
  private readonly drainTimers = new Set<unknown>();
  /** Loader and close promises under way, awaited (bounded) by close(). */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly queue: Array<ModelEffect<H>> = [];
  private pumping = false;
  private changed = false;
  private stopped = false;
  private closing: Promise<void> | null = null;

  constructor(opts: ModelHostOptions<H>) {
    this.loader = opts.loader;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.loadWaitMs = opts.loadWaitMs ?? DEFAULT_MODEL_LOAD_WAIT_MS;
    this.loadTimeoutMs = opts.loadTimeoutMs ?? DEFAULT_MODEL_LOAD_TIMEOUT_MS;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_MODEL_CLOSE_TIMEOUT_MS;
    this.registry = new ModelRegistry<H>(opts.catalog, {
      maxResident: opts.maxResident ?? DEFAULT_MODELS_MAX,
      drainMs: opts.drainMs ?? DEFAULT_MODEL_DRAIN_MS,
      defaults: opts.defaults ?? {},
      clock: this.clock,
    });
  }

  get events(): ModelRegistry<H>["events"] {
    return this.registry.events;
  }

  /**
   * Declarative load: resolves with the model's snapshot once it is loaded with `options` (combined
   * with the node's defaults). Already so: at once. Loaded with others: drains and reloads. Options
   * undefined: loaded with whatever options it has (or the defaults).
   */
  ensureLoaded(name: string, options?: ModelLoadOptions, call: ModelCallOptions = {}): Promise<ModelSnapshot> {
    return this.start("ensure", name, options, call) as Promise<ModelSnapshot>;
  }

  /** Idempotent unload: resolves with the snapshot (unloaded) once the model is freed, after its requests end (bounded). */
  unload(name: string, call: ModelCallOptions = {}): Promise<ModelSnapshot> {
    return this.start("unload", name, undefined, call) as Promise<ModelSnapshot>;
  }

  /** The model for one request, loaded if need be (auto-load), counted in flight until the lease is released. */
  acquire(name: string, call: ModelCallOptions = {}): Promise<ModelLease<H>> {
    return this.start("acquire", name, undefined, call) as Promise<ModelLease<H>>;
  }

  snapshot(name: string): ModelSnapshot | undefined {
    return this.registry.snapshot(name);
  }

  snapshots(): ModelSnapshot[] {
    return this.registry.snapshots();
  }

  /**
   * Stops: refuses new calls, aborts loads, answers every waiting caller, closes every model (the
   * node drains its requests first) and waits for loads and closes under way, each bounded. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true;
      for (const { abort } of this.loads.values()) abort.abort(shuttingDown());
      this.apply(this.registry.shutdown().effects);
      for (const w of this.waiters.splice(0)) this.fail(w, shuttingDown());
      for (const t of this.drainTimers) this.timers.clearTimeout(t);
      this.drainTimers.clear();
      await Promise.allSettled([...this.pending].map((p) => this.bounded(p, "finishing a model load or close at shutdown")));
      for (const calls of this.joiners.values()) for (const c of calls) this.fail(c, shuttingDown());
      this.joiners.clear();
    })();
    return this.closing;
  }

  private start(kind: CallKind, name: string, options: ModelLoadOptions | undefined, opts: ModelCallOptions): Promise<ModelSnapshot | ModelLease<H>> {
    return new Promise((resolve, reject) => {
      if (this.stopped && kind !== "unload") return reject(shuttingDown());
      const signal = opts.signal;
      if (signal?.aborted) return reject(cancelled(signal));
      const call: Call<H> = { kind, name, options, resolve, reject, settled: false, busyTimer: null, busyError: null, detach: () => undefined };
      if (signal) {
        const onAbort = (): void => this.fail(call, cancelled(signal));
        signal.addEventListener("abort", onAbort, { once: true });
        call.detach = () => signal.removeEventListener("abort", onAbort);
      }
      this.evaluate(call);
    });
  }

  /** Asks the registry for `call` and acts on the decision, in one synchronous step. */
  private evaluate(call: Call<H>): void {
    if (call.settled) return;
    const step: ModelStep<H> = call.kind === "unload" ? this.registry.unload(call.name) : this.registry.ensure(call.name, call.options, call.kind === "acquire");
    const d = step.decision;
    switch (d.kind) {
      case "done":
        if (call.kind === "acquire" && d.handle !== undefined) this.finish(call, this.lease(d.snapshot.id, d.handle, d.snapshot.options ?? {}));
        else this.finish(call, d.snapshot);
        break;
      case "refuse":
        this.fail(call, d.error);
        break;
      case "join": {
        this.clearBusy(call);
        const list = this.joiners.get(d.op);
        if (list) list.push(call);
        else this.joiners.set(d.op, [call]);
        break;
      }
      case "wait":
        if (d.busy) {
          call.busyError = d.busy;
          if (this.loadWaitMs <= 0) {
            this.fail(call, d.busy);
            break;
          }
          call.busyTimer ??= this.timers.setTimeout(() => this.fail(call, call.busyError ?? d.busy!), this.loadWaitMs);
        }
        this.waiters.push(call);
        break;
      default: {
        const never: never = d;
        throw new KvbridgeError("INTERNAL", `unknown model decision ${JSON.stringify(never)}`);
      }
    }
    this.apply(step.effects);
  }

  private update(u: ModelUpdate<H>): void {
    this.apply(u.effects);
  }

  /** Runs effects in order; a parked caller is asked again once per batch of changes. Re-entrant calls only queue. */
  private apply(effects: readonly ModelEffect<H>[]): void {
    this.queue.push(...effects);
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        const e = this.queue.shift();
        if (e) {
          this.run(e);
          continue;
        }
        if (!this.changed) break;
        this.changed = false;
        for (const w of this.waiters.splice(0)) this.evaluate(w);
      }
    } finally {
      this.pumping = false;
    }
  }

  private run(e: ModelEffect<H>): void {
    switch (e.kind) {
      case "load":
        this.startLoad(e.spec, e.op, e.options);
        break;
      case "close":
        this.track(this.closeBounded(e.id, e.handle).then((err) => this.update(this.registry.closed(e.id, e.op, err))));
        break;
      case "drain-timer": {
        const t = this.timers.setTimeout(() => {
          this.drainTimers.delete(t);
          this.update(this.registry.drainExpired(e.id, e.op));
        }, Math.max(0, e.deadline - this.clock()));
        this.drainTimers.add(t);
        break;
      }
      case "settle": {
        const calls = this.joiners.get(e.op) ?? [];
        this.joiners.delete(e.op);
        const o = e.outcome;
        for (const c of calls) {
          // A request's lease is taken now, in the step that made the model loaded: nothing can evict it in between.
          if (o.ok) {
            if (c.kind === "acquire") this.evaluate(c);
            else this.finish(c, o.snapshot);
          } else if (o.retry && c.kind !== "unload" && c.options === undefined) this.evaluate(c);
          else this.fail(c, o.error);
        }
        break;
      }
      case "changed":
        this.changed = true;
        break;
      default: {
        const never: never = e;
        throw new KvbridgeError("INTERNAL", `unknown model effect ${JSON.stringify(never)}`);
      }
    }
  }

  private startLoad(spec: ModelSpec, op: number, options: ModelLoadOptions): void {
    const abort = new AbortController();
    // Past its bound a load is given up: its callers hear at once, but the loader may still run and
    // hold memory, so the registry keeps its room until it ends (or, ignoring its signal, the close bound passes).
    let abandoned = false;
    let zombieTimer: unknown = null;
    const abandonEnded = (): void => {
      if (!abandoned) return;
      abandoned = false;
      this.timers.clearTimeout(zombieTimer);
      this.update(this.registry.abandonedEnded(spec.id));
    };
    const timer = this.timers.setTimeout(() => {
      const err = new KvbridgeError("DEADLINE_EXCEEDED", `loading took over ${this.loadTimeoutMs} ms (--model-load-timeout)`);
      this.loads.delete(op);
      const u = this.registry.loadFailed(spec.id, op, err, true);
      if (!u.stale) {
        abandoned = true;
        zombieTimer = this.timers.setTimeout(abandonEnded, this.closeTimeoutMs);
      }
      abort.abort(err);
      this.update(u);
    }, this.loadTimeoutMs);
    this.loads.set(op, { abort, timer });
    const done = (): void => {
      this.timers.clearTimeout(timer);
      this.loads.delete(op);
    };
    let loading: Promise<H>;
    try {
      loading = Promise.resolve(this.loader(spec, options, abort.signal));
    } catch (err) {
      loading = Promise.reject(err);
    }
    this.track(
      loading.then(
        (handle) => {
          done();
          const u = this.registry.loadSucceeded(spec.id, op, handle);
          // Overtaken (timed out, node stopping): nobody will use it, free it now.
          if (u.stale) this.track(this.closeBounded(spec.id, handle).then(abandonEnded));
          else this.update(u);
        },
        (err: unknown) => {
          done();
          abandonEnded();
          this.update(this.registry.loadFailed(spec.id, op, err));
        },
      ),
    );
  }

  /** Closes a model within the close bound; resolves with the error (failed or overran), never rejects. */
  private closeBounded(id: string, handle: H): Promise<KvbridgeError | undefined> {
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(
        () => resolve(new KvbridgeError("DEADLINE_EXCEEDED", `closing model ${id} took over ${this.closeTimeoutMs} ms; counted as freed`)),
        this.closeTimeoutMs,
      );
      Promise.resolve()
        .then(() => handle.close())
        .then(
          () => resolve(undefined),
          (err: unknown) => resolve(toKvbridgeError(err)),
        )
        .finally(() => this.timers.clearTimeout(timer));
    });
  }

  private lease(id: string, model: H, options: ModelLoadOptions): ModelLease<H> {
    let released = false;
    return {
      id,
      model,
      options,
      release: () => {
        if (released) return;
        released = true;
        this.update(this.registry.release(id));
      },
    };
  }

  private finish(call: Call<H>, value: ModelSnapshot | ModelLease<H>): void {
    if (call.settled) {
      if ("release" in value) value.release(); // a lease nobody will hold
      return;
    }
    this.settle(call);
    call.resolve(value);
  }

  private fail(call: Call<H>, err: KvbridgeError): void {
    if (call.settled) return;
    this.settle(call);
    call.reject(err);
  }

  private settle(call: Call<H>): void {
    call.settled = true;
    call.detach();
    this.clearBusy(call);
    this.waiters = this.waiters.filter((w) => w !== call);
    for (const [op, list] of this.joiners) {
      const i = list.indexOf(call);
      if (i >= 0) {
        list.splice(i, 1);
        if (list.length === 0) this.joiners.delete(op);
      }
    }
  }

  private clearBusy(call: Call<H>): void {
    if (call.busyTimer !== null) this.timers.clearTimeout(call.busyTimer);
    call.busyTimer = null;
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  private bounded(p: Promise<unknown>, what: string): Promise<unknown> {
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => resolve(new KvbridgeError("DEADLINE_EXCEEDED", `${what} took over ${this.closeTimeoutMs} ms`)), this.closeTimeoutMs);
      p.then(resolve, resolve).finally(() => this.timers.clearTimeout(timer));
    });
  }
}

function shuttingDown(): KvbridgeError {
  return new KvbridgeError("UNAVAILABLE", "the node is shutting down; retry on another node", { details: { reason: "draining" } });
}

function cancelled(signal: AbortSignal): KvbridgeError {
  const r: unknown = signal.reason;
  return r instanceof KvbridgeError ? r : new KvbridgeError("CANCELLED", "the caller gave up waiting for the model", { cause: r });
}
