// kvctl as an operator runs it (a real process) against real decode processes whose state was built
// by real transfers: every command's table and JSON checked against that known state, the guarded
// admin actions (token, loopback-only, pinned and in-flight refusals), exit codes, and `watch` in a
// pseudo-terminal (util-linux `script`) quitting on q and on Ctrl-C; a node id and a request id made
// of terminal escapes are shown escaped everywhere kvctl prints them.
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { networkInterfaces } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { repoRoot } from "../support/processes.js";

const KVCTL = path.join(repoRoot, "src/cli/kvctl.ts");

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs kvctl to completion (bounded) with a clean environment for its own variables. */
function kvctl(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const baseEnv = { ...process.env };
    delete baseEnv.KVBRIDGE_NODES;
    delete baseEnv.KVBRIDGE_ADMIN_TOKEN;
    const child = spawn(process.execPath, ["--import", "tsx", KVCTL, ...args], { cwd: repoRoot, env: { ...baseEnv, ...env }, stdio: ["ignore", "pipe", "pipe"] });
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

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function nonLoopbackIpv4(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

const chunk = (key: string, size: number, fill: number): { key: string; data: Buffer } => ({ key, data: Buffer.alloc(size, fill) });

const CALL = { timeoutMs: 5_000 };
/**
 * Text a terminal would act on. Nodes refuse C0, DEL and C1 in request ids and keys, but a node id is
 * the operator's flag, and a request id may still hold bidi controls and line separators.
 */
const EVIL_NODE_ID = "decode-\u001b[2J\u001b[H\nforged";
const EVIL_NODE_SHOWN = "decode-\\x1b[2J\\x1b[H\\x0aforged";
const EVIL_ID = "evil-\u202e\u2028forged  COMMITTED";
const EVIL_SHOWN = "evil-\\u202e\\u2028forged  COMMITTED";

let open: DecodeProcess;
let guarded: DecodeProcess;
let hostile: DecodeProcess;
let addr: string;
let port: number;
let guardedAddr: string;

beforeAll(async () => {
  // `open` has no admin token (loopback callers only) and listens on every interface, so a call
  // through a non-loopback address can be shown refused. `guarded` requires a token.
  [open, guarded, hostile] = await Promise.all([
    // Long lease and hold: the known state must outlive the whole file, however slow the machine.
    startDecodeProcess(["--transport", "tcp", "--listen", "0.0.0.0:0", "--lease-ms", "600000", "--hold-ms", "600000", "--quarantine-ms", "300"]),
    startDecodeProcess(["--transport", "tcp"], { KVBRIDGE_ADMIN_TOKEN: "s3cret-token" }),
    startDecodeProcess(["--transport", "tcp", "--lease-ms", "600000", "--node-id", EVIL_NODE_ID]),
  ]);
  port = Number(open.grpc.split(":").pop());
  addr = `127.0.0.1:${port}`;
  guardedAddr = guarded.grpc;

  // The known state, built by real transfers:
  //   req-a wrote pfx-0, pfx-1, a-2 and was released: READY, unpinned (prefix cache)
  //   req-b deduped pfx-0, pfx-1 and wrote b-2, committed, not consumed: pins all three
  //   req-w deduped pfx-0 and allocated w-1 but never wrote it: w-1 WRITING under req-w's lease
  const tcp = new TcpSenderTransport({ connections: 1 });
  const sender = new KvSender({ fingerprint: "", transports: { tcp } });
  const rx = new ReceiverClient(addr);
  const guardedRx = new ReceiverClient(guardedAddr);
  const hostileRx = new ReceiverClient(hostile.grpc);
  try {
    await sender.push(addr, "req-a", [chunk("pfx-0", 1000, 1), chunk("pfx-1", 2000, 2), chunk("a-2", 3000, 3)]);
    await rx.release({ requestId: "req-a" }, CALL);
    const b = await sender.push(addr, "req-b", [chunk("pfx-0", 1000, 1), chunk("pfx-1", 2000, 2), chunk("b-2", 4096, 4)]);
    expect(b.deduped).toBe(2);
    const hello = await rx.hello({ protocolVersion: 1, fingerprint: "" }, CALL);
    await rx.alloc(
      { requestId: "req-w", keys: ["pfx-0", "w-1"], sizes: [1000, 5000], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation },
      CALL,
    );
    // One released chunk on the guarded node, for the token tests to evict.
    await sender.push(guardedAddr, "g-1", [chunk("g-key", 100, 9)]);
    await guardedRx.release({ requestId: "g-1" }, CALL);
    // On its own node, a request whose id is a terminal attack, WRITING one chunk under a long lease.
    const hostileHello = await hostileRx.hello({ protocolVersion: 1, fingerprint: "" }, CALL);
    await hostileRx.alloc({ requestId: EVIL_ID, keys: ["h-0"], sizes: [100], isLastBatch: true, fingerprint: "", generation: hostileHello.generation }, CALL);
  } finally {
    rx.close();
    guardedRx.close();
    hostileRx.close();
    await sender.close();
    await tcp.close();
  }
});

afterAll(async () => {
  await Promise.all([open?.proc.stop(), guarded?.proc.stop(), hostile?.proc.stop()]);
});

describe("kvctl read-only commands against a known state", () => {
  it("status: identity, health, pool by state in slots and bytes, requests, dedup and transfer, as a block and as JSON", async () => {
    const [human, json] = await Promise.all([kvctl(["status", addr, "--sample-ms", "200"]), kvctl(["status", addr, "--sample-ms", "0", "--json"])]);
    expect(human.code).toBe(0);
    const lines = human.stdout.split("\n");
    expect(lines[0]).toMatch(new RegExp(`^${addr}  decode-\\S+  decode  v\\d+\\.\\d+\\.\\d+  protocol 2  SERVING  tcp$`));
    expect(human.stdout).toContain("64 slots x 256 KiB = 16 MiB, 7.8% in use");
    expect(human.stdout).toContain("free 59 (14.8 MiB)  reserved 0  writing 1 (256 KiB)  ready 4 (1 MiB)  quarantined 0");
    expect(human.stdout).toContain("2 active, 0 lease(s) ending within 2.00s; 2 committed, 0 aborted, 0 expired so far");
    expect(human.stdout).toContain("3 hits / 5 misses (37.5% hit rate)");
    expect(human.stdout).toMatch(/9\.9 KiB received, 0 B\/s over the last \d+ms/);

    expect(json.code).toBe(0);
    const node = (JSON.parse(json.stdout) as { nodes: Array<Record<string, unknown>> }).nodes[0]!;
    expect(node).toMatchObject({
      address: addr,
      ok: true,
      role: "decode",
      protocol_version: 2,
      health: "SERVING",
      transports: ["tcp"],
      pool: { slot_bytes: 262144, slots: { total: 64, free: 59, reserved: 0, writing: 1, ready: 4, quarantined: 0 }, bytes: { writing: 262144, ready: 4 * 262144 } },
      entries: 5,
      active_requests: 2,
      leases_near_expiry: 0,
      dedup: { hits: 3, misses: 5, hit_rate: 0.375 },
      transfer: { bytes_received: 1000 + 2000 + 3000 + 4096, rate_bytes_per_second: null },
      requests_committed: 2,
    });
  });

  it("status: an unreachable node is reported in place, the others still shown, exit 3", async () => {
    const dead = `127.0.0.1:${await closedPort()}`;
    const r = await kvctl(["status", addr, dead, "--sample-ms", "0", "--timeout", "1500", "--json"]);
    expect(r.code).toBe(3);
    const nodes = (JSON.parse(r.stdout) as { nodes: Array<{ address: string; ok: boolean; error?: { code: string } }> }).nodes;
    expect(nodes.map((n) => [n.address, n.ok])).toEqual([[addr, true], [dead, false]]);
    expect(nodes[1]!.error!.code).toBe("UNAVAILABLE");
    // Told by kvctl's own connection attempt: refused, so nothing listens there (not a timeout).
    expect(r.stderr).toContain(`${dead}: node ${dead}: connection refused (nothing listens there)`);
  });

  it("keys: every entry with state, refcount, pinning requests, slot, size, age and lease left", async () => {
    const [human, json] = await Promise.all([kvctl(["keys", addr]), kvctl(["keys", addr, "--json"])]);
    expect(human.code).toBe(0);
    const rows = human.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^KEY +STATE +REFS +PINNED BY +SLOT +SIZE +AGE +LEASE LEFT$/);
    expect(rows.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ["pfx-0", "READY", "2", "req-b,req-w"],
      ["pfx-1", "READY", "1", "req-b"],
      ["a-2", "READY", "0", "-"],
      ["b-2", "READY", "1", "req-b"],
      ["w-1", "WRITING", "1", "req-w"],
    ]);
    expect(rows[5]).toMatch(/^w-1 +WRITING +1 +req-w +\d+ +4\.9 KiB +\S+ +\d+m\d\ds$/);
    expect(rows[3]).toMatch(/^a-2 +READY +0 +- +\d+ +2\.9 KiB +\S+ +-$/);

    const entries = (JSON.parse(json.stdout) as { nodes: Array<{ total: number; entries: Array<Record<string, unknown>> }> }).nodes[0]!;
    expect(entries.total).toBe(5);
    const byKey = Object.fromEntries(entries.entries.map((e) => [e.key, e]));
    expect(byKey["pfx-0"]).toMatchObject({ state: "ready", refcount: 2, pinned_by: ["req-b", "req-w"], size: 1000, lease_left_ms: null, owner: null });
    expect(byKey["w-1"]).toMatchObject({ state: "writing", refcount: 1, pinned_by: ["req-w"], size: 5000, owner: "req-w" });
    expect(byKey["w-1"]!.lease_left_ms as number).toBeGreaterThan(300_000);
    const slots = entries.entries.map((e) => e.slot as number);
    expect(new Set(slots).size).toBe(5);
  });

  it("keys: filters by state, pinned and prefix, and says when --limit cut the list", async () => {
    const keysOf = (r: Run): string[] => (JSON.parse(r.stdout) as { nodes: Array<{ entries: Array<{ key: string }> }> }).nodes[0]!.entries.map((e) => e.key);
    const [writing, pinned, prefix, limited, none] = await Promise.all([
      kvctl(["keys", addr, "--state", "writing", "--json"]),
      kvctl(["keys", addr, "--pinned", "--json"]),
      kvctl(["keys", addr, "--prefix", "pfx-", "--state", "ready", "--json"]),
      kvctl(["keys", addr, "--limit", "2"]),
      kvctl(["keys", addr, "--state", "failed"]),
    ]);
    expect(keysOf(writing)).toEqual(["w-1"]);
    expect(keysOf(pinned)).toEqual(["pfx-0", "pfx-1", "b-2", "w-1"]);
    expect(keysOf(prefix)).toEqual(["pfx-0", "pfx-1"]);
    expect(limited.stdout).toContain("(2 of 5 shown; raise --limit");
    expect(none.stdout).toBe("no entries match\n");
  });

  it("requests: phase, keys written/deduped/pending, bytes, age, lease or hold, peer; nodes from KVBRIDGE_NODES", async () => {
    const [human, json] = await Promise.all([kvctl(["requests"], { KVBRIDGE_NODES: addr }), kvctl(["requests", addr, "--json"])]);
    expect(human.code).toBe(0);
    const rows = human.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^REQUEST +PHASE +WRITTEN +DEDUPED +PENDING +BYTES +AGE +LEASE LEFT +PEER$/);
    // Oldest first: req-b (committed before req-w allocated).
    expect(rows[1]).toMatch(/^req-b +COMMITTED +1 +2 +0 +4 KiB +\S+ +hold \S+ +127\.0\.0\.1:\d+$/);
    expect(rows[2]).toMatch(/^req-w +ALLOCATING +1 +1 +1 +0 B +\S+ +\d+m\d\ds +127\.0\.0\.1:\d+$/);
    const reqs = (JSON.parse(json.stdout) as { nodes: Array<{ requests: Array<Record<string, unknown>> }> }).nodes[0]!.requests;
    expect(reqs.map((r) => [r.request_id, r.phase, r.keys_written, r.keys_deduped, r.keys_pending, r.bytes])).toEqual([
      ["req-b", "committed", 1, 2, 0, 4096],
      ["req-w", "allocating", 1, 1, 1, 0],
    ]);
  });

  it("usage errors exit 2 and --help shows examples", async () => {
    const [bad, none, help] = await Promise.all([kvctl(["keys", addr, "--state", "bogus"]), kvctl(["status"]), kvctl(["evict", "--help"])]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--state.*bogus/s);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no node given");
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("Examples:");
    expect(help.stdout).toContain("kvctl evict 127.0.0.1:50061 --key");
  });
});

