// The router's routing policy: a burst of simultaneous requests spreads evenly because each choice
// is reserved in the step that makes it; prefix affinity still wins over load, on decode nodes
// (MatchPrefix) and on prefill nodes (CachedPrefix, the Plan's reservation moving); and, driven through the
// router's real dispatch code with fast-check's scheduler ordering every node answer, every counter
// returns to 0 once every request has ended, whatever failed and in whatever order.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { dispatchCompletion, type Dispatcher, type Upstream } from "../../src/roles/router/completion-dispatch.js";
import type { GenerateOutcome } from "../../src/roles/router/generate-stream.js";
import type { CompletionInput } from "../../src/roles/router/openai-api.js";
import {
  hasReachablePair,
  inRotation,
  nodeState,
  reserveDecode,
  reservePrefill,
  reservePrefillForPrefix,
  servedModel,
  servingTargets,
  type CachedPrefixAnswer,
  type NodeStates,
  type PrefixAnswer,
} from "../../src/roles/router/routing-policy.js";

const targetsOf = (prefix: string, k: number): string[] => Array.from({ length: k }, (_, i) => `${prefix}${i}:1`);
const spread = (nodes: NodeStates, targets: readonly string[]): number => {
  const loads = targets.map((t) => nodeState(nodes, t).inFlight);
  return Math.max(...loads) - Math.min(...loads);
};

describe("routing policy (pure)", () => {
  it("a burst of N simultaneous requests over K equal prefill nodes spreads within one request of even", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 64 }), (k, n) => {
        const nodes: NodeStates = new Map();
        const targets = targetsOf("prefill", k);
        for (let i = 0; i < n; i++) expect(reservePrefill(nodes, targets)).toBeDefined();
        expect(spread(nodes, targets)).toBeLessThanOrEqual(1);
        expect(targets.reduce((sum, t) => sum + nodeState(nodes, t).inFlight, 0)).toBe(n);
      }),
    );
  });

  it("a burst over K decode nodes with equal prefix matches spreads within one of even", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 64 }), fc.nat(5), (k, n, matched) => {
        const nodes: NodeStates = new Map();
        const targets = targetsOf("decode", k);
        for (let i = 0; i < n; i++) expect(reserveDecode(nodes, targets.map((target) => ({ target, matched })))?.matched).toBe(matched);
        expect(spread(nodes, targets)).toBeLessThanOrEqual(1);
      }),
    );
  });

  it("prefix affinity wins over load: the longest match among reachable nodes that answered, then the least loaded", () => {
    const nodeArb = fc.record({ load: fc.nat(20), matched: fc.option(fc.nat(6), { nil: undefined }), reachable: fc.boolean() });
    fc.assert(
      fc.property(fc.array(nodeArb, { minLength: 1, maxLength: 6 }), (spec) => {
        const nodes: NodeStates = new Map();
        const answers: PrefixAnswer[] = spec.map((s, i) => {
          const target = `decode${i}:1`;
          nodes.set(target, { inFlight: s.load, reachable: s.reachable });
          return { target, matched: s.matched };
        });
        const eligible = spec.map((s, i) => ({ ...s, i })).filter((s) => s.matched !== undefined && s.reachable);
        const chosen = reserveDecode(nodes, answers);
        if (eligible.length === 0) {
          expect(chosen).toBeUndefined();
          return;
        }
        const best = Math.max(...eligible.map((s) => s.matched!));
        const leastLoad = Math.min(...eligible.filter((s) => s.matched === best).map((s) => s.load));
        const expected = eligible.find((s) => s.matched === best && s.load === leastLoad)!;
        expect(chosen!.matched).toBe(best);
        expect(chosen!.reservation.target).toBe(`decode${expected.i}:1`);
        // Reserved in the same call, and released exactly once however often release() is called.
        expect(nodes.get(chosen!.reservation.target)!.inFlight).toBe(expected.load + 1);
        chosen!.reservation.release();
        chosen!.reservation.release();
        expect(nodes.get(chosen!.reservation.target)!.inFlight).toBe(expected.load);
      }),
    );
  });

  it("a prefill node out of rotation is never chosen, and none reachable means no choice", () => {
    const nodes: NodeStates = new Map([
      ["a:1", { inFlight: 5, reachable: true }],
      ["b:1", { inFlight: 0, reachable: false }],
    ]);
    expect(reservePrefill(nodes, ["a:1", "b:1"])?.target).toBe("a:1");
    nodeState(nodes, "a:1").reachable = false;
    expect(reservePrefill(nodes, ["a:1", "b:1"])).toBeUndefined();
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(false);
    nodeState(nodes, "b:1").reachable = true;
    // Reachable, but neither node's models are known yet: no pair.
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(false);
    const m = (id: string) => [{ id, aliases: [], fingerprint: `fp-${id}`, state: "loaded" }];
    nodeState(nodes, "b:1").models = m("x");
    nodeState(nodes, "d:1").models = m("y");
    // A pair only of one model: prefill serving x and decode serving y cannot serve anything.
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(false);
    nodeState(nodes, "d:1").models = [...m("y"), ...m("x")];
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(true);
    nodeState(nodes, "d:1").reachable = false;
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(false);
    expect(hasReachablePair(nodes, ["a:1", "b:1"], [])).toBe(false);
  });

  it("a prefill choice is in rotation, not excluded, and the least loaded of those (a retry never returns to a node it failed on)", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ load: fc.nat(9), reachable: fc.boolean(), excluded: fc.boolean() }), { minLength: 1, maxLength: 6 }), (spec) => {
        const targets = spec.map((_, i) => `p${i}:1`);
        const nodes: NodeStates = new Map(spec.map((s, i) => [targets[i]!, { inFlight: s.load, reachable: s.reachable }]));
        const exclude = new Set(targets.filter((_, i) => spec[i]!.excluded));
        const eligible = spec.map((s, i) => ({ ...s, i })).filter((s) => s.reachable && !s.excluded);
        expect(inRotation(nodes, targets)).toEqual(targets.filter((_, i) => spec[i]!.reachable));
        const r = reservePrefill(nodes, targets, exclude);
        if (eligible.length === 0) {
          expect(r).toBeUndefined();
          return;
        }
        const min = Math.min(...eligible.map((s) => s.load));
        expect(r?.target).toBe(targets[eligible.find((s) => s.load === min)!.i]);
        expect(nodeState(nodes, r!.target).inFlight).toBe(min + 1);
        r!.release();
        r!.release();
        expect(nodeState(nodes, r!.target).inFlight).toBe(min);
      }),
    );
  });
});

