// The router recovers from a decode failure, against real processes (one prefill node, two decode
// nodes, the router; the project's model): a decode node killed (kill -9) before the first token
// reached the client is replaced by the other one (the request is prefilled and generated there
// again, and its text is exactly what an undisturbed run gives); one killed after the first token
// ends the stream with an SSE error event, the text before it a prefix of the undisturbed run's
// (no token repeated or skipped) and no [DONE].
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleText } from "../support/model-fixture.js";
import { streamCompletion } from "../support/fault-cluster.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

const decodeArgs = ["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "256", "--slot-bytes", "512KiB"];
let prefill: RunningProcess;
let router: RunningProcess;
const decodes = new Map<string, RunningProcess>();
let url: string;

const grpcOf = (line: string): string => (JSON.parse(line) as { grpc: string }).grpc;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const ds = [spawnKvbridge(decodeArgs), spawnKvbridge(decodeArgs)];
  prefill = spawnKvbridge(["prefill", "--listen", "127.0.0.1:0"]);
  const [p, ...d] = await Promise.all([prefill.waitForLine(/prefill node serving/, 180_000), ...ds.map((x) => x.waitForLine(/decode node serving/, 180_000))]);
  await Promise.all(ds.map((x) => x.waitForLine(/(engine|model) loaded: decode node serving/, 180_000)));
  ds.forEach((x, i) => decodes.set(grpcOf(d[i]!), x));
  router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", grpcOf(p), "--decode", [...decodes.keys()].join(",")]);
  url = (JSON.parse(await router.waitForLine(/router serving/, 60_000)) as { url: string }).url;
}, 420_000);

afterAll(async () => {
  await Promise.all([router?.stop(), prefill?.stop(), ...[...decodes.values()].map((d) => d.stop())]);
});

/** The decode node of the next "routing" line the router logs after line `from`. */
async function nextRouting(from: number, timeoutMs = 30_000): Promise<{ decode: string; line: number }> {
  const t0 = performance.now();
  for (;;) {
    for (let i = from; i < router.lines.length; i++) {
      const l = router.lines[i]!;
      if (l.includes('"msg":"routing"')) return { decode: (JSON.parse(l) as { decode: string }).decode, line: i };
    }
    if (performance.now() - t0 > timeoutMs) throw new Error("the router routed nothing");
    await sleep(2);
  }
}

async function complete(prompt: string, maxTokens: number): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: maxTokens }) });
  const body = (await res.json()) as { choices?: Array<{ text: string }> };
  return { status: res.status, text: body.choices?.[0]?.text ?? "" };
}

const textOf = (events: string[]): string =>
  events
    .filter((e) => e !== "[DONE]")
    .map((e) => JSON.parse(e) as { choices?: Array<{ text: string }> })
    .map((e) => e.choices?.[0]?.text ?? "")
    .join("");

describe("a decode node killed (kill -9) during a request", () => {
  const prompt = sampleText(300, 77);
  const maxTokens = 48;
  let reference = "";

  it("before the first token: the request is served by the other decode node, token-exact", async () => {
    const ref = await complete(prompt, maxTokens);
    expect(ref.status).toBe(200);
    reference = ref.text;
    expect(reference.length).toBeGreaterThan(0);
    // Another prompt, so no decode node holds its prefix yet.
    const from = router.lines.length;
    const stream = streamCompletion(url, { prompt: sampleText(300, 79), max_tokens: maxTokens });
    const routed = await nextRouting(from);
    await decodes.get(routed.decode)!.kill9();
    decodes.delete(routed.decode);
    const out = await stream.ended;
    expect(out.status).toBe(200);
    expect(out.events.at(-1)).toBe("[DONE]");
    const again = await complete(sampleText(300, 79), maxTokens);
    expect(again.status).toBe(200);
    expect(textOf(out.events)).toBe(again.text);
    expect(router.lines.slice(from).some((l) => l.includes("trying another decode node"))).toBe(true);
  }, 180_000);

  it("after the first token: the stream ends with an SSE error event, its text a prefix of the undisturbed run's, no [DONE]", async () => {
    expect(reference.length).toBeGreaterThan(0);
    const stream = streamCompletion(url, { prompt, max_tokens: maxTokens });
    await stream.firstText;
    const [only] = [...decodes.values()];
    await only!.kill9();
    const killedAt = performance.now();
    const out = await stream.ended;
    expect(performance.now() - killedAt).toBeLessThan(5_000);
    expect(out.status).toBe(200);
    expect(out.events).not.toContain("[DONE]");
    const last = JSON.parse(out.events.at(-1)!) as { error?: { code: string; message: string } };
    expect(last.error?.code).toBe("unavailable");
    const got = textOf(out.events.slice(0, -1));
    expect(got.length).toBeGreaterThan(0);
    expect(reference.startsWith(got)).toBe(true);
  }, 120_000);
});
