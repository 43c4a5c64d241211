// Hostile input on the TCP data port of a real in-process decode node. The pool starts filled with a
// known pattern; real slots come from Alloc; fast-check drives episodes of one to four connections (or
// swarms of 30 to 120) sending WRITE frames for their own, other, committed, released and unknown
// requests, wrong tokens, out-of-bounds ranges, lying lengths and flipped header bits, cut into random
// pieces and ended cleanly, torn, with garbage, with a fatal header or by a reset. The fuzzer's own
// model of the protocol (test/support/fuzz-tcp-model.ts) predicts every NACK and CLOSE code and every
// pool byte; after each episode the whole pool is compared with it, and every byte no allocation ever
// covered must still hold the pattern.
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import { silentLogger } from "../../src/observability/logger.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { KvReceiver } from "../../src/transfer/receiver.js";
import { KvSender } from "../../src/transfer/sender.js";
import { encodeWriteHeader, FrameType } from "../../src/transport/tcp/tcp-frame.js";
import { TcpReceiverDataPlane } from "../../src/transport/tcp/tcp-receiver.js";
import type { TcpReceiveMode } from "../../src/transport/tcp/tcp-receiver-connection.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startFuzzNode, type FuzzNode } from "../support/fuzz-node.js";
import { FuzzTally, fuzzSeed } from "../support/fuzz-tally.js";
import { TcpFuzzer } from "../support/fuzz-tcp.js";
import { nodeClients } from "../support/node-clients.js";
import { RawPeer } from "../support/tcp-raw-peer.js";

const EPISODES = 250;
/** Keeps a slow, shared machine within the CI budget; the count that ran is printed. */
const CAP_MS = 10_000;

let fz: FuzzNode;
let fuzzer: TcpFuzzer;
const seed = fuzzSeed();
const tally = new FuzzTally(seed);

beforeAll(async () => {
  // Quarantine 0: a slot freed by an abort is handed out again at once, the hardest case for late writes.
  fz = await startFuzzNode({ poolSlots: 16, slotBytes: 4096, leaseMs: 60_000, quarantineMs: 0 });
  const tcp = fz.node.dataPlanes.find((d) => d.kind === "tcp") as TcpReceiverDataPlane;
  fuzzer = await TcpFuzzer.open({
    target: {
      grpcAddress: fz.grpcAddress,
      dataPort: fz.dataPort,
      pool: fz.pool,
      patternAt: fz.patternAt,
      invariantProblem: fz.invariantProblem,
      openConnections: () => tcp.connectionCount,
    },
    tally,
    namePrefix: `tz${seed & 0xffff}`,
  });
});

afterAll(async () => {
  fuzzer?.close();
  await fz?.close();
  console.log(tally.report("TCP data-port fuzz, in-process decode node"), "\n ", JSON.stringify(fuzzer?.counts));
});

describe("TCP data port under hostile input (in-process decode node, pool compared byte by byte)", () => {
  it(`${EPISODES} episodes (at most ${CAP_MS / 1000} s) of hostile connections: exact NACK and CLOSE codes, torn connections abort only their own requests, no byte outside what the model allows`, async () => {
    await fuzzer.run(EPISODES, seed, CAP_MS);
    expect(fuzzer.counts.episodes).toBeGreaterThan(EPISODES / 4);
    expect(tally.findings, tally.report("tcp")).toEqual([]);
    const frames = tally.outcomes()["tcp frames (model)"] ?? {};
    // Both sides of the gate were exercised: real writes landed and hostile ones were refused.
    expect(frames.written ?? 0).toBeGreaterThan(0);
    expect(Object.keys(frames).filter((k) => k.startsWith("refused")).length).toBeGreaterThanOrEqual(4);
  });

  it("afterwards the node still serves a real transfer byte-exact, and releasing everything returns the pool to baseline", async () => {
    const tcp = new TcpSenderTransport();
    const sender = new KvSender({ fingerprint: "", transports: { tcp }, rpcTimeoutMs: 5_000 });
    const clients = nodeClients(fz.grpcAddress);
    try {
      const chunks = [1, 4096, 777].map((n, i) => ({ key: `after-fuzz-${seed}-${i}`, data: randomBytes(n) }));
      const res = await sender.push(fz.grpcAddress, `after-fuzz-${seed}`, chunks);
      expect(res.commit).toMatchObject({ ready: 3, failed: 0 });
      const sums = await clients.inspect.checksumKeys({ keys: chunks.map((c) => c.key) }, { timeoutMs: 10_000 });
      expect(sums.checksums.map((c) => c.sha256)).toEqual(chunks.map((c) => createHash("sha256").update(c.data).digest("hex")));
      // The transfer's bytes are legitimately in the pool now: tell the model where, before it compares every byte.
      const listed = await clients.inspect.listEntries({ prefix: `after-fuzz-${seed}-` }, { timeoutMs: 10_000 });
      for (const e of listed.entries) fuzzer.noteWrite(Number(e.slot), chunks.find((c) => c.key === e.key)!.data);
      await clients.receiver.release({ requestId: `after-fuzz-${seed}` }, { timeoutMs: 10_000 });
      await fuzzer.releaseAll();
      const s = await clients.waitForStats((x) => x.activeRequests === 0 && x.slotsWriting === 0 && x.slotsReserved === 0 && x.slotsQuarantined === 0);
      expect(s).toMatchObject({ activeRequests: 0, slotsWriting: 0, slotsReserved: 0, slotsQuarantined: 0 });
      expect(fz.invariantProblem()).toBeNull();
      expect(fz.atBaseline()).toBe(true);
      fuzzer.checkPool("after the real transfer and the release");
      expect(tally.findings, tally.report("tcp")).toEqual([]);
    } finally {
      clients.close();
      await sender.close();
      await tcp.close();
    }
  });
});

