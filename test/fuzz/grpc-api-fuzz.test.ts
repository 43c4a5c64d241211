// Hostile input on the gRPC API of a real in-process decode node (small mmap pool the test reads
// directly): fast-check drives field-level messages through the normal clients and byte-level
// mutations of valid encodings through identity-serializer clients, for every RPC of KvReceiver,
// Inspect and Admin. After every input the node answers Hello and GetStats, the store invariants hold,
// and any error is a status with a message and a kvbridge code other than INTERNAL (grpc-js's own
// INTERNAL "Error deserializing request" for undecodable bytes is the one exception).
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { AdminClient } from "../../src/wire/admin-client.js";
import { ADMIN_TOKEN_METADATA_KEY } from "../../src/services/admin-service.js";
import { GrpcFuzzer } from "../support/fuzz-grpc.js";
import { startFuzzNode, type FuzzNode } from "../support/fuzz-node.js";
import { FuzzTally, fuzzSeed } from "../support/fuzz-tally.js";
import { nodeClients } from "../support/node-clients.js";

// Sized for a few seconds each; the time caps keep a slow, shared machine within the CI budget (a
// loaded runner managed 69 field-level inputs in 5 s, so the cap leaves room for a quarter of them).
const FIELD_INPUTS = 600;
const RAW_INPUTS = 600;
const CAP_MS = 15_000;
const ADMIN_TOKEN = "fuzz-admin-token";

let fz: FuzzNode;
let fuzzer: GrpcFuzzer;
const seed = fuzzSeed();
const tally = new FuzzTally(seed);

beforeAll(async () => {
  fz = await startFuzzNode({ poolSlots: 8, slotBytes: 4096, leaseMs: 1_500, quarantineMs: 20, holdMs: 3_000, adminToken: ADMIN_TOKEN });
  fuzzer = await GrpcFuzzer.open({
    targets: { KvReceiver: fz.grpcAddress, Inspect: fz.grpcAddress, Admin: fz.grpcAddress },
    services: ["KvReceiver", "Inspect", "Admin"],
    tally,
    namePrefix: `fz${seed & 0xffff}`,
    adminToken: ADMIN_TOKEN,
    afterInput: () => fz.invariantProblem(),
  });
});

afterAll(async () => {
  fuzzer?.close();
  await fz?.close();
  console.log(tally.report("gRPC API fuzz, in-process decode node"));
});

describe("gRPC API under hostile input (in-process decode node)", () => {
  it(`${FIELD_INPUTS} field-level inputs (at most ${CAP_MS / 1000} s) over all 13 KvReceiver, Inspect and Admin RPCs: clear statuses, invariants after each, node answering`, async () => {
    const before = tally.inputs;
    await fuzzer.runFieldLevel(FIELD_INPUTS, seed, CAP_MS);
    expect(tally.inputs - before).toBeGreaterThan(FIELD_INPUTS / 4);
    expect(fuzzer.deadReason).toBeNull();
    expect(tally.findings, tally.report("field-level")).toEqual([]);
    // The inputs reached deep states, not only validation errors.
    expect(tally.outcomes()["KvReceiver.Alloc"]?.OK ?? 0).toBeGreaterThan(0);
  });

  it(`${RAW_INPUTS} byte-mutated encodings (at most ${CAP_MS / 1000} s) of every RPC's request through an identity-serializer client: same contract`, async () => {
    const before = tally.inputs;
    await fuzzer.runRawBytes(RAW_INPUTS, seed + 1, CAP_MS);
    expect(tally.inputs - before).toBeGreaterThan(RAW_INPUTS / 4);
    expect(fuzzer.deadReason).toBeNull();
    expect(tally.findings, tally.report("byte-level")).toEqual([]);
  });

  it("after aborting and expiring what the fuzz allocated, the pool is at baseline and not one pool byte changed", async () => {
    const stats = await fuzzer.releaseEverything(10_000);
    expect(stats).toMatchObject({ activeRequests: 0, slotsWriting: 0, slotsReserved: 0, slotsQuarantined: 0 });
    // READY entries left as prefix cache are held by no one: evicting them frees every slot.
    const admin = new AdminClient(fz.grpcAddress);
    const clients = nodeClients(fz.grpcAddress);
    try {
      const metadata = new grpc.Metadata();
      metadata.set(ADMIN_TOKEN_METADATA_KEY, ADMIN_TOKEN);
      await admin.evict({ allUnpinned: true }, { timeoutMs: 5_000, metadata });
      const s = await clients.stats();
      expect(s.slotsFree).toBe(s.slotsTotal);
    } finally {
      admin.close();
      clients.close();
    }
    expect(fz.invariantProblem()).toBeNull();
    expect(fz.atBaseline()).toBe(true);
    // No RPC writes pool memory: the pattern the pool was filled with is intact, byte for byte.
    const pool = fz.pool();
    let changed = 0;
    for (let i = 0; i < pool.length; i++) if (pool[i] !== fz.patternAt(i)) changed++;
    expect(changed).toBe(0);
  });
});

