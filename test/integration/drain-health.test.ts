// The decode role's health and admission, over real gRPC on loopback with a real engine where one is
// loading: NOT_SERVING and refusals (reason "loading") while its engine loads, and for good if it
// cannot attach; NOT_SERVING while its pool is stuck (SERVING again once slots come back); a drain
// that refuses new requests (reason "draining"), serves the one already on the node, and ends when
// that one is released rather than at its timeout; NOT_SERVING once closed.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startDecodeRole, type DecodeRole, type DecodeRoleOptions } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { DecodeClient } from "../../src/wire/decode-client.js";
import { HealthClient } from "../../src/wire/health-client.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { openTestEngine } from "../support/model-fixture.js";
import { repoRoot } from "../support/processes.js";

const T = { timeoutMs: 5_000 };

interface Opened {
  role: DecodeRole;
  rx: ReceiverClient;
  inspect: InspectClient;
  decode: DecodeClient;
  health: () => Promise<string>;
}

const opened: Array<{ role: DecodeRole; close(): void }> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    o.close();
    await o.role.close();
  }
});

async function open(over: Partial<DecodeRoleOptions> = {}): Promise<Opened> {
  const role = await startDecodeRole({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: 4,
    slotBytes: 4096,
    leaseMs: 60_000,
    quarantineMs: 200,
    transport: "tcp",
    lockMemory: false,
    logger: silentLogger(),
    ...over,
  });
  const rx = new ReceiverClient(role.grpcAddress);
  const inspect = new InspectClient(role.grpcAddress);
  const decode = new DecodeClient(role.grpcAddress);
  const health = new HealthClient(role.grpcAddress);
  opened.push({
    role,
    close() {
      rx.close();
      inspect.close();
      decode.close();
      health.close();
    },
  });
  return { role, rx, inspect, decode, health: () => health.check("", T) };
}

async function waitForHealth(probe: () => Promise<string>, want: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (last !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    last = await probe();
  }
  expect(last).toBe(want);
}

