// The data-plane commit over real UCX (UCX_TLS=posix,cma,self): a real `decode --no-engine` process
// and the real KvSender in this process. A request's writes land by copies into the node's mapped pool
// and a COMMIT active message commits it (no gRPC Commit), byte-exact; a COMMIT naming another
// sender's request (a slot and token not of that request) is refused PERMISSION_DENIED and leaves it
// to its owner; a sender killed right after its COMMIT leaves the request committed or aborted, never
// half, and the pool back at baseline; a protocol-1 sender still commits over gRPC through UCX.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { isKvbridgeError, KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { chunkCrc32 } from "../../src/transfer/commit-proof.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { DataPlaneCommitError } from "../../src/transport/transport.js";
import { ucxAvailability, UcxSenderTransport, type UcxSenderChannel } from "../../src/transport/ucx/index.js";
import { PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";
import { spawnScript } from "../support/processes.js";

const ucx = ucxAvailability();
const ENV = { UCX_TLS: "posix,cma,self" };
const SLOT = 256 * 1024;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function node(extra: string[] = []): Promise<{ d: DecodeProcess; c: NodeClients }> {
  const d = await startDecodeProcess(extra, ENV);
  closers.push(async () => void (await d.proc.stop()));
  const c = nodeClients(d.grpc);
  closers.push(() => c.close());
  return { d, c };
}

function sender(o: { protocol?: 1 } = {}): { kv: KvSender; transport: UcxSenderTransport } {
  const transport = UcxSenderTransport.create({ ucxConfig: { TLS: ENV.UCX_TLS } });
  const tcp = new TcpSenderTransport({ connections: 1 });
  const kv = new KvSender({ fingerprint: "", transports: { ucx: transport, tcp }, preference: "ucx", logger: silentLogger(), protocol: o.protocol ?? "auto" });
  closers.push(() => transport.close());
  closers.push(() => tcp.close());
  closers.push(() => kv.close());
  return { kv, transport };
}

function chunks(prefix: string, n: number, bytes = SLOT - 1000): PushChunk[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, data: randomBytes(bytes) }));
}

async function expectStored(c: NodeClients, pushed: PushChunk[]): Promise<void> {
  const sums = await c.inspect.checksumKeys({ keys: pushed.map((p) => p.key) }, { timeoutMs: c.timeoutMs });
  sums.checksums.forEach((s, i) => {
    expect(s.state, pushed[i]!.key).toBe("ready");
    expect(s.sha256, pushed[i]!.key).toBe(createHash("sha256").update(pushed[i]!.data).digest("hex"));
  });
}