describe("regression found by the fuzzer: ChecksumKeys naming one key many times", () => {
  it("30000 copies of a READY 1 MiB key are answered at once (one hash), not after half a minute of blocked event loop", async () => {
    const node = await startFuzzNode({ poolSlots: 1, slotBytes: 1 << 20, leaseMs: 60_000, quarantineMs: 0 });
    const clients = nodeClients(node.grpcAddress);
    try {
      const hello = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
      const a = await clients.receiver.alloc({ requestId: "r", keys: ["k"], sizes: [1 << 20], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, { timeoutMs: 10_000 });
      // Every byte written (the store commits READY only what its writer's admitted writes covered).
      node.writeThroughGate("r", a.remoteIndexes[0]!, a.writeTokens[0]!, Buffer.alloc(1 << 20, 0x5a));
      await clients.receiver.commit({ requestId: "r" }, { timeoutMs: 10_000 });
      let worstGap = 0;
      let last = performance.now();
      const probe = setInterval(() => {
        const now = performance.now();
        worstGap = Math.max(worstGap, now - last);
        last = now;
      }, 5);
      const t0 = performance.now();
      const res = await clients.inspect.checksumKeys({ keys: new Array<string>(30_000).fill("k") }, { timeoutMs: 20_000 }).finally(() => clearInterval(probe));
      const ms = performance.now() - t0;
      expect(res.checksums).toHaveLength(30_000);
      expect(new Set(res.checksums.map((c) => c.sha256)).size).toBe(1);
      expect(res.checksums[0]!.state).toBe("ready");
      // Hashing 30 GiB took about half a minute here; one hash and a 30000-entry answer take well under this.
      expect(ms).toBeLessThan(10_000);
      expect(worstGap).toBeLessThan(5_000);
    } finally {
      clients.close();
      await node.close();
    }
  });
});

describe("regression found by the fuzzer: error messages quoting huge input", () => {
  it("a Hello with a 30000-character non-ASCII fingerprint gets INCOMPATIBLE with a cut message, and the connection keeps serving", async () => {
    const node = await startFuzzNode({ poolSlots: 1, slotBytes: 4096, leaseMs: 60_000, quarantineMs: 0 });
    const clients = nodeClients(node.grpcAddress);
    try {
      const err = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "\ufffd".repeat(30_000) }, { timeoutMs: 5_000 }).then(
        () => null,
        (e: unknown) => e as KvbridgeError,
      );
      // Uncut, the ~270 KB grpc-message trailer never reached the client: DEADLINE_EXCEEDED after 5 s.
      expect(err?.code).toBe("INCOMPATIBLE");
      expect(err?.message).toMatch(/more characters cut\)$/);
      expect(err!.message.length).toBeLessThan(1_200);
      // The same HTTP/2 connection (clients share it) still answers at once.
      const s = await clients.inspect.getStats({}, { timeoutMs: 2_000 });
      expect(s.slotsTotal).toBe(1);
    } finally {
      clients.close();
      await node.close();
    }
  });
});

describe("regression found by the fuzzer: error messages quoting a lone surrogate", () => {
  it("a late Commit whose message quotes an Abort reason cut inside a surrogate pair gets NOT_FOUND (U+FFFD in its place), and the node keeps serving", async () => {
    const node = await startFuzzNode({ poolSlots: 2, slotBytes: 4096, leaseMs: 60_000, quarantineMs: 0 });
    const clients = nodeClients(node.grpcAddress);
    try {
      const hello = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 5_000 });
      await clients.receiver.alloc({ requestId: "astral", keys: ["a-0"], sizes: [16], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, { timeoutMs: 5_000 });
      // The receiver keeps the first 200 UTF-16 units of a sender's reason: here that cut falls
      // between the two halves of an emoji, which would leave a lone surrogate.
      await clients.receiver.abort({ requestId: "astral", reason: "x" + "\u{1F600}".repeat(150) }, { timeoutMs: 5_000 });
      // Quoted in a status, a lone surrogate made grpc-js's encodeURI throw and the process die.
      const err = await clients.receiver.commit({ requestId: "astral" }, { timeoutMs: 5_000 }).then(
        () => null,
        (e: unknown) => e as KvbridgeError,
      );
      expect(err?.code).toBe("NOT_FOUND");
      expect(err?.message).toMatch(/has ended \(aborted by its sender: x(\u{1F600})+\ufffd\)/u);
      const s = await clients.inspect.getStats({}, { timeoutMs: 2_000 });
      expect(s.slotsTotal).toBe(2);
    } finally {
      clients.close();
      await node.close();
    }
  });
});
