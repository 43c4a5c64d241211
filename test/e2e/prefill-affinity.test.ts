// Prefix affinity on prefill, through real processes: two prefill nodes and one decode node behind a
// router, and two 5-turn chats (turn k = turn k-1's messages + its answer + a new user message). The
// first turns of the two chats arrive together, so they are planned on different prefill nodes; every
// later turn, sent one at a time (A2, B2, A3, ...), is prefilled on the node that served its chat's
// first turn and takes its earlier turns' chunks from that node's prefix cache (the "prefill pushed"
// line's cachedChunks), although both nodes are idle and least-load alone would pick the first listed
// for every one. Each answer equals the single-process reference token for token. CachedPrefix on the
// nodes (the RPC the router asks) and /tokenize of a chat (rendered by the node's RenderChat) are
// checked on the same conversation.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatTurn } from "../../src/engine/chat-template.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";

const MAX_TOKENS = 12;
const TURNS = 5;

interface Pushed {
  tokens: number;
  cachedChunks: number;
}

const procs: RunningProcess[] = [];
let prefills: Array<{ proc: RunningProcess; grpc: string }>;
let url: string;
let reference: LlamaEngine;
let client: OpenAI;

beforeAll(async () => {
  const decode = spawnKvbridge(["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "256", "--slot-bytes", "512KiB"]);
  const ps = [0, 1].map(() => spawnKvbridge(["prefill", "--listen", "127.0.0.1:0"]));
  procs.push(decode, ...ps);
  const [d, ...p] = await Promise.all([decode.waitForLine(/decode node serving/, 120_000), ...ps.map((x) => x.waitForLine(/prefill node serving/, 120_000))]);
  await decode.waitForLine(/engine loaded/, 120_000);
  prefills = ps.map((proc, i) => ({ proc, grpc: (JSON.parse(p[i]!) as { grpc: string }).grpc }));
  const decodeGrpc = (JSON.parse(d) as { grpc: string }).grpc;
  const router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", prefills.map((x) => x.grpc).join(","), "--decode", decodeGrpc]);
  procs.push(router);
  url = (JSON.parse(await router.waitForLine(/router serving/, 60_000)) as { url: string }).url;
  reference = await openTestEngine({ maxSequences: 1 });
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
}, 300_000);

afterAll(async () => {
  await reference?.close();
  await Promise.all(procs.map((p) => p.stop()));
});

/** Each prefill node's "prefill pushed" lines so far. */
function pushedLines(): Pushed[][] {
  return prefills.map(({ proc }) => proc.lines.filter((l) => l.includes('"prefill pushed"')).map((l) => JSON.parse(l) as Pushed));
}

/** The single-process answer to a chat (its prompt as the model's template renders it) and the prompt's token count. */
async function expected(messages: ChatTurn[]): Promise<{ text: string; tokens: number }> {
  const tokens = await reference.tokenizePrompt(reference.renderChat(messages).prompt);
  return { text: (await reference.generateLocal({ tokens, maxTokens: MAX_TOKENS })).text, tokens: tokens.length };
}

/** One turn through the router: its answer (checked token for token), appended to the chat. */
async function turn(messages: ChatTurn[]): Promise<{ tokens: number }> {
  const [res, want] = await Promise.all([client.chat.completions.create({ model: "kvbridge", messages: messages.map((m) => ({ role: m.role as "user", content: m.content })), max_tokens: MAX_TOKENS }), expected(messages)]);
  const text = res.choices[0]!.message.content ?? "";
  expect(text).toBe(want.text);
  expect(res.usage?.prompt_tokens).toBe(want.tokens);
  messages.push({ role: "assistant", content: text });
  return { tokens: want.tokens };
}

/** The prefill node (index) whose new "prefill pushed" line since `before` has this prompt's token count. */
function servedBy(before: Pushed[][], tokens: number): { node: number; cachedChunks: number } {
  const now = pushedLines();
  const hits = now.flatMap((lines, node) => lines.slice(before[node]!.length).filter((l) => l.tokens === tokens).map((l) => ({ node, cachedChunks: l.cachedChunks })));
  expect(hits).toHaveLength(1);
  return hits[0]!;
}

describe("a conversation's prefills go to the prefill node holding its prefix", () => {
  const chats: Record<"A" | "B", ChatTurn[]> = {
    A: [{ role: "system", content: sampleText(60, 31) }],
    B: [{ role: "system", content: `Unrelated: ${sampleText(60, 32)}` }],
  };

  it("turns 2..5 of each chat are prefilled where turn 1 was, from its prefix cache, and answer as one process does", async () => {
    const user = (name: string, k: number): ChatTurn => ({ role: "user", content: `${name}${k}: ${sampleText(25, 100 * k + name.charCodeAt(0))}` });
    chats.A.push(user("A", 1));
    chats.B.push(user("B", 1));
    // Both first turns in flight together: least load puts them on different prefill nodes.
    let before = pushedLines();
    const [a1, b1] = await Promise.all([turn(chats.A), turn(chats.B)]);
    const home = { A: servedBy(before, a1.tokens), B: servedBy(before, b1.tokens) };
    expect(home.A.node).not.toBe(home.B.node);
    expect(home.A.cachedChunks).toBe(0);
    expect(home.B.cachedChunks).toBe(0);
    for (let k = 2; k <= TURNS; k++) {
      for (const name of ["A", "B"] as const) {
        chats[name].push(user(name, k));
        before = pushedLines();
        const prev = before[home[name].node]!.at(-1)!;
        const t = await turn(chats[name]);
        const got = servedBy(before, t.tokens);
        expect({ chat: name, turn: k, node: got.node }).toEqual({ chat: name, turn: k, node: home[name].node });
        // The previous turn's whole chunks came from the cache (its partial last chunk has another key).
        expect(got.cachedChunks).toBe(Math.floor(prev.tokens / reference.chunkTokens));
      }
    }
  }, 300_000);

  it("CachedPrefix: the node that served a chat holds all of its last prompt's chunks, the other none; an unknown model is NOT_FOUND", async () => {
    const last = chats.A.slice(0, -1);
    const [p0, p1] = prefills.map((p) => new PrefillClient(p.grpc));
    try {
      const prompt = reference.renderChat(last).prompt;
      const plan = await p0!.plan({ prompt, model: "" }, { timeoutMs: 10_000 });
      expect(plan.keys.length).toBeGreaterThan(1);
      const held = await Promise.all([p0!, p1!].map((c) => c.cachedPrefix({ keys: plan.keys, model: "" }, { timeoutMs: 10_000 })));
      const counts = held.map((h) => h.chunks).sort((x, y) => x - y);
      expect(counts).toEqual([0, plan.keys.length]);
      await expect(p0!.cachedPrefix({ keys: plan.keys, model: "no-such-model" }, { timeoutMs: 10_000 })).rejects.toMatchObject({ code: "NOT_FOUND" });
    } finally {
      p0!.close();
      p1!.close();
    }
  });

  it("/tokenize of a chat gives the tokens of the prompt its completion is prefilled with (the node's template)", async () => {
    const messages = chats.B;
    const res = await fetch(`${url}/tokenize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { count: number; tokens: number[] };
    const want = await reference.tokenizePrompt(reference.renderChat(messages).prompt);
    expect(body.tokens).toEqual(want);
    expect(body.count).toBe(want.length);
  });
});