describe.skipIf(!ucx.available)("UCX data-plane commit (UCX_TLS=posix,cma,self, a real decode process)", () => {
  it("a node offering only UCX (--transport ucx) negotiates the data-plane commit and takes COMMIT messages", async () => {
    const { d, c } = await node(["--transport", "ucx"]);
    const { kv } = sender();
    const cs = chunks("ucx-only", 3);
    const res = await kv.push(d.grpc, "ucx-only", cs);
    expect(kv.negotiated(d.grpc)?.dataPlaneCommit).toBe(true);
    expect([res.transport, res.commitVia]).toEqual(["ucx", "data_plane"]);
    await expectStored(c, cs);
    await c.receiver.release({ requestId: "ucx-only" }, { timeoutMs: c.timeoutMs });
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });

  it("commits requests with a COMMIT active message behind their copies: no gRPC Commit, byte-exact, then released to baseline", async () => {
    const { d, c } = await node();
    const { kv } = sender();
    const pushed: PushChunk[][] = [];
    for (let r = 0; r < 6; r++) {
      const cs = chunks(`happy-${r}`, 4);
      pushed.push(cs);
      const res = await kv.push(d.grpc, `happy-${r}`, cs);
      expect(res.transport).toBe("ucx");
      expect(res.commitVia).toBe("data_plane");
      expect(res.commit).toEqual({ ready: 4, pending: 0, failed: 0 });
    }
    expect(kv.negotiated(d.grpc)?.dataPlaneCommit).toBe(true);
    // Concurrent pushes share the channel and its COMMIT sequence numbers.
    const many = Array.from({ length: 8 }, (_, r) => chunks(`conc-${r}`, 3));
    const results = await Promise.all(many.map((cs, r) => kv.push(d.grpc, `conc-${r}`, cs)));
    for (const res of results) expect([res.transport, res.commitVia]).toEqual(["ucx", "data_plane"]);
    for (const cs of [...pushed, ...many]) await expectStored(c, cs);
    await c.receiver.release({ requestIds: [...pushed.map((_, r) => `happy-${r}`), ...many.map((_, r) => `conc-${r}`)] }, { timeoutMs: c.timeoutMs });
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });

  it("refuses a COMMIT for a request this sender did not allocate (PERMISSION_DENIED), which its owner then commits", async () => {
    const { d, c } = await node();
    const T = { timeoutMs: c.timeoutMs };
    const hello = await c.receiver.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["ucx"], senderId: "foreign", capabilities: ["data_plane_commit"] }, T);
    const offer = hello.offers.map(offerFromWire).find((o) => o.kind === "ucx")!;
    const alloc = async (requestId: string, key: string) => {
      const res = await c.receiver.alloc({ requestId, keys: [key], sizes: [1000], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
      return { slot: res.remoteIndexes[0]!, token: res.writeTokens[0]! };
    };
    // The victim's request, allocated by someone else; the foreign peer knows (or guesses) its id.
    const victim = await alloc("victim", "victim-key");
    const own = await alloc("foreign-own", "foreign-key");
    const transport = UcxSenderTransport.create({ ucxConfig: { TLS: ENV.UCX_TLS } });
    closers.push(() => transport.close());
    const ch = (await transport.connect(offer, new AbortController().signal)) as UcxSenderChannel;
    expect(ch.writeAndCommit).toBeDefined();
    const bytes = randomBytes(1000);
    const signal = new AbortController().signal;
    const refusedWith = async (p: Promise<unknown>) => {
      const err = await p.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(DataPlaneCommitError);
      return err as DataPlaneCommitError;
    };
    // 1. Its own slot and token, the victim's request id.
    const e1 = await refusedWith(ch.writeAndCommit!("victim", [{ slot: own.slot, poolOffset: own.slot * hello.slotBytes, token: own.token, data: bytes }], [{ key: "victim-key", crc32: chunkCrc32(bytes) }], signal));
    expect([e1.outcome, e1.code]).toEqual(["refused", "PERMISSION_DENIED"]);
    // 2. The victim's slot with a guessed token (the bytes land in the slot: one-sided puts cannot be stopped, which is why proofs exist).
    const e2 = await refusedWith(
      ch.writeAndCommit!("victim", [{ slot: victim.slot, poolOffset: victim.slot * hello.slotBytes, token: randomBytes(8), data: bytes }], [{ key: "victim-key", crc32: chunkCrc32(bytes) }], signal),
    );
    expect([e2.outcome, e2.code]).toEqual(["refused", "PERMISSION_DENIED"]);
    expect(ch.broken).toBe(false);
    // Still the victim's, still being written: nothing was committed for it.
    const st = await c.receiver.awaitReady({ requestId: "victim", timeoutMs: 1 }, T);
    expect(st.allReady).toBe(false);
    // The owner writes its own bytes and commits (here over gRPC with its proof): nothing of the foreign attempts stuck.
    const mine = randomBytes(1000);
    await ch.writeAll("victim", [{ slot: victim.slot, poolOffset: victim.slot * hello.slotBytes, token: victim.token, data: mine }], signal);
    const committed = await c.receiver.commit({ requestId: "victim", proofs: [{ key: "victim-key", crc32: chunkCrc32(mine) }] }, T);
    expect(committed.keysReady).toBe(1);
    // The foreign peer's own request commits on the data plane with its own token.
    const ok = await ch.writeAndCommit!("foreign-own", [{ slot: own.slot, poolOffset: own.slot * hello.slotBytes, token: own.token, data: bytes }], [{ key: "foreign-key", crc32: chunkCrc32(bytes) }], signal);
    expect(ok).toEqual({ ready: 1, pending: 0, failed: 0 });
    await c.receiver.release({ requestIds: ["victim", "foreign-own"] }, T);
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });

  it("a COMMIT whose proof does not match the slot is refused commit_unproven: nothing READY, the request ended", async () => {
    const { d, c } = await node(["--quarantine-ms", "200"]);
    const { kv } = sender();
    const cs = chunks("unproven", 2);
    const res = await kv.push(d.grpc, "unproven-ok", cs);
    expect(res.commitVia).toBe("data_plane");
    const T = { timeoutMs: c.timeoutMs };
    const hello = await c.receiver.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["ucx"], senderId: "liar", capabilities: ["data_plane_commit"] }, T);
    const a = await c.receiver.alloc({ requestId: "liar", keys: ["liar-key"], sizes: [1000], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
    const transport = UcxSenderTransport.create({ ucxConfig: { TLS: ENV.UCX_TLS } });
    closers.push(() => transport.close());
    const ch = (await transport.connect(hello.offers.map(offerFromWire).find((o) => o.kind === "ucx")!, new AbortController().signal)) as UcxSenderChannel;
    const data = randomBytes(1000);
    const err = await ch
      .writeAndCommit!("liar", [{ slot: a.remoteIndexes[0]!, poolOffset: a.remoteIndexes[0]! * hello.slotBytes, token: a.writeTokens[0]!, data }], [{ key: "liar-key", crc32: chunkCrc32(data) ^ 1 }], new AbortController().signal)
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(DataPlaneCommitError);
    expect([(err as DataPlaneCommitError).outcome, (err as KvbridgeError).code, (err as KvbridgeError).details.reason]).toEqual(["refused", "FAILED_PRECONDITION", "commit_unproven"]);
    const gone = await c.receiver.awaitReady({ requestId: "liar", timeoutMs: 1 }, T).then(() => null, (e: unknown) => e);
    expect(isKvbridgeError(gone) ? gone.code : gone).toBe("NOT_FOUND");
    await c.receiver.release({ requestIds: ["unproven-ok"] }, T);
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });

  it("a protocol-1 sender still pushes over UCX and commits with the gRPC Commit", async () => {
    const { d, c } = await node();
    const { kv } = sender({ protocol: 1 });
    const cs = chunks("p1", 3);
    const res = await kv.push(d.grpc, "p1", cs);
    expect([res.transport, res.commitVia]).toEqual(["ucx", "grpc"]);
    expect(kv.negotiated(d.grpc)).toEqual({ protocolVersion: 1, dataPlaneCommit: false });
    await expectStored(c, cs);
    await c.receiver.release({ requestIds: ["p1"] }, { timeoutMs: c.timeoutMs });
    expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
  });
});

