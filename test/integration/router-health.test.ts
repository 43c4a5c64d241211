// The router in front of real gRPC servers whose health, Plan and Generate answer as each test says
// (router-stub-nodes.ts): rotation follows each node's grpc.health.v1, /health and /readyz follow the
// pairs in rotation, a Plan on a node that leaves rotation or passes its deadline moves to another
// prefill node, a silent Generate ends with an error after the idle bound, and a prompt refused by
// the router's limit or by Plan is answered 400 at once without reaching Prefill or Generate.
import { afterEach, describe, expect, it } from "vitest";
import { MAX_CHAT_MESSAGES } from "../../src/config/defaults.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startRouter, type Router, type RouterOptions } from "../../src/roles/router/router-role.js";
import { NEVER, startStubDecode, startStubPrefill, type StubNode } from "../support/router-stub-nodes.js";

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function routerFor(prefill: StubNode[], decode: StubNode[], o: Partial<RouterOptions> = {}): Promise<Router> {
  for (const n of [...prefill, ...decode]) cleanup.push(() => n.close());
  const router = await startRouter({
    listen: { host: "127.0.0.1", port: 0 },
    prefill: { kind: "static", targets: prefill.map((n) => n.target) },
    decode: { kind: "static", targets: decode.map((n) => n.target) },
    logger: silentLogger(),
    healthIntervalMs: 50,
    healthTimeoutMs: 300,
    ...o,
  });
  cleanup.push(() => router.close());
  return router;
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(router: Router, body: object, path = "/v1/completions"): Promise<{ status: number; body: unknown; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${router.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json(), ms: performance.now() - t0 };
}

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return performance.now() - t0;
}

const status = async (router: Router, path: string): Promise<number> => (await fetch(`${router.url}${path}`)).status;

describe("rotation follows node health", () => {
  it("a NOT_SERVING decode node is out at once (503 without calling Plan, /health and /readyz 503) and back within the interval of saying SERVING", async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode()]);
    const router = await routerFor([prefill], [decode]);
    expect(await status(router, "/readyz")).toBe(200);
    expect(await status(router, "/health")).toBe(200);
    expect((await post(router, { prompt: "hi" })).status).toBe(200);

    decode.setServing("NOT_SERVING");
    await until("the decode node out of rotation", () => !router.nodes().decode[0]!.inRotation);
    expect(router.nodes().decode[0]).toEqual({ target: decode.target, inRotation: false, health: "NOT_SERVING" });
    expect(await status(router, "/readyz")).toBe(503);
    expect(await status(router, "/health")).toBe(503);
    const plans = prefill.calls.plan;
    const refused = await post(router, { prompt: "hi" });
    expect(refused.status).toBe(503);
    expect((refused.body as ErrorBody).error.code).toBe("unavailable");

    decode.setServing("SERVING");
    const back = await until("the decode node back in rotation", () => router.nodes().decode[0]!.inRotation);
    // Within the health interval (50 ms here) and a scheduling margin.
    expect(back).toBeLessThan(1_000);
    expect(await status(router, "/readyz")).toBe(200);
    expect((await post(router, { prompt: "hi" })).status).toBe(200);
    // The refused request reached no node: only the last one was planned.
    expect(prefill.calls.plan).toBe(plans + 1);
  });

  it("a node that is gone is out of rotation, /readyz says which", async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode()]);
    const router = await routerFor([prefill], [decode]);
    await decode.close();
    await until("the closed decode node out of rotation", () => !router.nodes().decode[0]!.inRotation);
    const ready = await fetch(`${router.url}/readyz`);
    expect(ready.status).toBe(503);
    const body = (await ready.json()) as { decode: Array<{ health: string }> };
    expect(body.decode[0]!.health).toBe("unreachable");
  });

  it("a Plan in flight on a prefill node that leaves rotation moves to the other prefill node at once", async () => {
    const [stuck, good, decode] = await Promise.all([startStubPrefill({ plan: () => NEVER }), startStubPrefill(), startStubDecode()]);
    // A Plan deadline far longer than the test: only the rotation signal can move the request.
    const router = await routerFor([stuck, good], [decode], { planTimeoutMs: 60_000 });
    const pending = post(router, { prompt: "hi" });
    await until("Plan sent to the stuck node", () => stuck.calls.plan === 1);
    stuck.setServing("NOT_SERVING");
    const res = await pending;
    expect(res.status).toBe(200);
    expect(good.calls.plan).toBe(1);
    expect(res.ms).toBeLessThan(10_000);
  });

  it("a Plan past its deadline moves to the other prefill node; with none left the client gets 504", async () => {
    const [slow, good, decode] = await Promise.all([startStubPrefill({ plan: () => NEVER }), startStubPrefill(), startStubDecode()]);
    const router = await routerFor([slow, good], [decode], { planTimeoutMs: 300 });
    const moved = await post(router, { prompt: "hi" });
    expect(moved.status).toBe(200);
    expect(slow.calls.plan).toBe(1);
    expect(good.calls.plan).toBe(1);

    const [slowOnly, decode2] = await Promise.all([startStubPrefill({ plan: () => NEVER }), startStubDecode()]);
    const alone = await routerFor([slowOnly], [decode2], { planTimeoutMs: 300 });
    const res = await post(alone, { prompt: "hi" });
    expect(res.status).toBe(504);
    expect((res.body as ErrorBody).error.code).toBe("deadline_exceeded");
    expect(decode2.calls.generate).toBe(0);
  });
});

