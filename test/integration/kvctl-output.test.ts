// kvctl's output formats and errors against a real decode process (state built by real transfers):
// -o json, -o yaml and -o wide on every command (--json kept as -o json), one error shape for every
// command ({"error": {"code", "message", "node"}}, and per node in listings), a refused connection
// said as "connection refused" at once, and the timeout wording only when the deadline passed.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { repoRoot } from "../support/processes.js";

const KVCTL = path.join(repoRoot, "src/cli/kvctl.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function kvctl(args: string[], timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.KVBRIDGE_NODES;
    delete env.KVBRIDGE_ADMIN_TOKEN;
    const t0 = performance.now();
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
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

let node: DecodeProcess;
let addr: string;
let dead: string;
/** Accepts connections and never says a word: a call to it can only time out. */
let silent: Server;
let silentAddr: string;
const tcp = new TcpSenderTransport({ connections: 1 });
const sender = new KvSender({ fingerprint: "", transports: { tcp } });

beforeAll(async () => {
  node = await startDecodeProcess(["--pool-slots", "8", "--hold-ms", "600000"]);
  addr = node.grpc;
  dead = `127.0.0.1:${await closedPort()}`;
  silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  silentAddr = `127.0.0.1:${(silent.address() as { port: number }).port}`;
  await sender.push(addr, "out-1", [
    { key: "out-k0", data: Buffer.alloc(4_000, 1) },
    { key: "out-k1", data: Buffer.alloc(6_000, 2) },
  ]);
}, 120_000);

afterAll(async () => {
  await sender.close();
  await tcp.close();
  silent?.close();
  await node?.proc.stop();
});

describe("kvctl -o json|yaml|wide", () => {
  it("status, keys and requests give the same document as JSON and as YAML; --json is -o json", async () => {
    for (const cmd of [["status", "--sample-ms", "0"], ["keys"], ["requests"]]) {
      const [j, y, legacy] = await Promise.all([kvctl([...cmd, addr, "-o", "json"]), kvctl([...cmd, addr, "-o", "yaml"]), kvctl([...cmd, addr, "--json"])]);
      expect([j.code, y.code, legacy.code], `${cmd[0]}: ${j.stderr}${y.stderr}`).toEqual([0, 0, 0]);
      const fromJson = JSON.parse(j.stdout) as { nodes: Array<Record<string, unknown>> };
      const fromYaml = parseYaml(y.stdout) as typeof fromJson;
      // Rates and ages move between two runs: compare the shape and the stable fields.
      expect(fromYaml.nodes.map((n) => [n.address, n.ok])).toEqual([[addr, true]]);
      expect(fromJson.nodes.map((n) => [n.address, n.ok])).toEqual([[addr, true]]);
      expect(Object.keys(fromYaml.nodes[0]!).sort()).toEqual(Object.keys(fromJson.nodes[0]!).sort());
      expect(Object.keys((JSON.parse(legacy.stdout) as typeof fromJson).nodes[0]!).sort()).toEqual(Object.keys(fromJson.nodes[0]!).sort());
    }
    const keys = parseYaml((await kvctl(["keys", addr, "-o", "yaml"])).stdout) as { nodes: Array<{ entries: Array<{ key: string; size: number }> }> };
    expect(keys.nodes[0]!.entries.map((e) => [e.key, e.size]).sort()).toEqual([
      ["out-k0", 4_000],
      ["out-k1", 6_000],
    ]);
  });

  it("-o wide adds columns: exact bytes and owner for keys, exact bytes and ms for requests, fingerprint and generation for status", async () => {
    const [keys, wideKeys, reqs, wideReqs, status, wideStatus] = await Promise.all([
      kvctl(["keys", addr]),
      kvctl(["keys", addr, "-o", "wide"]),
      kvctl(["requests", addr]),
      kvctl(["requests", addr, "-o", "wide"]),
      kvctl(["status", addr, "--sample-ms", "0"]),
      kvctl(["status", addr, "--sample-ms", "0", "-o", "wide"]),
    ]);
    expect(keys.stdout).not.toContain("OWNER");
    expect(wideKeys.stdout.split("\n")[0]).toMatch(/BYTES\s+OWNER$/);
    expect(wideKeys.stdout).toMatch(/out-k1 .* 6000 /);
    expect(reqs.stdout).not.toContain("AGE MS");
    expect(wideReqs.stdout.split("\n")[0]).toContain("BYTES (EXACT)");
    expect(wideReqs.stdout).toMatch(/out-1 .* 10000 /);
    expect(status.stdout).not.toContain("fingerprint");
    expect(wideStatus.stdout).toContain("generation");
    expect(wideStatus.stdout).toContain("pool bytes");
  });

  it("evict and abort answer in JSON and YAML, and watch streams one document per refresh", async () => {
    const evict = await kvctl(["evict", addr, "--key", "no-such-key", "-o", "yaml"]);
    expect(evict.code).toBe(5);
    expect(parseYaml(evict.stdout)).toEqual({ error: { code: "NOT_FOUND", message: expect.any(String), node: addr } });
    const abort = await kvctl(["abort", addr, "--request", "out-1", "-o", "json"]);
    expect(abort.code).toBe(6); // committed: refused
    expect(JSON.parse(abort.stdout)).toEqual({ error: { code: "FAILED_PRECONDITION", message: expect.any(String), node: addr } });
    const watch = await kvctl(["watch", addr, "--count", "2", "--interval", "100", "-o", "json"]);
    expect(watch.code).toBe(0);
    const docs = watch.stdout.trim().split("\n").map((l) => JSON.parse(l) as { time: string; nodes: Array<{ address: string; requests: Array<{ request_id: string }> }> });
    expect(docs).toHaveLength(2);
    expect(docs[1]!.nodes[0]!.requests.map((r) => r.request_id)).toEqual(["out-1"]);
    const yamlWatch = await kvctl(["watch", addr, "--count", "2", "--interval", "100", "-o", "yaml"]);
    expect(yamlWatch.stdout.split(/^---$/m).filter((d) => d.trim().length > 0)).toHaveLength(2);
  });

  it("--json with -o yaml is a usage error, in the error shape", async () => {
    const r = await kvctl(["status", addr, "--json", "-o", "yaml"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: "INVALID_ARGUMENT", message: expect.stringContaining("--json"), node: null } });
  });
});