describe("prefill affinity (pure)", () => {
  it("the Prefill goes to the node caching the longest prefix whatever its load, then the least loaded (the request's own Plan reservation not counted), staying put on a tie; the reservation moves and returns to 0", () => {
    const nodeArb = fc.record({ load: fc.nat(20), chunks: fc.nat(4), reachable: fc.boolean() });
    fc.assert(
      fc.property(fc.array(nodeArb, { minLength: 1, maxLength: 6 }), fc.nat(), (spec, h) => {
        const targets = spec.map((_, i) => `prefill${i}:1`);
        const heldAt = h % spec.length;
        const nodes: NodeStates = new Map(spec.map((x, i) => [targets[i]!, { inFlight: x.load, reachable: true }]));
        // The request's Plan reservation, made while its node was in rotation.
        const held = reservePrefill(nodes, [targets[heldAt]!])!;
        spec.forEach((x, i) => (nodeState(nodes, targets[i]!).reachable = x.reachable));
        const answers: CachedPrefixAnswer[] = spec.map((x, i) => ({ target: targets[i]!, chunks: x.chunks }));
        const eligible = spec.map((x, i) => ({ ...x, i })).filter((x) => x.reachable || x.i === heldAt);
        const best = Math.max(...eligible.map((x) => x.chunks));
        const least = Math.min(...eligible.filter((x) => x.chunks === best).map((x) => x.load));
        const tied = eligible.filter((x) => x.chunks === best && x.load === least);
        const expected = tied.find((x) => x.i === heldAt) ?? tied[0]!;
        const chosen = reservePrefillForPrefix(nodes, held, answers)!;
        expect(chosen.cached).toBe(best);
        expect(chosen.reservation.target).toBe(targets[expected.i]);
        // One reservation in all: on the chosen node now, none left on the Plan's node when it moved.
        spec.forEach((x, i) => expect(nodeState(nodes, targets[i]!).inFlight).toBe(x.load + (i === expected.i ? 1 : 0)));
        held.release();
        chosen.reservation.release();
        chosen.reservation.release();
        spec.forEach((x, i) => expect(nodeState(nodes, targets[i]!).inFlight).toBe(x.load));
      }),
      { numRuns: 2_000 },
    );
  });

  it("prompts no prefill node caches spread within one of even, whatever order Plans and Prefill choices interleave in", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 80 }), (k, steps) => {
        const nodes: NodeStates = new Map();
        const targets = targetsOf("prefill", k);
        const planned: ReturnType<typeof reservePrefill>[] = [];
        const held: NonNullable<ReturnType<typeof reservePrefill>>[] = [];
        // true: a new request reserves its Plan's node; false: the oldest planned one makes its Prefill choice.
        for (const plan of steps) {
          if (plan || planned.length === 0) planned.push(reservePrefill(nodes, targets));
          else held.push(reservePrefillForPrefix(nodes, planned.shift()!, targets.map((target) => ({ target, chunks: 0 })))!.reservation);
          expect(spread(nodes, targets)).toBeLessThanOrEqual(1);
        }
        expect(targets.reduce((sum, t) => sum + nodeState(nodes, t).inFlight, 0)).toBe(planned.length + held.length);
        for (const r of [...planned, ...held]) r!.release();
        for (const t of targets) expect(nodeState(nodes, t).inFlight).toBe(0);
      }),
    );
  });

  it("with no reservation held, the longest cached prefix among nodes in rotation is reserved; none in rotation, none chosen", () => {
    const nodes: NodeStates = new Map([
      ["a:1", { inFlight: 0, reachable: true }],
      ["b:1", { inFlight: 9, reachable: true }],
      ["c:1", { inFlight: 0, reachable: false }],
    ]);
    const answers = [
      { target: "a:1", chunks: 1 },
      { target: "b:1", chunks: 3 },
      { target: "c:1", chunks: 5 },
    ];
    const r = reservePrefillForPrefix(nodes, undefined, answers)!;
    expect(r).toMatchObject({ cached: 3, reservation: { target: "b:1" } });
    expect(nodeState(nodes, "b:1").inFlight).toBe(10);
    r.reservation.release();
    for (const t of ["a:1", "b:1"]) nodeState(nodes, t).reachable = false;
    expect(reservePrefillForPrefix(nodes, undefined, answers)).toBeUndefined();
  });
});

