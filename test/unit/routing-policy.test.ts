// The router's routing policy: a burst of simultaneous requests spreads evenly because each choice
// is reserved in the step that makes it; prefix affinity still wins over load; and, driven through the
// router's real dispatch code with fast-check's scheduler ordering every node answer, every counter
// returns to 0 once every request has ended, whatever failed and in whatever order.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { dispatchCompletion, type Dispatcher, type Upstream } from "../../src/roles/router/completion-dispatch.js";
import type { GenerateOutcome } from "../../src/roles/router/generate-stream.js";
import type { CompletionInput } from "../../src/roles/router/openai-api.js";
import { hasReachablePair, inRotation, nodeState, reserveDecode, reservePrefill, type NodeStates, type PrefixAnswer } from "../../src/roles/router/routing-policy.js";

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
    expect(hasReachablePair(nodes, ["a:1", "b:1"], ["d:1"])).toBe(true);
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

// Through the real dispatch code: every node answer is a task fast-check's scheduler releases in an
// order of its choosing, so MatchPrefix answers of one request interleave with other requests' Plans.
type Step = "plan" | "match" | "prefill" | "generate";
interface RequestFaults {
  failAt: Step | "none";
  /** The client goes away at this point instead (after the step was sent). */
  abortAt: Step | "none";
}

function scheduledUpstream(s: fc.Scheduler, faults: Map<string, RequestFaults>, matches: (target: string) => number, onGenerate?: () => Promise<void>): Upstream {
  const answer = <T>(requestKey: string, step: Step, value: T, signal?: AbortSignal): Promise<T> =>
    s.schedule(Promise.resolve(), `${step} ${requestKey}`).then(() => {
      if (signal?.aborted) throw new KvbridgeError("CANCELLED", `${step}: cancelled`);
      if (faults.get(requestKey)?.failAt === step) throw new KvbridgeError("UNAVAILABLE", `${step} failed`);
      return value;
    });
  return {
    // The prompt is its own key, so a MatchPrefix call knows which request it serves.
    plan: (_t, req, o) => answer(req.prompt!, "plan", { promptTokens: 3, keys: [req.prompt!], fingerprint: "f", modelId: "m" }, o.signal),
    matchPrefix: (t, keys, o) => answer(keys[0]!, "match", matches(t), o.signal),
    prefill: (_t, req, o) => answer(req.prompt!, "prefill", { promptTokens: 3, chunks: 1, chunksDeduped: 0, bytesSent: 1, transport: "tcp", evalMs: 1, transferMs: 1 }, o.signal),
    generate: async (_t, req, _deadline, o) => {
      await onGenerate?.();
      const outcome: GenerateOutcome = { text: "x", finishReason: "length", promptTokens: 3, completionTokens: 1, ttft: 0 };
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

  it("every counter returns to 0 after every request ends, whatever fails or is cancelled and in whatever order", async () => {
    const stepArb = fc.constantFrom<Step | "none">("none", "none", "plan", "match", "prefill", "generate");
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
          const upstream = scheduledUpstream(s, faults, () => 0);
          // The client's disconnect lands right after the chosen step was sent.
          const aborting: Upstream = {
            plan: (t, req, o) => abortAfter(req.prompt!, "plan", upstream.plan(t, req, o)),
            matchPrefix: (t, keys, o) => upstream.matchPrefix(t, keys, o),
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
          // A request with no fault and no cancel succeeded: the bookkeeping never cost a request.
          specs.forEach((f, i) => {
            if (f.failAt === "none" && f.abortAt === "none") expect(outcomes[i]!.status).toBe("fulfilled");
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
