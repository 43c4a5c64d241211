// kvctl (a real process) against a real decode node while it generates a long completion: the
// generation is listed by `kvctl requests` (kind generate, phase decoding, its model, tokens so far,
// growing between two looks) and counted by `kvctl status` (active generations), in tables and JSON;
// once the stream ends the node lists nothing and counts 0. Real prefill, decode and router processes
// on the project's model.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";
import { repoRoot } from "../support/processes.js";

const KVCTL = path.join(repoRoot, "src/cli/kvctl.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kvctl(args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.KVBRIDGE_NODES;
    const child = spawn(process.execPath, ["--import", "tsx", KVCTL, ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`kvctl ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface RequestJson {
  request_id: string;
  kind: string;
  phase: string;
  model: string;
  prompt_tokens: number;
  tokens_generated: number;
}

let cluster: PdCluster;

beforeAll(async () => {
  cluster = await startPdCluster();
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("kvctl sees a generation in progress", () => {
  it("requests lists it (generate, decoding, model, tokens so far) and status counts it, until the stream ends", async () => {
    // A 3000-token stream takes tens of seconds here; the model never emits its end token early.
    const res = await fetch(`${cluster.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "the kv cache of a long prompt", max_tokens: 3000, stream: true }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let streamed = "";
    let tokens = 0;
    const decoder = new TextDecoder();
    const read = async (until: (n: number) => boolean): Promise<void> => {
      while (!until(tokens)) {
        const { done, value } = await reader.read();
        if (done) return;
        streamed += decoder.decode(value, { stream: true });
        tokens = streamed.split("\n").filter((l) => l.startsWith("data: {")).length;
      }
    };
    await read((n) => n >= 20);
    // Keep reading in the background so the stream flows while kvctl looks.
    const rest = read(() => false);

    const [json, table, status] = await Promise.all([
      kvctl(["requests", cluster.decodeGrpc, "-o", "json"]),
      kvctl(["requests", cluster.decodeGrpc]),
      kvctl(["status", cluster.decodeGrpc, "--sample-ms", "0", "-o", "json"]),
    ]);
    expect(json.code, json.stderr).toBe(0);
    const gens = (JSON.parse(json.stdout) as { nodes: Array<{ requests: RequestJson[] }> }).nodes[0]!.requests.filter((r) => r.kind === "generate");
    expect(gens).toHaveLength(1);
    const g = gens[0]!;
    expect(g.phase).toBe("decoding");
    expect(g.model).toMatch(/^kvbridge-small-/);
    expect(g.prompt_tokens).toBeGreaterThan(0);
    expect(g.tokens_generated).toBeGreaterThanOrEqual(20);

    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^REQUEST +KIND +PHASE +MODEL +TOKENS +WRITTEN +DEDUPED +PENDING +BYTES +AGE +LEASE LEFT +PEER$/);
    const row = lines.find((l) => / generate +DECODING /.test(l));
    expect(row, table.stdout).toMatch(new RegExp(`^${g.request_id} +generate +DECODING +kvbridge-small-\\S+ +\\d+ +- +- +- +- +\\S+ +- +-$`));

    expect(status.code, status.stderr).toBe(0);
    const node = (JSON.parse(status.stdout) as { nodes: Array<{ active_generations: number; models: Array<{ id: string; state: string; sequences_in_use: number; sequences_total: number }> }> }).nodes[0]!;
    expect(node.active_generations).toBe(1);
    expect(node.models).toEqual([expect.objectContaining({ id: g.model, state: "loaded", sequences_in_use: 1 })]);
    expect(node.models[0]!.sequences_total).toBeGreaterThanOrEqual(1);

    // Tokens so far grow while it decodes.
    const later = await kvctl(["requests", cluster.decodeGrpc, "-o", "json"]);
    const again = (JSON.parse(later.stdout) as { nodes: Array<{ requests: RequestJson[] }> }).nodes[0]!.requests.find((r) => r.request_id === g.request_id);
    if (again) expect(again.tokens_generated).toBeGreaterThan(g.tokens_generated);
    const human = await kvctl(["status", cluster.decodeGrpc, "--sample-ms", "0"]);
    if (!streamed.includes("[DONE]")) expect(human.stdout).toMatch(/generating +1 active generation\(s\)/);
    expect(human.stdout).toMatch(new RegExp(`models +${g.model} loaded \\d+/\\d+ sequences`));

    await rest;
    expect(streamed).toContain('"finish_reason":"length"');
    const [after, afterStatus] = await Promise.all([kvctl(["requests", cluster.decodeGrpc]), kvctl(["status", cluster.decodeGrpc, "--sample-ms", "0", "-o", "json"])]);
    expect(after.stdout).toBe("no requests in flight\n");
    expect((JSON.parse(afterStatus.stdout) as { nodes: Array<{ active_generations: number }> }).nodes[0]!.active_generations).toBe(0);
  }, 180_000);
});