describe("routing by model (pure)", () => {
  it("only nodes serving the model (id or alias), never one whose known fingerprint for it differs; nodes not listed yet never", () => {
    const modelArb = fc.record({ id: fc.constantFrom("A", "B", "C"), alias: fc.option(fc.constantFrom("a", "b"), { nil: undefined }), fingerprint: fc.constantFrom("", "f1", "f2") });
    const nodeArb = fc.option(fc.uniqueArray(modelArb, { selector: (m) => m.id, maxLength: 3 }), { nil: undefined });
    fc.assert(
      fc.property(fc.array(nodeArb, { minLength: 1, maxLength: 6 }), fc.constantFrom("A", "B", "C", "a", "b", "Z"), fc.option(fc.constantFrom("f1", "f2"), { nil: undefined }), (spec, name, fp) => {
        const targets = spec.map((_, i) => `n${i}:1`);
        const nodes: NodeStates = new Map(
          spec.map((ms, i) => [targets[i]!, { inFlight: 0, reachable: true, models: ms?.map((m) => ({ id: m.id, aliases: m.alias ? [m.alias] : [], fingerprint: m.fingerprint, state: m.fingerprint ? "loaded" : "unloaded" })) }]),
        );
        const chosen = servingTargets(nodes, targets, name, fp);
        for (const [i, t] of targets.entries()) {
          const m = spec[i]?.find((x) => x.id === name || x.alias === name);
          const ok = m !== undefined && (fp === undefined || m.fingerprint === "" || m.fingerprint === fp);
          expect(chosen.includes(t)).toBe(ok);
          if (ok) expect(servedModel(nodes.get(t), name)).toBeDefined();
        }
        // No model named: no filtering.
        expect(servingTargets(nodes, targets, undefined)).toEqual(targets);
      }),
      { numRuns: 2_000 },
    );
  });
});