describe("regression found by the fuzzer: a frame whose allocation ends mid-payload", () => {
  async function rig(mode: TcpReceiveMode) {
    const memory = allocateHeapPool({ slots: 1, slotBytes: 4096 });
    const receiver = new KvReceiver({ memory, leaseMs: 60_000, quarantineMs: 0, fingerprint: "", nodeId: "rx", logger: silentLogger() });
    const plane = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, memory, gate: receiver, receiveMode: mode });
    const offer = plane.offer();
    if (offer.kind !== "tcp") throw new Error("tcp offer expected");
    const alloc = (id: string) => receiver.alloc({ requestId: id, keys: [`key-${id}`], sizes: [4096], batchSeq: 0, totalChunks: 0, isLastBatch: true });
    const close = async (): Promise<void> => {
      await plane.close();
      receiver.close();
      memory.close();
    };
    return { memory, receiver, port: offer.port, alloc, close };
  }

  async function until(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 5_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  for (const mode of ["zero-copy", "copy"] as const) {
    it(`${mode}: after an abort and the slot's reuse, the rest of the old frame never lands in the new owner's bytes`, async () => {
      const r = await rig(mode);
      const peer = await RawPeer.connect(r.port);
      try {
        const old = r.alloc("old");
        const slot = old.remoteIndexes[0]!;
        peer.send(encodeWriteHeader(Buffer.from("old"), 0, slot, 0, 4096, old.writeTokens[0]!), Buffer.alloc(100, 0xaa));
        await until(() => r.memory.slotView(slot)[99] === 0xaa, "the first 100 bytes");
        r.receiver.abort("old", { kind: "sender_abort", detail: "test" });
        const heir = r.alloc("heir");
        expect(heir.remoteIndexes[0]).toBe(slot); // quarantine 0, one slot: the same memory
        // The new owner writes its bytes through the gate, as its own frame would, and commits them.
        const gate = r.receiver.admit("heir", slot, 0, 4096, heir.writeTokens[0]!);
        if (!gate.ok) throw new Error(`gate refused the heir: ${gate.code} ${gate.message}`);
        gate.target.fill(0x11);
        r.receiver.written("heir", slot, 4096, 0);
        expect(r.receiver.commit("heir")).toMatchObject({ ready: 1 });
        peer.send(Buffer.alloc(3996, 0xee)); // the rest of the old frame
        const [nack] = await peer.waitForReplies(1);
        expect(nack).toMatchObject({ type: FrameType.NACK, seq: 0, code: "NOT_FOUND" });
        expect(nack!.type === FrameType.NACK && nack!.message).toMatch(/stopped after \d+ of 4096 bytes/);
        expect(r.memory.slotView(slot).every((b) => b === 0x11)).toBe(true);
      } finally {
        peer.destroy();
        await r.close();
      }
    });

    it(`${mode}: a Commit under a half-sent frame is refused unproven, READY nothing, and the rest of the frame lands nowhere`, async () => {
      const r = await rig(mode);
      const peer = await RawPeer.connect(r.port);
      try {
        const a = r.alloc("early-commit");
        const slot = a.remoteIndexes[0]!;
        peer.send(encodeWriteHeader(Buffer.from("early-commit"), 7, slot, 0, 4096, a.writeTokens[0]!), Buffer.alloc(100, 0xaa));
        await until(() => r.memory.slotView(slot)[99] === 0xaa, "the first 100 bytes");
        // 100 of 4096 bytes arrived: the store will not vouch for the other 3996.
        const refused = (() => {
          try {
            r.receiver.commit("early-commit");
            return null;
          } catch (err) {
            return err;
          }
        })();
        expect(refused).toBeInstanceOf(KvbridgeError);
        expect(refused).toMatchObject({ code: "FAILED_PRECONDITION", details: { reason: "commit_unproven" } });
        expect(r.receiver.checksums(["key-early-commit"])[0]!.state).not.toBe("ready");
        expect(r.receiver.stats()).toMatchObject({ slotsReady: 0, commitsUnproven: 1 });
        const after = Buffer.from(r.memory.slotView(slot));
        peer.send(Buffer.alloc(3996, 0xee));
        const [nack] = await peer.waitForReplies(1);
        expect(nack).toMatchObject({ type: FrameType.NACK, seq: 7, code: "FAILED_PRECONDITION" });
        expect(r.memory.slotView(slot).equals(after)).toBe(true);
        r.receiver.checkInvariants();
      } finally {
        peer.destroy();
        await r.close();
      }
    });
  }
});