function alloc(o: Opened, requestId: string, keys: string[], generation: number, fingerprint = ""): Promise<unknown> {
  return o.rx.alloc({ requestId, keys, sizes: keys.map(() => 100), batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint, generation }, T);
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

function kvctlStatus(addr: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "src/cli/kvctl.ts"), "status", addr, "--sample-ms", "0"], { cwd: repoRoot, stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

describe("decode role health and admission", () => {
  it("is NOT_SERVING and refuses Hello, Alloc and MatchPrefix (reason loading) while its engine loads, then serves with the engine's fingerprint", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let engine: LlamaEngine | undefined;
    const o = await open({ slotBytes: 1 << 20, engine: gate.then(async () => (engine = await openTestEngine({ maxSequences: 1 }))) });
    expect(await o.health()).toBe("NOT_SERVING");
    expect(o.role.health()).toEqual({ status: "NOT_SERVING", reason: "loading" });
    expect((await o.inspect.getStats({}, T)).serving).toBe(false);
    for (const refused of [
      await refusal(o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T)),
      await refusal(alloc(o, "early", ["e-0"], 1)),
      await refusal(o.decode.matchPrefix({ keys: ["k"] }, T)),
    ]) {
      expect(refused.code).toBe("UNAVAILABLE");
      expect(refused.details.reason).toBe("loading");
      expect(refused.message).toMatch(/engine is still loading/);
    }
    release();
    await o.role.engineReady;
    await waitForHealth(o.health, "SERVING");
    const hello = await o.rx.hello({ protocolVersion: 1, fingerprint: engine!.fingerprint }, T);
    expect(hello.fingerprint).toBe(engine!.fingerprint);
    await alloc(o, "on-time", ["e-0"], hello.generation, engine!.fingerprint);
    expect((await o.decode.matchPrefix({ keys: ["e-0", "e-1"] }, T)).matched).toBe(1);
    expect(o.role.health().reason).toBe("serving");
  }, 60_000);

  it("stays NOT_SERVING when its engine cannot attach (its chunks do not fit the slots), and says why", async () => {
    const o = await open({ slotBytes: 4096, engine: openTestEngine({ maxSequences: 1 }) });
    const err = await refusal(o.role.engineReady);
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/raise --slot-bytes to at least \d+/);
    expect(o.role.health()).toEqual({ status: "NOT_SERVING", reason: "load failed" });
    expect(await o.health()).toBe("NOT_SERVING");
    const refused = await refusal(o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T));
    expect(refused.code).toBe("UNAVAILABLE");
    expect(refused.message).toMatch(/engine failed to load/);
  }, 60_000);

  it("turns NOT_SERVING when no slot can be had for stuckPoolMs, and SERVING again when slots come back", async () => {
    const o = await open({ poolSlots: 2, stuckPoolMs: 300 });
    const hello = await o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T);
    await alloc(o, "hog", ["h-0", "h-1"], hello.generation);
    // Full but not yet for long: still serving (a busy pool is not a broken one).
    expect(await o.health()).toBe("SERVING");
    await waitForHealth(o.health, "NOT_SERVING");
    expect(o.role.health().reason).toBe("pool stuck");
    const status = await kvctlStatus(o.role.grpcAddress);
    expect(status.code).toBe(7);
    expect(status.stdout).toMatch(/ NOT_SERVING  tcp\n/);
    expect(status.stdout).toContain("free 0  reserved 0  writing 2");
    // Aborting the hog quarantines its slots (200 ms), then they are free again.
    await o.rx.abort({ requestId: "hog", reason: "test" }, T);
    await waitForHealth(o.health, "SERVING");
    expect(o.role.health().reason).toBe("serving");
  });

  it("counts unpinned READY entries as room: a pool full of prefix cache stays SERVING", async () => {
    const o = await open({ poolSlots: 2, stuckPoolMs: 100 });
    const hello = await o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T);
    // Commit needs every byte written: they go through the node's own TCP data plane.
    const offer = hello.offers.find((x) => x.transport === "tcp")!;
    const tcp = new TcpSenderTransport({ connections: 1 });
    try {
      const a = await o.rx.alloc({ requestId: "cache", keys: ["c-0", "c-1"], sizes: [100, 100], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
      const ch = await tcp.connect(offerFromWire(offer), AbortSignal.timeout(5_000));
      await ch.writeAll(
        "cache",
        a.remoteIndexes.map((slot, i) => ({ slot, poolOffset: slot * hello.slotBytes, token: a.writeTokens[i]!, data: Buffer.alloc(100, i + 1) })),
        AbortSignal.timeout(5_000),
      );
      await o.rx.commit({ requestId: "cache" }, T);
      await ch.close();
    } finally {
      await tcp.close();
    }
    await o.rx.release({ requestId: "cache" }, T);
    expect((await o.inspect.getStats({}, T)).slotsReady).toBe(2);
    await new Promise((r) => setTimeout(r, 400));
    expect(await o.health()).toBe("SERVING");
  });

  it("draining refuses new Allocs and MatchPrefix (reason draining) but serves the later batch of a request already here, and ends when it is released, not at the timeout", async () => {
    const o = await open({ poolSlots: 4, slotBytes: 4096 });
    const hello = await o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T);
    const base = { fingerprint: "", generation: hello.generation, sizes: [100] };
    await o.rx.alloc({ ...base, requestId: "inflight", keys: ["i-0"], batchSeq: 0, totalChunks: 2, isLastBatch: false }, T);
    const t0 = Date.now();
    let drainedAt = 0;
    const drained = o.role.drain(60_000).then((left) => {
      drainedAt = Date.now();
      return left;
    });
    expect(o.role.health()).toEqual({ status: "NOT_SERVING", reason: "draining" });
    expect(await o.health()).toBe("NOT_SERVING");
    const newcomer = await refusal(o.rx.alloc({ ...base, requestId: "newcomer", keys: ["n-0"], batchSeq: 0, totalChunks: 0, isLastBatch: true }, T));
    expect(newcomer.code).toBe("UNAVAILABLE");
    expect(newcomer.details.reason).toBe("draining");
    expect(newcomer.message).toContain("send newcomer to another node");
    // Hello is still answered: a sender of a request in flight may need to handshake again.
    expect((await o.rx.hello({ protocolVersion: 1, fingerprint: "" }, T)).generation).toBe(hello.generation);
    const later = await o.rx.alloc({ ...base, requestId: "inflight", keys: ["i-1"], batchSeq: 1, totalChunks: 2, isLastBatch: true }, T);
    expect(later.remoteIndexes).toHaveLength(1);
    expect((await o.inspect.getStats({}, T)).activeRequests).toBe(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(drainedAt).toBe(0);
    const ended = Date.now();
    await o.rx.abort({ requestId: "inflight", reason: "done" }, T).catch(() => undefined);
    expect(await drained).toBe(0);
    // Woken by the request's end, not by a poll or the 60 s bound.
    expect(drainedAt - ended).toBeLessThan(500);
    expect(drainedAt - t0).toBeLessThan(5_000);
    expect(o.role.health()).toEqual({ status: "NOT_SERVING", reason: "closed" });
  });

  it("is NOT_SERVING once closing, and close is idempotent", async () => {
    const o = await open();
    await Promise.all([o.role.close(), o.role.close()]);
    expect(o.role.health()).toEqual({ status: "NOT_SERVING", reason: "closed" });
  });
});