// Through the real dispatch code: every node answer is a task fast-check's scheduler releases in an
// order of its choosing, so MatchPrefix answers of one request interleave with other requests' Plans.
type Step = "plan" | "match" | "cached" | "prefill" | "generate";
interface RequestFaults {
  failAt: Step | "none";
  /** The client goes away at this point instead (after the step was sent). */
  abortAt: Step | "none";
}

function scheduledUpstream(s: fc.Scheduler, faults: Map<string, RequestFaults>, matches: (target: string) => number, onGenerate?: () => Promise<void>, cached: (target: string) => number = () => 0): Upstream {
  const answer = <T>(requestKey: string, step: Step, value: T, signal?: AbortSignal): Promise<T> =>
    s.schedule(Promise.resolve(), `${step} ${requestKey}`).then(() => {
      if (signal?.aborted) throw new KvbridgeError("CANCELLED", `${step}: cancelled`);
      if (faults.get(requestKey)?.failAt === step) throw new KvbridgeError("UNAVAILABLE", `${step} failed`);
      return value;
    });
  return {
    // The prompt is its own key, so a MatchPrefix call knows which request it serves.
    plan: (_t, req, o) => answer(req.prompt!, "plan", { promptTokens: 3, keys: [req.prompt!], fingerprint: "f", modelId: "m" }, o.signal),
    matchPrefix: (t, req, o) => answer(req.keys![0]!, "match", matches(t), o.signal),
    cachedPrefix: (t, req, o) => answer(req.keys![0]!, "cached", cached(t), o.signal),
    prefill: (_t, req, o) => answer(req.prompt!, "prefill", { promptTokens: 3, chunks: 1, chunksDeduped: 0, bytesSent: 1, transport: "tcp", evalMs: 1, transferMs: 1, modelId: "m", fingerprint: "f" }, o.signal),
    generate: async (_t, req, _deadline, o) => {
      await onGenerate?.();
      const outcome: GenerateOutcome = { text: "x", finishReason: "length", promptTokens: 3, completionTokens: 1, ttft: 0, decodeMs: 0, itlMs: [], queueMs: 0, prefillMs: 0 };
      return answer(req.prompt!, "generate", outcome, o.signal);
    },
  };
}

function dispatcher(upstream: Upstream, nodes: NodeStates, prefill: string[], decode: string[]): Dispatcher {
  return {
    upstream,
    nodes,
    prefillTargets: () => prefill,
    decodeTargets: () => decode,
    timeouts: { planMs: 1_000, matchPrefixMs: 1_000, prefillMs: 1_000, generateMs: 1_000, generateIdleMs: 1_000 },
    log: silentLogger(),
  };
}

const input = (prompt: string): CompletionInput => ({ kind: "completion", prompt, maxTokens: 1, stop: [], stream: false, model: undefined, includeUsage: false });

