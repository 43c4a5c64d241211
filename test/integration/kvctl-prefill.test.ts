// kvctl (a real process) against a real prefill node and through a real router: `status` shows the
// prefill node (role, model, sequences, prefix cache, pushes in flight) instead of UNREACHABLE or
// INCOMPATIBLE; `requests` lists a Prefill whose push hangs on a silent decode target (kind prefill,
// phase pushing, model, prompt tokens, chunks, the target); `keys` is refused (no KV store, exit 6);
// `nodes --router` lists the router's nodes (role, address, in rotation, health; -o json and wide),
// a router protecting /health needs --api-key, and `status --router` reports every node behind it.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { startSilentPeer, type SilentPeer } from "../support/fault-silent-peer.js";
import { sampleText } from "../support/model-fixture.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";
import { repoRoot, spawnKvbridge, type RunningProcess } from "../support/processes.js";

const KVCTL = path.join(repoRoot, "src/cli/kvctl.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function kvctl(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    for (const k of ["KVBRIDGE_NODES", "KVBRIDGE_ROUTER", "KVBRIDGE_API_KEY"]) delete base[k];
    const child = spawn(process.execPath, ["--import", "tsx", KVCTL, ...args], { cwd: repoRoot, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
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

let cluster: PdCluster;
let guardedRouter: RunningProcess;
let guardedUrl: string;
let silent: SilentPeer;

beforeAll(async () => {
  [cluster, silent] = await Promise.all([startPdCluster(), startSilentPeer()]);
  guardedRouter = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", cluster.prefillGrpc, "--decode", cluster.decodeGrpc, "--api-key", "k-123", "--api-key-protect-all"]);
  guardedUrl = (JSON.parse(await guardedRouter.waitForLine(/router serving/, 60_000)) as { url: string }).url;
}, 180_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), guardedRouter?.stop(), silent?.close()]);
});