describe("kvctl watch", () => {
  it("prints frames one after another without escape codes when not on a terminal", async () => {
    const r = await kvctl(["watch", addr, "--count", "2", "--interval", "200"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\x1b[");
    expect(r.stdout.match(/^kvctl watch /gm)).toHaveLength(2);
    expect(r.stdout).toMatch(/req-w +ALLOCATING/);
  });

  const hasScript = spawnSync("script", ["--version"]).status === 0;
  for (const [name, key] of [["q", "q"], ["Ctrl-C", "\x03"]] as const) {
    it.skipIf(!hasScript)(`redraws in place in a pseudo-terminal and quits cleanly on ${name}, restoring the terminal`, async () => {
      const cmd = [process.execPath, "--import", "tsx", KVCTL, "watch", addr, "--interval", "200"].map((a) => `'${a}'`).join(" ");
      const child = spawn("script", ["-qefc", cmd, "/dev/null"], { cwd: repoRoot, env: { ...process.env, TERM: "xterm-256color", COLUMNS: "160", LINES: "50" }, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
      try {
        const deadline = Date.now() + 30_000;
        // Two frames drawn: each starts at the home position of the alternate screen.
        while ((out.match(/\x1b\[H/g) ?? []).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(out).toContain("\x1b[?1049h");
        expect(out).toContain("\x1b[?25l");
        expect(out).toMatch(/req-w +ALLOCATING/);
        expect(out).toContain("q: quit");
        const t0 = Date.now();
        child.stdin.write(key);
        const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 10_000))]);
        expect(code).toBe(0);
        expect(Date.now() - t0).toBeLessThan(5_000);
        // Cursor shown again and the alternate screen left, after the last frame.
        const tail = out.slice(out.lastIndexOf("\x1b[H"));
        expect(tail).toContain("\x1b[?25h");
        expect(tail).toContain("\x1b[?1049l");
      } finally {
        child.kill("SIGKILL");
      }
    });
  }
});

describe("kvctl admin actions", () => {
  it("evict refuses a pinned key and a key being written (exit 6) and leaves them; an unknown key exits 5", async () => {
    const [pinned, writing, unknown] = await Promise.all([
      kvctl(["evict", addr, "--key", "pfx-0"]),
      kvctl(["evict", addr, "--key", "w-1"]),
      kvctl(["evict", addr, "--key", "no-such-key", "--json"]),
    ]);
    expect(pinned.code).toBe(6);
    expect(pinned.stderr).toMatch(/pfx-0 is pinned by req-b, req-w; it cannot be evicted/);
    expect(writing.code).toBe(6);
    expect(writing.stderr).toMatch(/w-1 is writing; only READY entries can be evicted/);
    expect(unknown.code).toBe(5);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ error: { code: "NOT_FOUND" } });
    const keys = await kvctl(["keys", addr, "--json"]);
    expect((JSON.parse(keys.stdout) as { nodes: Array<{ total: number }> }).nodes[0]!.total).toBe(5);
  });

  it.skipIf(nonLoopbackIpv4() === undefined)("a node without a token refuses admin calls from a non-loopback address (exit 4)", async () => {
    const r = await kvctl(["evict", `${nonLoopbackIpv4()}:${port}`, "--unpinned"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/has no admin token, so it accepts admin calls from loopback only, and this call came from \S+/);
  });

  it("a node with a token refuses a missing or wrong token (exit 4) and accepts the right one from the environment", async () => {
    const [missing, wrong] = await Promise.all([
      kvctl(["evict", guardedAddr, "--unpinned"]),
      kvctl(["evict", guardedAddr, "--unpinned", "--admin-token", "guess"]),
    ]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/requires an admin token; pass --admin-token or set KVBRIDGE_ADMIN_TOKEN/);
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/does not match/);
    const right = await kvctl(["evict", guardedAddr, "--unpinned", "--json"], { KVBRIDGE_ADMIN_TOKEN: "s3cret-token" });
    expect(right.code).toBe(0);
    expect(JSON.parse(right.stdout)).toMatchObject({ address: guardedAddr, evicted: 1, slots_free: 64 });
  });

  it("evict takes an unpinned READY key, then --unpinned takes none of the pinned ones", async () => {
    const one = await kvctl(["evict", addr, "--key", "a-2"]);
    expect(one.code).toBe(0);
    expect(one.stdout).toBe(`evicted key a-2 from ${addr}; 60 slot(s) free now\n`);
    const all = await kvctl(["evict", addr, "--unpinned", "--json"]);
    expect(JSON.parse(all.stdout)).toMatchObject({ evicted: 0, slots_free: 60 });
    const keys = await kvctl(["keys", addr, "--json"]);
    expect((JSON.parse(keys.stdout) as { nodes: Array<{ entries: Array<{ key: string }> }> }).nodes[0]!.entries.map((e) => e.key)).toEqual(["pfx-0", "pfx-1", "b-2", "w-1"]);
  });

  it("abort refuses a committed request (exit 6), releases exactly an unfinished one's holds, and exits 5 for an unknown one", async () => {
    const committed = await kvctl(["abort", addr, "--request", "req-b"]);
    expect(committed.code).toBe(6);
    expect(committed.stderr).toMatch(/req-b is committed/);
    const r = await kvctl(["abort", addr, "--request", "req-w", "--reason", "sender hung", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ address: addr, request_id: "req-w", slots_released: 1, pins_released: 2 });
    const again = await kvctl(["abort", addr, "--request", "req-w"]);
    expect(again.code).toBe(5);
    // req-w's slot went to quarantine, its pin on pfx-0 is gone, req-b's holds are untouched.
    const [keys, status] = await Promise.all([kvctl(["keys", addr, "--json"]), kvctl(["status", addr, "--sample-ms", "0", "--json"])]);
    const entries = (JSON.parse(keys.stdout) as { nodes: Array<{ entries: Array<{ key: string; refcount: number; pinned_by: string[] }> }> }).nodes[0]!.entries;
    expect(entries.map((e) => [e.key, e.refcount, e.pinned_by])).toEqual([
      ["pfx-0", 1, ["req-b"]],
      ["pfx-1", 1, ["req-b"]],
      ["b-2", 1, ["req-b"]],
    ]);
    const node = (JSON.parse(status.stdout) as { nodes: Array<{ pool: { slots: { writing: number; free: number; quarantined: number } }; requests_aborted: number }> }).nodes[0]!;
    expect(node.requests_aborted).toBe(1);
    expect(node.pool.slots.writing).toBe(0);
    expect(node.pool.slots.quarantined + node.pool.slots.free).toBe(61);
    expect(open.proc.lines.some((l) => /admin: request aborted/.test(l) && /sender hung/.test(l))).toBe(true);
  });
});

describe("kvctl with a node id and a request id made of terminal escapes", () => {
  /** ESC, CR, C1, bidi and separators: anything but the newlines kvctl itself writes. */
  const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2028\u2029]/;

  it("status and watch show the node id escaped in the identity line, and --json gives it back exactly", async () => {
    const [status, json] = await Promise.all([kvctl(["status", hostile.grpc, "--sample-ms", "0"]), kvctl(["status", hostile.grpc, "--sample-ms", "0", "--json"])]);
    expect(status.code).toBe(0);
    expect(status.stdout).not.toMatch(RAW);
    expect(status.stdout.split("\n")[0]).toBe(`${hostile.grpc}  ${EVIL_NODE_SHOWN}  decode  v${(JSON.parse(json.stdout) as { nodes: Array<{ version: string }> }).nodes[0]!.version}  protocol 2  SERVING  tcp`);
    expect((JSON.parse(json.stdout) as { nodes: Array<{ node_id: string }> }).nodes[0]!.node_id).toBe(EVIL_NODE_ID);
  });

  it("requests, keys and watch show the request id escaped on one row, and --json gives it back exactly", async () => {
    const [requests, keys, watch, json] = await Promise.all([
      kvctl(["requests", hostile.grpc]),
      kvctl(["keys", hostile.grpc]),
      kvctl(["watch", hostile.grpc, "--count", "1"]),
      kvctl(["requests", hostile.grpc, "--json"]),
    ]);
    for (const r of [requests, keys, watch]) {
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(RAW);
      expect(r.stdout).toContain(EVIL_SHOWN);
    }
    expect(watch.stdout).toContain(EVIL_NODE_SHOWN);
    expect(requests.stdout.trimEnd().split("\n")).toHaveLength(2);
    expect(requests.stdout.split("\n")[1]).toMatch(/^evil-\\u202e\\u2028forged  COMMITTED +ALLOCATING +1 +0 +1 /);
    expect(keys.stdout.split("\n")[1]).toMatch(/^h-0 +WRITING +1 +evil-\\u202e/);
    expect((JSON.parse(json.stdout) as { nodes: Array<{ requests: Array<{ request_id: string }> }> }).nodes[0]!.requests.map((r) => r.request_id)).toEqual([EVIL_ID]);
  });

  it("an error about an id with ESC in it, and the abort confirmation, are printable too", async () => {
    const missing = await kvctl(["abort", hostile.grpc, "--request", "nope-\u001b[2J"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).not.toMatch(RAW);
    const aborted = await kvctl(["abort", hostile.grpc, "--request", EVIL_ID]);
    expect(aborted.code).toBe(0);
    expect(aborted.stdout).not.toMatch(RAW);
    expect(aborted.stdout).toBe(`aborted request ${EVIL_SHOWN} on ${hostile.grpc}: 1 slot(s) released to quarantine, 1 pin(s) dropped\n`);
  });
});
