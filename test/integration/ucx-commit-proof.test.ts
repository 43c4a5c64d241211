// Commit proofs over real UCX (shared memory between two processes): one-sided puts land without the
// decode node seeing them, so a Commit names each chunk's CRC-32 and the node checks it against the
// slot. A hostile caller that Allocs and Commits with nothing (or the wrong bytes) put, and a made-up
// checksum, is refused FAILED_PRECONDITION commit_unproven and makes nothing READY; an honest one
// with the right proof commits.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { chunkCrc32 } from "../../src/transfer/commit-proof.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { KvSender } from "../../src/transfer/sender.js";
import type { SenderChannel } from "../../src/transport/transport.js";
import { ucxAvailability, UcxSenderTransport } from "../../src/transport/ucx/index.js";
import type { HelloResponse__Output } from "../../src/wire/generated/kvbridge/v1/HelloResponse.js";
import { PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";

const ucx = ucxAvailability();
const ENV = { UCX_TLS: "posix,cma,self" };
const CHUNK = 100_000;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

interface Hostile {
  c: NodeClients;
  hello: HelloResponse__Output;
  ch: SenderChannel;
  /** Alloc of one fresh key; returns its slot. */
  alloc(requestId: string, key: string): Promise<number>;
  put(requestId: string, slot: number, data: Buffer): Promise<void>;
}

async function hostile(d: DecodeProcess): Promise<Hostile> {
  const c = nodeClients(d.grpc);
  closers.push(() => c.close());
  const T = { timeoutMs: c.timeoutMs };
  const hello = await c.receiver.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["ucx"], senderId: "hostile" }, T);
  const offer = hello.offers.map(offerFromWire).find((o) => o.kind === "ucx");
  expect(offer).toBeDefined();
  const transport = UcxSenderTransport.create({ ucxConfig: { TLS: ENV.UCX_TLS } });
  closers.push(() => transport.close());
  const ch = await transport.connect(offer!, new AbortController().signal);
  closers.push(() => ch.close());
  return {
    c,
    hello,
    ch,
    async alloc(requestId, key) {
      const res = await c.receiver.alloc({ requestId, keys: [key], sizes: [CHUNK], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
      expect(res.remoteIndexes).toHaveLength(1);
      return res.remoteIndexes[0]!;
    },
    async put(requestId, slot, data) {
      await ch.writeAll(requestId, [{ slot, poolOffset: slot * hello.slotBytes, token: Buffer.alloc(8), data }], new AbortController().signal);
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; reason: unknown } | null> {
  return p.then(
    () => null,
    (e: unknown) => (isKvbridgeError(e) ? { code: e.code, reason: e.details.reason } : { code: `not a KvbridgeError: ${String(e)}`, reason: undefined }),
  );
}

describe.skipIf(!ucx.available)("UCX commit proofs (UCX_TLS=posix,cma,self, real processes)", () => {
  it("refuses a Commit whose chunks were never put (made-up checksum, no checksum) or were put with other bytes; nothing becomes READY and the pool returns to baseline", async () => {
    const d = await startDecodeProcess(["--transport", "ucx", "--quarantine-ms", "200"], ENV);
    closers.push(async () => void (await d.proc.stop()));
    const h = await hostile(d);
    const T = { timeoutMs: h.c.timeoutMs };
    const data = randomBytes(CHUNK);

    // 1. Nothing put, a made-up checksum.
    await h.alloc("nothing-put", "poison-key");
    const r1 = await refusal(h.c.receiver.commit({ requestId: "nothing-put", proofs: [{ key: "poison-key", crc32: chunkCrc32(data) }] }, T));
    expect(r1).toEqual({ code: "FAILED_PRECONDITION", reason: "commit_unproven" });

    // 2. Nothing put and no proof at all (the interim "UCX offered, so trust it" rule is gone).
    await h.alloc("no-proof", "poison-key");
    expect(await refusal(h.c.receiver.commit({ requestId: "no-proof" }, T))).toEqual({ code: "FAILED_PRECONDITION", reason: "commit_unproven" });

    // 3. Other bytes put than the checksum names (half of the chunk, the rest stale).
    const slot = await h.alloc("wrong-bytes", "poison-key");
    await h.put("wrong-bytes", slot, data.subarray(0, CHUNK / 2));
    expect(await refusal(h.c.receiver.commit({ requestId: "wrong-bytes", proofs: [{ key: "poison-key", crc32: chunkCrc32(data) }] }, T))).toEqual({
      code: "FAILED_PRECONDITION",
      reason: "commit_unproven",
    });

    // 4. A proof for another key does not prove this one.
    const slot4 = await h.alloc("foreign-proof", "poison-key");
    await h.put("foreign-proof", slot4, data);
    expect(await refusal(h.c.receiver.commit({ requestId: "foreign-proof", proofs: [{ key: "other-key", crc32: chunkCrc32(data) }] }, T))).toEqual({
      code: "FAILED_PRECONDITION",
      reason: "commit_unproven",
    });

    const sums = await h.c.inspect.checksumKeys({ keys: ["poison-key"] }, T);
    expect(sums.checksums[0]!.state).toBe("missing");
    const s = await h.c.waitForStats(atBaseline);
    expect(atBaseline(s)).toBe(true);
    expect(s.slotsReady).toBe(0);

    // The honest path: the bytes put and their checksum named: READY, and its bytes are the chunk's.
    const ok = await h.alloc("honest", "poison-key");
    await h.put("honest", ok, data);
    const committed = await h.c.receiver.commit({ requestId: "honest", proofs: [{ key: "poison-key", crc32: chunkCrc32(data) }] }, T);
    expect(committed.keysReady).toBe(1);
    await h.c.receiver.release({ requestId: "honest" }, T);
    const after = await h.c.inspect.checksumKeys({ keys: ["poison-key"] }, T);
    expect(after.checksums[0]!.state).toBe("ready");
  });

  it("a KvSender over UCX proves each chunk it put: its pushes commit, byte-exact, with dedup", async () => {
    const d = await startDecodeProcess(["--transport", "ucx"], ENV);
    closers.push(async () => void (await d.proc.stop()));
    const transport = UcxSenderTransport.create({ ucxConfig: { TLS: ENV.UCX_TLS } });
    closers.push(() => transport.close());
    const sender = new KvSender({ fingerprint: "", transports: { ucx: transport }, preference: "ucx" });
    closers.push(() => sender.close());
    const shared = { key: "shared-0", data: randomBytes(CHUNK) };
    const a = await sender.push(d.grpc, "ucx-a", [shared, { key: "a-1", data: randomBytes(CHUNK - 7) }]);
    const b = await sender.push(d.grpc, "ucx-b", [shared, { key: "b-1", data: randomBytes(3) }]);
    expect(a.transport).toBe("ucx");
    expect(a.commit).toEqual({ ready: 2, pending: 0, failed: 0 });
    expect(b.deduped).toBe(1);
    expect(b.commit).toEqual({ ready: 2, pending: 0, failed: 0 });
    const c = nodeClients(d.grpc);
    closers.push(() => c.close());
    const T = { timeoutMs: c.timeoutMs };
    const sums = await c.inspect.checksumKeys({ keys: ["shared-0"] }, T);
    expect(sums.checksums[0]!.state).toBe("ready");
    await c.receiver.release({ requestId: "ucx-a" }, T);
    await c.receiver.release({ requestId: "ucx-b" }, T);
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });
});