describe("kvctl against a prefill node", () => {
  it("status: role prefill, its model and sequences, prefix cache, pushes; table and JSON", async () => {
    const [human, json] = await Promise.all([kvctl(["status", cluster.prefillGrpc, "--sample-ms", "0"]), kvctl(["status", cluster.prefillGrpc, "--sample-ms", "0", "-o", "json"])]);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^${cluster.prefillGrpc}  prefill-\\S+  prefill  v\\d+\\.\\d+\\.\\d+  protocol 2  SERVING  \\S+$`));
    expect(human.stdout).toMatch(/\n {2}models +kvbridge-small-\S+ loaded 0\/\d+ sequences\n/);
    expect(human.stdout).toMatch(/\n {2}prefix cache (off|\d+ chunks, .* of .*)\n/);
    expect(human.stdout).toContain("  pushes       0 in flight\n");
    expect(human.stdout).not.toContain("pool");
    const node = (JSON.parse(json.stdout) as { nodes: Array<Record<string, unknown>> }).nodes[0]!;
    expect(node).toMatchObject({ ok: true, role: "prefill", health: "SERVING", pushes_in_flight: 0, active_requests: 0 });
    expect(node.models).toEqual([expect.objectContaining({ id: expect.stringMatching(/^kvbridge-small-/), state: "loaded", sequences_in_use: 0 })]);
  });

  it("requests: a push in flight (prefill, pushing, model, prompt tokens, chunks, its target); keys refused", async () => {
    const client = new PrefillClient(cluster.prefillGrpc);
    const ac = new AbortController();
    const target = `127.0.0.1:${silent.port}`;
    const call = client.prefill({ requestId: "kvctl-push-1", prompt: sampleText(200), decodeTarget: target }, { timeoutMs: 120_000, signal: ac.signal }).catch((err: unknown) => err);
    try {
      // The push hangs on the silent target: poll until kvctl sees it there.
      let row: Record<string, unknown> | undefined;
      for (let i = 0; i < 20 && row?.phase !== "pushing"; i++) {
        const r = await kvctl(["requests", cluster.prefillGrpc, "-o", "json"]);
        expect(r.code, r.stderr).toBe(0);
        row = (JSON.parse(r.stdout) as { nodes: Array<{ requests: Array<Record<string, unknown>> }> }).nodes[0]!.requests.find((x) => x.request_id === "kvctl-push-1");
      }
      expect(row).toMatchObject({ kind: "prefill", phase: "pushing", model: expect.stringMatching(/^kvbridge-small-/), peer: target });
      expect(row!.prompt_tokens as number).toBeGreaterThan(100);
      expect(row!.chunks as number).toBeGreaterThanOrEqual(1);

      const [table, status, keys] = await Promise.all([
        kvctl(["requests", cluster.prefillGrpc, "-o", "wide"]),
        kvctl(["status", cluster.prefillGrpc, "--sample-ms", "0"]),
        kvctl(["keys", cluster.prefillGrpc, "-o", "json"]),
      ]);
      const lines = table.stdout.trimEnd().split("\n");
      expect(lines[0]).toMatch(/^REQUEST +KIND +PHASE +MODEL +TOKENS +WRITTEN .* PEER .* PROMPT TOKENS +CHUNKS$/);
      expect(lines[1]).toMatch(new RegExp(`^kvctl-push-1 +prefill +PUSHING +kvbridge-small-\\S+ +- +- +- +- +- +\\S+ +- +${target.replace(/\./g, "\\.")} .* \\d+ +\\d+$`));
      expect(status.stdout).toContain("  pushes       1 in flight\n");
      expect(keys.code).toBe(6);
      expect(JSON.parse(keys.stdout)).toMatchObject({ nodes: [{ ok: false, error: { code: "FAILED_PRECONDITION", message: expect.stringContaining("holds no KV store") } }] });
    } finally {
      ac.abort();
      await call;
      client.close();
    }
    // Cancelled: nothing left in flight.
    let after = "";
    for (let i = 0; i < 10 && after !== "no requests in flight\n"; i++) after = (await kvctl(["requests", cluster.prefillGrpc])).stdout;
    expect(after).toBe("no requests in flight\n");
  }, 120_000);
});

describe("kvctl through a router", () => {
  it("nodes --router: role, address, in rotation, health; -o json and -o wide", async () => {
    const [table, json, wide] = await Promise.all([
      kvctl(["nodes", "--router", cluster.url]),
      kvctl(["nodes", "--router", cluster.url, "-o", "json"]),
      kvctl(["nodes", "--router", cluster.url, "-o", "wide"]),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout.split("\n").slice(0, 4)).toEqual([
      expect.stringMatching(/^router http:\/\/127\.0\.0\.1:\d+: ready$/),
      expect.stringMatching(/^ROLE +ADDRESS +IN ROTATION +HEALTH$/),
      expect.stringMatching(new RegExp(`^prefill +${cluster.prefillGrpc} +yes +SERVING$`)),
      expect.stringMatching(new RegExp(`^decode +${cluster.decodeGrpc} +yes +SERVING$`)),
    ]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      status: "ready",
      draining: false,
      nodes: [
        { role: "prefill", address: cluster.prefillGrpc, in_rotation: true, health: "SERVING" },
        { role: "decode", address: cluster.decodeGrpc, in_rotation: true, health: "SERVING" },
      ],
    });
    expect(wide.stdout).toMatch(/ROLE +ADDRESS +IN ROTATION +HEALTH +NODE ID +VERSION +MODELS/);
    expect(wide.stdout).toMatch(new RegExp(`decode +${cluster.decodeGrpc} +yes +SERVING +decode-\\S+ +\\d+\\.\\d+\\.\\d+ +kvbridge-small-`));
  });

  it("a router protecting /health needs --api-key (exit 4 without, the right key works); status --router reports every node", async () => {
    const [denied, wrong, ok, status] = await Promise.all([
      kvctl(["nodes", "--router", guardedUrl, "-o", "json"]),
      kvctl(["nodes", "--router", guardedUrl, "--api-key", "nope"]),
      kvctl(["nodes", "--router", guardedUrl], { KVBRIDGE_API_KEY: "k-123" }),
      kvctl(["status", "--router", cluster.url, "--sample-ms", "0", "-o", "json"]),
    ]);
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stdout)).toMatchObject({ error: { code: "PERMISSION_DENIED", message: expect.stringContaining("--api-key") } });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toContain("the API key was not accepted");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`decode +${cluster.decodeGrpc} +yes +SERVING`));
    expect(status.code, status.stderr).toBe(0);
    const nodes = (JSON.parse(status.stdout) as { nodes: Array<{ address: string; role: string }> }).nodes;
    expect(nodes.map((n) => [n.address, n.role])).toEqual([
      [cluster.prefillGrpc, "prefill"],
      [cluster.decodeGrpc, "decode"],
    ]);
  });

  it("a router that is not there: connection refused, exit 3", async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const r = await kvctl(["nodes", "--router", `http://127.0.0.1:${port}`, "-o", "json"]);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: "UNAVAILABLE", message: expect.stringContaining("connection refused") } });
  });
});