describe("routing through the dispatch code (fast-check scheduler)", () => {
  it("N simultaneous requests over K prefill and K decode nodes: each side spreads within one of even, whatever order the nodes answer in", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 24 }), async (s, k, n) => {
        const nodes: NodeStates = new Map();
        const prefill = targetsOf("prefill", k);
        const decode = targetsOf("decode", k);
        let generating = 0;
        let release!: () => void;
        const allGenerating = new Promise<void>((r) => (release = r));
        let decodeSpreadWhenAllChose = -1;
        // Every request holds its decode reservation until all have chosen: the loads are then the burst's.
        const upstream = scheduledUpstream(s, new Map(), () => 0, () => {
          if (++generating === n) {
            decodeSpreadWhenAllChose = spread(nodes, decode);
            release();
          }
          return allGenerating;
        });
        const d = dispatcher(upstream, nodes, prefill, decode);
        const runs = Array.from({ length: n }, (_, i) => dispatchCompletion(d, input(`p${i}`), `r${i}`, new AbortController().signal, () => undefined));
        expect(spread(nodes, prefill)).toBeLessThanOrEqual(1);
        await s.waitFor(Promise.all(runs));
        expect(decodeSpreadWhenAllChose).toBeGreaterThanOrEqual(0);
        expect(decodeSpreadWhenAllChose).toBeLessThanOrEqual(1);
        for (const t of [...prefill, ...decode]) expect(nodeState(nodes, t).inFlight).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it("the decode node holding the prompt's prefix gets every request, however loaded", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 12 }), async (s, n) => {
        const nodes: NodeStates = new Map();
        const chosen: string[] = [];
        const upstream = scheduledUpstream(s, new Map(), (t) => (t === "decode1:1" ? 1 : 0));
        const base = dispatcher(upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1"]);
        const recording: Upstream = {
          ...upstream,
          prefill: (t, req, o) => {
            chosen.push(req.decodeTarget!);
            return upstream.prefill(t, req, o);
          },
        };
        const d: Dispatcher = { ...base, upstream: recording };
        await s.waitFor(Promise.all(Array.from({ length: n }, (_, i) => dispatchCompletion(d, input(`p${i}`), `r${i}`, new AbortController().signal, () => undefined))));
        expect(chosen).toEqual(Array.from({ length: n }, () => "decode1:1"));
      }),
      { numRuns: 100 },
    );
  });

  it("the prefill node caching the prompt's prefix gets every Prefill, however loaded, while Plans spread", async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 12 }), async (s, n) => {
        const nodes: NodeStates = new Map();
        const planned: string[] = [];
        const prefilled: string[] = [];
        const upstream = scheduledUpstream(s, new Map(), () => 0, undefined, (t) => (t === "prefill2:1" ? 2 : t === "prefill1:1" ? 1 : 0));
        const recording: Upstream = {
          ...upstream,
          plan: (t, req, o) => {
            planned.push(t);
            return upstream.plan(t, req, o);
          },
          prefill: (t, req, o) => {
            prefilled.push(t);
            return upstream.prefill(t, req, o);
          },
        };
        const d = dispatcher(recording, nodes, targetsOf("prefill", 3), ["decode0:1"]);
        await s.waitFor(Promise.all(Array.from({ length: n }, (_, i) => dispatchCompletion(d, input(`p${i}`), `r${i}`, new AbortController().signal, () => undefined))));
        expect(prefilled).toEqual(Array.from({ length: n }, () => "prefill2:1"));
        expect(new Set(planned).size).toBe(Math.min(n, 3));
        for (const t of [...targetsOf("prefill", 3), "decode0:1"]) expect(nodeState(nodes, t).inFlight).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it("every counter returns to 0 after every request ends, whatever fails or is cancelled and in whatever order", async () => {
    const stepArb = fc.constantFrom<Step | "none">("none", "none", "plan", "match", "cached", "prefill", "generate");
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.record({ failAt: stepArb, abortAt: stepArb }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        async (s, specs, kp, kd) => {
          const nodes: NodeStates = new Map();
          const prefill = targetsOf("prefill", kp);
          const decode = targetsOf("decode", kd);
          const faults = new Map(specs.map((f, i) => [`p${i}`, f]));
          const controllers = specs.map(() => new AbortController());
          const upstream = scheduledUpstream(s, faults, () => 0, undefined, (t) => (t === "prefill0:1" ? 1 : 0));
          // The client's disconnect lands right after the chosen step was sent.
          const aborting: Upstream = {
            plan: (t, req, o) => abortAfter(req.prompt!, "plan", upstream.plan(t, req, o)),
            matchPrefix: (t, req, o) => upstream.matchPrefix(t, req, o),
            cachedPrefix: (t, req, o) => abortAfter(req.keys![0]!, "cached", upstream.cachedPrefix!(t, req, o)),
            prefill: (t, req, o) => abortAfter(req.prompt!, "prefill", upstream.prefill(t, req, o)),
            generate: (t, req, dl, o) => abortAfter(req.prompt!, "generate", upstream.generate(t, req, dl, o)),
          };
          function abortAfter<T>(prompt: string, step: Step, p: Promise<T>): Promise<T> {
            const i = Number(prompt.slice(1));
            if (specs[i]!.abortAt === step) void s.schedule(Promise.resolve(), `abort p${i}`).then(() => controllers[i]!.abort());
            return p;
          }
          const d = dispatcher(aborting, nodes, prefill, decode);
          const outcomes = await s.waitFor(
            Promise.allSettled(specs.map((_, i) => dispatchCompletion(d, input(`p${i}`), `r${i}`, controllers[i]!.signal, () => undefined))),
          );
          for (const t of [...prefill, ...decode]) expect(nodeState(nodes, t).inFlight).toBe(0);
          // A request with no fault and no cancel succeeded: the bookkeeping never cost a request. Nor
          // did a failed CachedPrefix (it counts as caching nothing).
          specs.forEach((f, i) => {
            if ((f.failAt === "none" || f.failAt === "cached") && f.abortAt === "none") expect(outcomes[i]!.status).toBe("fulfilled");
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("a decode node's failure during a request", () => {
  const outcome: GenerateOutcome = { text: "ab", finishReason: "length", promptTokens: 3, completionTokens: 2, ttft: 0, decodeMs: 0, itlMs: [], queueMs: 0, prefillMs: 0 };
  /** Decode nodes that fail Generate as `failOn` says (after sending `textFirst` when given); records every Prefill's decode target and every Generate's. */
  function failing(failOn: (target: string, n: number) => boolean, textFirst?: string): { upstream: Upstream; prefilled: string[]; generated: string[] } {
    const prefilled: string[] = [];
    const generated: string[] = [];
    const upstream: Upstream = {
      plan: async (_t, req) => ({ promptTokens: 3, keys: [req.prompt!], fingerprint: "f", modelId: "m" }),
      matchPrefix: async () => 0,
      prefill: async (_t, req) => {
        prefilled.push(req.decodeTarget!);
        return { promptTokens: 3, chunks: 1, chunksDeduped: 0, bytesSent: 1, transport: "tcp", evalMs: 1, transferMs: 1, modelId: "m", fingerprint: "f" };
      },
      generate: async (t, _req, _dl, o) => {
        generated.push(t);
        if (failOn(t, generated.length)) {
          if (textFirst) o.onText(textFirst);
          throw new KvbridgeError("UNAVAILABLE", `Generate on ${t}: connection reset`);
        }
        o.onText("ab");
        return outcome;
      },
    };
    return { upstream, prefilled, generated };
  }

  it("before any text: tried once more on the other decode node, prefilled to it again; every reservation released", async () => {
    const nodes: NodeStates = new Map();
    const u = failing((_t, n) => n === 1);
    const d = dispatcher(u.upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1"]);
    const texts: string[] = [];
    const out = await dispatchCompletion(d, input("p"), "r", new AbortController().signal, (t) => texts.push(t));
    expect(out.text).toBe("ab");
    expect(texts).toEqual(["ab"]);
    expect(u.generated).toHaveLength(2);
    expect(u.generated[1]).not.toBe(u.generated[0]);
    expect(u.prefilled).toEqual(u.generated);
    for (const t of ["prefill0:1", "decode0:1", "decode1:1"]) expect(nodeState(nodes, t).inFlight).toBe(0);
  });

  it("only once: a second failure is the request's error", async () => {
    const nodes: NodeStates = new Map();
    const u = failing(() => true);
    const d = dispatcher(u.upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1", "decode2:1"]);
    await expect(dispatchCompletion(d, input("p"), "r", new AbortController().signal, () => undefined)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(u.generated).toHaveLength(2);
  });

  it("after text reached the client: ends with the error, never generated again (no text repeated)", async () => {
    const nodes: NodeStates = new Map();
    const u = failing(() => true, "a");
    const d = dispatcher(u.upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1"]);
    const texts: string[] = [];
    await expect(dispatchCompletion(d, input("p"), "r", new AbortController().signal, (t) => texts.push(t))).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(u.generated).toHaveLength(1);
    expect(texts).toEqual(["a"]);
  });

  it("a running Generate whose decode node leaves rotation ends at once with UNAVAILABLE naming the node", async () => {
    const nodes: NodeStates = new Map();
    const rotation = new Map(["prefill0:1", "decode0:1"].map((t) => [t, new AbortController()]));
    let started!: () => void;
    const generating = new Promise<void>((r) => (started = r));
    const upstream: Upstream = {
      ...failing(() => false).upstream,
      // Never answers: only its signal ends it.
      generate: (_t, _req, _dl, o) =>
        new Promise((_resolve, reject) => {
          o.onText("a");
          started();
          o.signal.addEventListener("abort", () => reject(new KvbridgeError("CANCELLED", "cancelled")), { once: true });
        }),
    };
    const d: Dispatcher = { ...dispatcher(upstream, nodes, ["prefill0:1"], ["decode0:1"]), rotationSignal: (t) => rotation.get(t)?.signal };
    const run = dispatchCompletion(d, input("p"), "r", new AbortController().signal, () => undefined);
    await generating;
    rotation.get("decode0:1")!.abort();
    await expect(run).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("decode0:1") });
  });

  it("a Prefill writing to a decode node that leaves rotation ends at once, and the request moves to another decode node", async () => {
    const nodes: NodeStates = new Map();
    const rotation = new Map(["prefill0:1", "decode0:1", "decode1:1"].map((t) => [t, new AbortController()]));
    const base = failing(() => false);
    let first = true;
    const upstream: Upstream = {
      ...base.upstream,
      prefill: (t, req, o) => {
        if (!first) return base.upstream.prefill(t, req, o);
        first = false;
        base.prefilled.push(req.decodeTarget!);
        // The first Prefill hangs until its signal fires; its decode node then leaves rotation.
        queueMicrotask(() => rotation.get(req.decodeTarget!)!.abort());
        return new Promise((_resolve, reject) => o.signal!.addEventListener("abort", () => reject(new KvbridgeError("CANCELLED", "cancelled")), { once: true }));
      },
    };
    const d: Dispatcher = { ...dispatcher(upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1"]), rotationSignal: (t) => rotation.get(t)?.signal };
    const out = await dispatchCompletion(d, input("p"), "r", new AbortController().signal, () => undefined);
    expect(out.text).toBe("ab");
    expect(base.prefilled).toHaveLength(2);
    expect(base.generated).toEqual([base.prefilled[1]]);
    expect(base.prefilled[1]).not.toBe(base.prefilled[0]);
  });
});

describe("a decode node that stops answering (health timeout: frozen or partitioned)", () => {
  it("ends its request at once with UNAVAILABLE and is not retried elsewhere: the wait for the verdict is already spent", async () => {
    const nodes: NodeStates = new Map();
    const rotation = new Map(["prefill0:1", "decode0:1", "decode1:1"].map((t) => [t, new AbortController()]));
    const generated: string[] = [];
    const upstream: Upstream = {
      plan: async (_t, req) => ({ promptTokens: 3, keys: [req.prompt!], fingerprint: "f", modelId: "m" }),
      matchPrefix: async () => 0,
      prefill: async () => ({ promptTokens: 3, chunks: 1, chunksDeduped: 0, bytesSent: 1, transport: "tcp", evalMs: 1, transferMs: 1, modelId: "m", fingerprint: "f" }),
      generate: (t, _req, _dl, o) => {
        generated.push(t);
        queueMicrotask(() => rotation.get(t)!.abort("timeout"));
        return new Promise((_resolve, reject) => o.signal.addEventListener("abort", () => reject(new KvbridgeError("CANCELLED", "cancelled")), { once: true }));
      },
    };
    const d: Dispatcher = { ...dispatcher(upstream, nodes, ["prefill0:1"], ["decode0:1", "decode1:1"]), rotationSignal: (t) => rotation.get(t)?.signal };
    await expect(dispatchCompletion(d, input("p"), "r", new AbortController().signal, () => undefined)).rejects.toMatchObject({ code: "UNAVAILABLE" });
    expect(generated).toHaveLength(1);
  });
});
