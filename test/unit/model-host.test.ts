// The model host over its registry with a loader the test controls and timers it fires: one load
// for many callers, a same-options load answered at once, reloads that drain (and keep the model
// when the drain bound passes), failed loads that leave `failed` and are retried by a later request,
// eviction of the least recently used idle model, busy refusals naming the busy models, unknown
// models, idempotent unloads and releases, load timeouts, cancellation and shutdown.
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { buildModelCatalog } from "../../src/models/model-catalog.js";
import { ModelHost, type HostTimers, type ModelHostOptions } from "../../src/models/model-host.js";
import type { ModelLoadOptions } from "../../src/models/model-options.js";
import type { ModelEventMap } from "../../src/models/model-state.js";

class ManualTimers implements HostTimers {
  now = 1_000;
  private seq = 0;
  private readonly due = new Map<number, { at: number; fn: () => void }>();
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }
  /** Moves the clock on, firing every timer due by then in order. */
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const next = [...this.due.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!next) break;
      this.due.delete(next[0]);
      this.now = Math.max(this.now, next[1].at);
      next[1].fn();
    }
    this.now = until;
  }
}

interface FakeModel {
  id: string;
  options: ModelLoadOptions;
  closed: boolean;
  close(): Promise<void>;
}

interface PendingLoad {
  id: string;
  options: ModelLoadOptions;
  signal: AbortSignal;
  resolve: () => void;
  reject: (err: Error) => void;
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A loader the test finishes by hand; it rejects when its signal aborts unless `ignoreAbort`. */
function world(opts: Partial<ModelHostOptions<FakeModel>> = {}, ignoreAbort = false) {
  const ids = ["a", "b", "c"];
  const timers = new ManualTimers();
  const loads: PendingLoad[] = [];
  const models: FakeModel[] = [];
  const host = new ModelHost<FakeModel>({
    catalog: buildModelCatalog({ models: ids.map((id) => `${id}=/m/${id}.gguf`), aliases: ["alpha=a"] }),
    loader: (spec, options, signal) =>
      new Promise<FakeModel>((resolve, reject) => {
        if (!ignoreAbort) signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
        loads.push({
          id: spec.id,
          options,
          signal,
          resolve: () => {
            const m: FakeModel = { id: spec.id, options, closed: false, close: async () => void (m.closed = true) };
            models.push(m);
            resolve(m);
          },
          reject,
        });
      }),
    clock: () => timers.now,
    timers,
    maxResident: 2,
    loadWaitMs: 1_000,
    drainMs: 5_000,
    loadTimeoutMs: 60_000,
    closeTimeoutMs: 1_000,
    ...opts,
  });
  const events: Array<[keyof ModelEventMap, string, string]> = [];
  host.events.on("state", (e) => events.push(["state", e.id, `${e.from}->${e.to}`]));
  host.events.on("load", (e) => events.push(["load", e.id, e.outcome]));
  host.events.on("unloaded", (e) => events.push(["unloaded", e.id, e.cause]));
  return { host, timers, loads, models, events };
}

/** Resolves the oldest pending load of `id` and lets the host see it. */
async function finishLoad(w: ReturnType<typeof world>, id: string): Promise<void> {
  const i = w.loads.findIndex((l) => l.id === id);
  expect(i, `a load of ${id} is pending`).toBeGreaterThanOrEqual(0);
  w.loads.splice(i, 1)[0]!.resolve();
  await flush();
}

const hosts: Array<ModelHost<FakeModel>> = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
});
function track<T extends { host: ModelHost<FakeModel> }>(w: T): T {
  hosts.push(w.host);
  return w;
}