describe("kvctl errors", () => {
  it("one shape across status, keys and requests: each failed node is {address, ok: false, error: {code, message, node}}", async () => {
    for (const cmd of [["status", "--sample-ms", "0"], ["keys"], ["requests"]]) {
      const r = await kvctl([cmd[0]!, addr, dead, ...cmd.slice(1), "-o", "json"]);
      expect(r.code, cmd[0]).toBe(3);
      const nodes = (JSON.parse(r.stdout) as { nodes: Array<{ address: string; ok: boolean; error?: unknown }> }).nodes;
      expect(nodes.map((n) => [n.address, n.ok])).toEqual([
        [addr, true],
        [dead, false],
      ]);
      expect(nodes[1]!.error).toEqual({ code: "UNAVAILABLE", message: expect.stringContaining("connection refused"), node: dead });
    }
  });

  it("evict and abort on a refused node give the same error object, with the node", async () => {
    for (const cmd of [["evict", dead, "--unpinned"], ["abort", dead, "--request", "x"]]) {
      const r = await kvctl([...cmd, "-o", "json"]);
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stdout)).toEqual({ error: { code: "UNAVAILABLE", message: expect.stringContaining("connection refused"), node: dead } });
    }
  });

  it("a refused connection is said as such at once, never as a timeout", async () => {
    const r = await kvctl(["status", dead, "--sample-ms", "0", "--timeout", "20000"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`node ${dead}: connection refused`);
    expect(r.stderr).not.toContain("did not answer");
    // Long before the 20 s deadline (a process start included).
    expect(r.ms).toBeLessThan(15_000);
  });

  it("a node that accepts and never answers is a timeout, and says so", async () => {
    const r = await kvctl(["keys", silentAddr, "--timeout", "1500", "-o", "json"]);
    expect(r.code).toBe(3);
    const nodes = (JSON.parse(r.stdout) as { nodes: Array<{ error: { code: string; message: string; node: string } }> }).nodes;
    expect(nodes[0]!.error.code).toBe("DEADLINE_EXCEEDED");
    expect(nodes[0]!.error.message).toContain("did not answer ListEntries within 1500 ms");
    expect(nodes[0]!.error.node).toBe(silentAddr);
  });
});