describe.skipIf(!ucx.available)("a UCX sender killed around its COMMIT (UCX_TLS=posix,cma,self, real processes)", () => {
  it("leaves each request committed whole or ended with nothing READY; the pool returns to baseline and the node keeps taking UCX commits", async () => {
    const LEASE_MS = 1_500;
    const { d, c } = await node(["--lease-ms", String(LEASE_MS), "--hold-ms", "2000", "--quarantine-ms", "200"]);
    const T = { timeoutMs: c.timeoutMs };
    const outcomes: string[] = [];
    // 0: SIGKILL in the same turn as the COMMIT's hand-over (before or just after it left); more
    // turns: while it travels, is committed, or its answer is on the way.
    for (const [i, turns] of [0, 1, 3, 8, 20].entries()) {
      const requestId = `killed-${i}`;
      const child = spawnScript("test/support/ucx-commit-kill-sender.ts", [d.grpc, requestId, String(turns), JSON.stringify({ TLS: ENV.UCX_TLS })], ENV);
      await child.waitForLine(/ALLOCATED/, 60_000);
      await new Promise<void>((resolve) => child.child.once("exit", () => resolve()));
      // Committed: every key READY (then the hold gives its pins back). Not: the lease ends it and nothing of it is READY.
      const st = await c.receiver.awaitReady({ requestId, timeoutMs: 1 }, T).then(
        (r) => r,
        (e: unknown) => (isKvbridgeError(e) ? e : Promise.reject(e)),
      );
      if (st instanceof KvbridgeError) {
        expect(st.code).toBe("NOT_FOUND");
        outcomes.push("ended");
      } else {
        const readyKeys = st.states.filter((s) => s === "KEY_STATE_READY").length;
        expect([0, 4], `request ${requestId}: ${st.states.join(",")}`).toContain(readyKeys);
        outcomes.push(readyKeys === 4 ? "committed" : "writing");
        const sums = await c.inspect.checksumKeys({ keys: Array.from({ length: 4 }, (_, k) => `${requestId}-k${k}`) }, T);
        const states = new Set(sums.checksums.map((s) => s.state));
        expect(states.size, `all or none of ${requestId}'s keys READY`).toBe(1);
      }
    }
    process.stderr.write(`ucx commit kills: ${outcomes.join(", ")}\n`);
    expect(atBaseline(await c.waitForStats(atBaseline, 20_000))).toBe(true);
    // The node still takes UCX commits from a new sender.
    const { kv } = sender();
    const cs = chunks("after-kills", 3);
    const res = await kv.push(d.grpc, "after-kills", cs);
    expect([res.transport, res.commitVia]).toEqual(["ucx", "data_plane"]);
    await expectStored(c, cs);
  });
});