describe("model host", () => {
  it("answers 20 concurrent loads of one model (explicit and auto) with one load, then a same-options load at once", async () => {
    const w = track(world());
    const calls = Array.from({ length: 20 }, (_, i) => (i % 2 ? w.host.ensureLoaded("a", { threads: 2 }) : w.host.acquire(i % 4 ? "alpha" : "a").then((l) => l.release())));
    // The explicit options arrive first only for odd i; an auto-load with no options started the load with the defaults.
    await flush();
    expect(w.loads.length).toBe(1);
    await finishLoad(w, "a");
    // Odd callers asked for threads 2, the running load had none: after it they reloaded, once.
    await flush();
    expect(w.loads.map((l) => l.options)).toEqual([{ threads: 2 }]);
    await finishLoad(w, "a");
    await Promise.all(calls);
    expect(w.host.snapshot("a")).toMatchObject({ state: "loaded", options: { threads: 2 }, loads: 2, requestsInFlight: 0 });
    const before = w.events.length;
    await expect(w.host.ensureLoaded("a", { threads: 2 })).resolves.toMatchObject({ state: "loaded" });
    expect(w.loads.length).toBe(0);
    expect(w.events.length).toBe(before);
  });

  it("joins one load for all callers when the first names the options", async () => {
    const w = track(world());
    const first = w.host.ensureLoaded("a", { contextSize: 512 });
    const rest = Array.from({ length: 19 }, (_, i) => (i % 2 ? w.host.ensureLoaded("a", { contextSize: 512 }) : w.host.acquire("a")));
    await flush();
    expect(w.loads.length).toBe(1);
    await finishLoad(w, "a");
    const snaps = await Promise.all([first, ...rest]);
    expect(w.loads.length).toBe(0);
    expect(w.host.snapshot("a")).toMatchObject({ loads: 1, requestsInFlight: 10 });
    for (const s of snaps) if ("release" in s) s.release();
    expect(w.host.snapshot("a")?.requestsInFlight).toBe(0);
  });

  it("reloads with other options only after the requests in flight end, and answers the reload with the new state", async () => {
    const w = track(world());
    const lease = w.host.acquire("a");
    await finishLoad(w, "a");
    const l = await lease;
    const reload = w.host.ensureLoaded("a", { threads: 4 });
    await flush();
    expect(w.host.snapshot("a")?.state).toBe("draining");
    expect(w.models[0]!.closed).toBe(false);
    const during = w.host.acquire("a"); // waits for the reload instead of prolonging the drain
    l.release();
    l.release(); // idempotent
    await flush();
    expect(w.models[0]!.closed).toBe(true);
    expect(w.loads.map((x) => x.options)).toEqual([{ threads: 4 }]);
    await finishLoad(w, "a");
    await expect(reload).resolves.toMatchObject({ state: "loaded", options: { threads: 4 } });
    const l2 = await during;
    expect(l2.model.options).toEqual({ threads: 4 });
    expect(w.host.snapshot("a")?.requestsInFlight).toBe(1);
    l2.release();
    expect(w.events.filter((e) => e[1] === "a" && e[0] === "state").map((e) => e[2])).toEqual([
      "unloaded->loading",
      "loading->loaded",
      "loaded->draining",
      "draining->unloading",
      "unloading->loading",
      "loading->loaded",
    ]);
  });

  it("keeps the model as it was when the drain bound passes, refusing the reload and serving the waiting request", async () => {
    const w = track(world());
    const lp = w.host.acquire("a");
    await finishLoad(w, "a");
    const l = await lp;
    const reload = w.host.ensureLoaded("a", { threads: 4 });
    const during = w.host.acquire("a");
    await flush();
    w.timers.advance(5_000);
    const err = await reload.catch((e: unknown) => e as KvbridgeError);
    expect(err).toMatchObject({ code: "DEADLINE_EXCEEDED", details: { reason: "models_busy", param: "model" } });
    const l2 = await during;
    expect(l2.model).toBe(w.models[0]);
    expect(w.host.snapshot("a")).toMatchObject({ state: "loaded", options: {}, requestsInFlight: 2 });
    l.release();
    l2.release();
    expect(w.models[0]!.closed).toBe(false);
  });

  it("leaves a failed load failed with its reason for every joiner, and a later request retries it", async () => {
    const w = track(world());
    const a = w.host.acquire("a");
    const b = w.host.ensureLoaded("a");
    await flush();
    w.loads.shift()!.reject(new Error("file truncated"));
    for (const p of [a, b]) await expect(p).rejects.toMatchObject({ code: "UNAVAILABLE", details: { reason: "model_load_failed", param: "model" } });
    expect(w.host.snapshot("a")).toMatchObject({ state: "failed", failure: { code: "UNAVAILABLE" } });
    expect(w.host.snapshot("a")?.failure?.message).toContain("file truncated");
    const retry = w.host.acquire("a");
    await finishLoad(w, "a");
    (await retry).release();
    expect(w.host.snapshot("a")).toMatchObject({ state: "loaded", failure: null, loads: 2 });
    expect(w.events.filter((e) => e[0] === "load").map((e) => e[2])).toEqual(["failed", "loaded"]);
  });

  it("evicts the least recently used idle model for a third one at models-max 2, never a busy one", async () => {
    const w = track(world());
    for (const id of ["a", "b"]) {
      const p = w.host.acquire(id);
      await finishLoad(w, id);
      (await p).release();
    }
    w.timers.advance(10);
    const busyA = await w.host.acquire("a"); // a: most recent and busy; b: idle, least recent
    const c = w.host.acquire("c");
    await flush();
    expect(w.models.find((m) => m.id === "b")!.closed).toBe(true);
    expect(w.host.snapshot("b")?.state).toBe("unloaded");
    await finishLoad(w, "c");
    (await c).release();
    expect(w.host.snapshots().map((s) => [s.id, s.state])).toEqual([["a", "loaded"], ["b", "unloaded"], ["c", "loaded"]]);
    expect(w.events).toContainEqual(["unloaded", "b", "evict"]);
    busyA.release();
  });

  it("refuses at once with RESOURCE_EXHAUSTED naming the busy models when the load may not wait", async () => {
    const w = track(world({ maxResident: 1, loadWaitMs: 0 }));
    const p = w.host.acquire("a");
    await finishLoad(w, "a");
    const held = await p;
    const err = (await w.host.acquire("b").then(() => null, (e: unknown) => e)) as KvbridgeError;
    expect(err).toMatchObject({ code: "RESOURCE_EXHAUSTED", details: { reason: "models_busy", param: "model", limit: 1 } });
    expect(err.message).toContain("a (1 in flight)");
    expect(w.loads.length).toBe(0);
    held.release();
  });

  it("waits for a busy model to become idle within the bound, then evicts it; past the bound refuses", async () => {
    const w = track(world({ maxResident: 1, loadWaitMs: 1_000 }));
    const p = w.host.acquire("a");
    await finishLoad(w, "a");
    const held = await p;
    const waiting = w.host.acquire("b");
    await flush();
    expect(w.loads.length).toBe(0);
    held.release();
    await flush();
    expect(w.models[0]!.closed).toBe(true);
    await finishLoad(w, "b");
    const lb = await waiting;
    const late = w.host.acquire("c");
    await flush();
    w.timers.advance(1_000);
    await expect(late).rejects.toMatchObject({ code: "RESOURCE_EXHAUSTED", details: { reason: "models_busy" } });
    lb.release();
  });

  it("answers an unknown model NOT_FOUND model_not_found without creating an entry; an unload of a model never asked for creates none either", async () => {
    const w = track(world());
    await expect(w.host.acquire("nope")).rejects.toMatchObject({ code: "NOT_FOUND", details: { reason: "model_not_found", param: "model" } });
    await expect(w.host.ensureLoaded("nope", {})).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(w.host.unload("nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(w.host.unload("b")).resolves.toMatchObject({ id: "b", state: "unloaded" });
    expect(w.host.snapshot("c")).toMatchObject({ state: "unloaded", loads: 0 });
    expect(w.host.registry.entryIds()).toEqual([]);
  });

  it("unloads idempotently, after the requests in flight end; two unloads share one close", async () => {
    const w = track(world());
    const p = w.host.acquire("a");
    await finishLoad(w, "a");
    const held = await p;
    const u1 = w.host.unload("a");
    const u2 = w.host.unload("alpha");
    await flush();
    expect(w.host.snapshot("a")?.state).toBe("draining");
    held.release();
    await expect(Promise.all([u1, u2])).resolves.toMatchObject([{ state: "unloaded" }, { state: "unloaded" }]);
    await expect(w.host.unload("a")).resolves.toMatchObject({ state: "unloaded" });
    expect(w.events.filter((e) => e[0] === "unloaded")).toEqual([["unloaded", "a", "unload"]]);
  });

  it("refuses an unload whose drain bound passes (DEADLINE_EXCEEDED models_busy) and keeps serving the model", async () => {
    const w = track(world());
    const p = w.host.acquire("a");
    await finishLoad(w, "a");
    const held = await p;
    const u = w.host.unload("a");
    await flush();
    w.timers.advance(5_000);
    await expect(u).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED", details: { reason: "models_busy" } });
    expect(w.host.snapshot("a")).toMatchObject({ state: "loaded", requestsInFlight: 1 });
    expect(w.models[0]!.closed).toBe(false);
    held.release();
    await expect(w.host.unload("a")).resolves.toMatchObject({ state: "unloaded" });
  });

  it("holds the room of a load given up past its bound until its loader ends, and never runs two loaders of one model", async () => {
    const w = track(world({ loadTimeoutMs: 500, maxResident: 1, loadWaitMs: 10_000 }, true));
    const p = w.host.acquire("a");
    await flush();
    w.timers.advance(500);
    await expect(p).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED" });
    const again = w.host.acquire("a");
    const other = w.host.acquire("b");
    await flush();
    expect(w.loads.length).toBe(1); // the abandoned loader still runs: no second one, and no room for b
    await finishLoad(w, "a"); // it ends late; its model is closed and the room comes back
    await flush();
    expect(w.models[0]!.closed).toBe(true);
    expect(w.loads.map((l) => l.id)).toEqual(["a"]);
    await finishLoad(w, "a");
    (await again).release();
    await flush();
    await finishLoad(w, "b");
    (await other).release();
  });

  it("fails a load that passes its bound, aborts its loader, and closes the model if it still arrives", async () => {
    const w = track(world({ loadTimeoutMs: 500 }, true));
    const p = w.host.acquire("a");
    await flush();
    w.timers.advance(500);
    await expect(p).rejects.toMatchObject({ code: "DEADLINE_EXCEEDED", details: { reason: "model_load_failed" } });
    expect(w.loads[0]!.signal.aborted).toBe(true);
    await finishLoad(w, "a"); // the loader ignored its signal
    expect(w.models[0]!.closed).toBe(true);
    expect(w.host.snapshot("a")?.state).toBe("failed");
  });

  it("cancels one waiting caller by its own signal and leaves the others waiting for the same load", async () => {
    const w = track(world());
    const ac = new AbortController();
    const mine = w.host.acquire("a", { signal: ac.signal });
    const other = w.host.acquire("a");
    await flush();
    ac.abort();
    await expect(mine).rejects.toMatchObject({ code: "CANCELLED" });
    await finishLoad(w, "a");
    const l = await other;
    expect(w.host.snapshot("a")?.requestsInFlight).toBe(1);
    l.release();
  });

  it("on close aborts loads, answers every caller, closes loaded models, refuses new calls, and is idempotent", async () => {
    const w = world();
    const p = w.host.acquire("a");
    await finishLoad(w, "a");
    (await p).release();
    const loading = w.host.acquire("b");
    await flush();
    await Promise.all([w.host.close(), w.host.close()]);
    await expect(loading).rejects.toMatchObject({ code: "UNAVAILABLE", details: { reason: "draining" } });
    expect(w.loads[0]!.signal.aborted).toBe(true);
    expect(w.models[0]!.closed).toBe(true);
    await expect(w.host.acquire("a")).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(w.host.snapshots().map((s) => s.state)).toEqual(["unloaded", "failed", "unloaded"]);
  });
});