describe("a silent decode node", () => {
  const hangAfterText = (): { events: Array<{ text: string }>; hang: boolean } => ({ events: [{ text: "tok" }], hang: true });

  it("a stream that received text ends with an SSE error event after --generate-idle-timeout of silence", async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode({ generate: hangAfterText })]);
    const router = await routerFor([prefill], [decode], { generateIdleMs: 400 });
    const t0 = performance.now();
    const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "hi", stream: true }) });
    expect(res.status).toBe(200);
    const events = (await res.text()).split("\n\n").filter((b) => b.startsWith("data: ")).map((b) => b.slice(6));
    const ms = performance.now() - t0;
    expect(JSON.parse(events[0]!).choices[0].text).toBe("tok");
    const last = JSON.parse(events.at(-1)!) as ErrorBody;
    expect(last.error.code).toBe("deadline_exceeded");
    expect(last.error.message).toMatch(/400 ms/);
    expect(events).not.toContain("[DONE]");
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(ms).toBeLessThan(5_000);
    expect(router.inFlight()).toBe(0);
  });

  it("a request that received nothing is answered 504 after the idle bound", async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode({ generate: () => ({ events: [], hang: true }) })]);
    const router = await routerFor([prefill], [decode], { generateIdleMs: 300 });
    const res = await post(router, { prompt: "hi" });
    expect(res.status).toBe(504);
    expect((res.body as ErrorBody).error.code).toBe("deadline_exceeded");
  });
});

describe("prompts that cannot fit are refused at once", () => {
  it("over --max-prompt-chars: 400 prompt_too_long naming the limit, no node asked (completion and chat)", async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode()]);
    const router = await routerFor([prefill], [decode], { maxPromptChars: 100 });
    const long = await post(router, { prompt: "x".repeat(101) });
    expect(long.status).toBe(400);
    expect(long.body).toEqual({ error: { message: expect.stringContaining("at most 100"), type: "invalid_request_error", param: "prompt", code: "prompt_too_long" } });
    const chat = await post(router, { messages: [{ role: "user", content: "y".repeat(100) }] }, "/v1/chat/completions");
    expect(chat.status).toBe(400);
    expect((chat.body as ErrorBody).error).toMatchObject({ param: "messages", code: "prompt_too_long" });
    expect(prefill.calls.plan).toBe(0);
    expect((await post(router, { prompt: "x".repeat(100) })).status).toBe(200);
  });

  it(`over MAX_CHAT_MESSAGES (${MAX_CHAT_MESSAGES}) chat messages: 400 prompt_too_long with param messages and the limit, before any prompt is built or node asked`, async () => {
    const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode()]);
    const router = await routerFor([prefill], [decode]);
    const many = Array.from({ length: MAX_CHAT_MESSAGES + 1 }, () => ({ role: "user", content: "hi" }));
    const res = await post(router, { messages: many }, "/v1/chat/completions");
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: { message: expect.stringContaining(`at most ${MAX_CHAT_MESSAGES}`), type: "invalid_request_error", param: "messages", code: "prompt_too_long" },
    });
    expect(prefill.calls.plan).toBe(0);
    expect((await post(router, { messages: many.slice(1) }, "/v1/chat/completions")).status).toBe(200);
  });

  it("a Plan refused INVALID_ARGUMENT (details.reason, limit, param) is answered 400 from the details and never sent to Prefill, MatchPrefix or Generate", async () => {
    const refuse = (): never => {
      throw new KvbridgeError("INVALID_ARGUMENT", "prompt is 9000 tokens; the context holds 4096", { details: { reason: "context_overflow", limit: 4096, param: "prompt" } });
    };
    const [prefill, decode] = await Promise.all([startStubPrefill({ plan: refuse }), startStubDecode()]);
    const router = await routerFor([prefill], [decode]);
    const res = await post(router, { prompt: "a long prompt" });
    expect(res.status).toBe(400);
    expect((res.body as ErrorBody).error).toMatchObject({ type: "invalid_request_error", code: "context_overflow", param: "prompt", message: expect.stringContaining("4096") });
    expect(prefill.calls).toMatchObject({ plan: 1, prefill: 0 });
    expect(decode.calls).toMatchObject({ matchPrefix: 0, generate: 0 });
  });
});
