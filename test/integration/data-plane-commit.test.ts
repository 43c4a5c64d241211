// The data-plane commit through real sockets: a real KvReceiver behind a real gRPC server and TCP data
// plane, the real KvSender (or a hand-driven raw TCP peer). A request's Commit travels as a COMMIT
// frame behind its last write: one gRPC call (Alloc) per request; a COMMIT frame for a request that did
// not write on the connection is refused with a NACK; a connection torn right after its COMMIT leaves
// the request committed or aborted, never half; a protocol-1 sender (and a protocol-1 receiver) still
// work over the gRPC Commit; Release takes several request ids; Hello says which data planes are not
// offered and why.

import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import { silentLogger } from "../../src/observability/logger.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startGrpcServer, type NodeGrpcServer } from "../../src/services/grpc-server.js";
import { receiverHandlers } from "../../src/services/receiver-service.js";
import { unaryHandler } from "../../src/services/unary-handler.js";
import { KvReceiver } from "../../src/transfer/receiver.js";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { encodeCommitFrame, encodeProofs } from "../../src/transport/tcp/tcp-commit-frame.js";
import { FrameType, encodeWriteHeader, type ReplyFrame } from "../../src/transport/tcp/tcp-frame.js";
import { TcpReceiverDataPlane } from "../../src/transport/tcp/tcp-receiver.js";
import { TcpSenderTransport, type TcpSenderOptions } from "../../src/transport/tcp/tcp-sender.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { RawPeer } from "../support/tcp-raw-peer.js";

const T = { timeoutMs: 5_000 };
const SLOT = 64 * 1024;

interface Node {
  rx: KvReceiver;
  plane: TcpReceiverDataPlane;
  server: NodeGrpcServer;
  client: ReceiverClient;
  /** gRPC calls handled, by method. */
  calls: Map<string, number>;
}

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

/** A decode node's receiver; `protocol1` makes its Hello behave like a node of protocol 1. */
async function startNode(o: { leaseMs?: number; protocol1?: boolean } = {}): Promise<Node> {
  const memory = allocateHeapPool({ slots: 64, slotBytes: SLOT });
  closers.push(() => memory.close());
  const rx = new KvReceiver({ memory, leaseMs: o.leaseMs ?? 60_000, quarantineMs: 0, fingerprint: "", nodeId: "rx-dpc", logger: silentLogger() });
  closers.push(() => rx.close());
  const plane = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, memory, gate: rx });
  closers.push(() => plane.close());
  rx.setOffers([plane.offer()], [{ transport: "ucx", reason: "ucx_not_direct", message: "no UCX transport here can put into the pool (tcp); the TCP data plane is used instead" }]);
  const handlers = receiverHandlers(rx);
  const calls = new Map<string, number>();
  const counted = Object.fromEntries(
    Object.entries(handlers).map(([name, h]) => [
      name,
      (call: never, callback: never) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        (h as (c: never, cb: never) => void)(call, callback);
      },
    ]),
  ) as typeof handlers;
  if (o.protocol1) {
    // What a protocol-1 node answers: 1 only, refusing 2 by name, and none of 2's fields.
    const hello = counted.Hello;
    const refuse = unaryHandler((req: { protocolVersion: number }) => {
      throw new KvbridgeError("INCOMPATIBLE", `protocol version mismatch: sender speaks ${req.protocolVersion}, this node speaks 1`, { details: { reason: "protocol_mismatch" } });
    });
    counted.Hello = (call, callback) => {
      if (call.request.protocolVersion === 1) return hello(call, callback);
      calls.set("HelloRefused", (calls.get("HelloRefused") ?? 0) + 1);
      refuse(call, callback);
    };
  }
  const server = await startGrpcServer(parseHostPort("127.0.0.1:0", "listen"), [
    { name: "kvbridge.v1.KvReceiver", definition: kvbridgeV1().KvReceiver.service, implementation: counted },
  ]);
  server.setServing("SERVING");
  closers.push(() => server.close(100));
  const client = new ReceiverClient(server.address);
  closers.push(() => client.close());
  return { rx, plane, server, client, calls };
}

function dataPort(n: Node): number {
  const offer = n.plane.offer();
  if (offer.kind !== "tcp") throw new Error("not a tcp offer");
  return offer.port;
}

function senderFor(o: { protocol?: 1; tcp?: TcpSenderOptions } = {}): KvSender {
  const tcp = new TcpSenderTransport(o.tcp ?? { connections: 2 });
  const sender = new KvSender({ fingerprint: "", transports: { tcp }, logger: silentLogger(), protocol: o.protocol ?? "auto" });
  closers.push(() => tcp.close());
  closers.push(() => sender.close());
  return sender;
}

function chunks(prefix: string, n: number, bytes = SLOT): PushChunk[] {
  return Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, data: randomBytes(bytes) }));
}

function expectStored(rx: KvReceiver, requestId: string, pushed: PushChunk[]): void {
  const views = rx.chunkViews(requestId);
  expect(views.length).toBe(pushed.length);
  pushed.forEach((c, i) => expect(views[i]!.equals(c.data), `chunk ${c.key}`).toBe(true));
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

/** Allocates one request by gRPC and returns its slots and tokens, for a raw peer to write. */
async function allocRaw(n: Node, requestId: string, keys: string[], size = 1000): Promise<Array<{ slot: number; token: Buffer }>> {
  const hello = await n.client.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "" }, T);
  const res = await n.client.alloc({ requestId, keys, sizes: keys.map(() => size), isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
  return res.remoteIndexes.map((slot, i) => ({ slot, token: res.writeTokens[i]! }));
}

function writeFrame(requestId: string, seq: number, slot: number, token: Buffer, payload: Buffer): Buffer[] {
  return [encodeWriteHeader(Buffer.from(requestId), seq, slot, 0, payload.length, token), payload];
}

function commitFrame(requestId: string, seq: number, proofs: Array<{ key: string; crc32: number }> = []): Buffer {
  return encodeCommitFrame(Buffer.from(requestId), seq, proofs.length, encodeProofs(proofs));
}

function last(replies: ReplyFrame[]): ReplyFrame {
  return replies[replies.length - 1]!;
}

describe("data-plane commit (TCP COMMIT frame)", () => {
  it.each<[string, TcpSenderOptions]>([
    ["every frame on one connection (COMMIT pipelined behind them)", { connections: 2, placement: "pin" }],
    ["frames spread over two connections (COMMIT after their ACKs)", { connections: 2, placement: "spread", frameBytes: 16 * 1024 }],
  ])("commits a pushed request behind its last write with no gRPC Commit: %s", async (_name, tcp) => {
    const n = await startNode();
    const sender = senderFor({ tcp });
    for (let r = 0; r < 3; r++) {
      const pushed = chunks(`k${r}`, 16);
      const res = await sender.push(n.server.address, `req-${r}`, pushed);
      expect(res).toMatchObject({ commitVia: "data_plane", transport: "tcp", commit: { ready: 16, pending: 0, failed: 0 } });
      expect(n.rx.requestPhase(`req-${r}`)).toBe("committed");
      expectStored(n.rx, `req-${r}`, pushed);
    }
    expect(n.calls.get("Commit") ?? 0).toBe(0);
    expect(n.calls.get("Alloc")).toBe(3);
    expect(n.calls.get("Hello")).toBe(1);
    expect(n.rx.commitsOnDataPlane).toBe(3);
    // One batched Release consumes all three.
    const rel = await n.client.release({ requestIds: ["req-0", "req-1", "req-2", "never-was"] }, T);
    expect(rel).toMatchObject({ released: 3, pinsReleased: 48 });
    expect(rel.failures).toEqual([expect.objectContaining({ requestId: "never-was", code: "NOT_FOUND" })]);
    expect(n.rx.stats().activeRequests).toBe(0);
    n.rx.checkInvariants();
  });

  it("a request whose chunks are all deduped commits over gRPC; a partly deduped one on the data plane", async () => {
    const n = await startNode();
    const sender = senderFor();
    const pushed = chunks("shared", 4);
    expect((await sender.push(n.server.address, "first", pushed)).commitVia).toBe("data_plane");
    const again = await sender.push(n.server.address, "second", pushed);
    expect(again).toMatchObject({ commitVia: "grpc", deduped: 4, commit: { ready: 4 } });
    const mixed = await sender.push(n.server.address, "third", [...pushed.slice(0, 2), ...chunks("own", 2)]);
    expect(mixed).toMatchObject({ commitVia: "data_plane", deduped: 2, commit: { ready: 4 } });
    expect(n.calls.get("Commit")).toBe(1);
    n.rx.checkInvariants();
  });

  it("refuses with a NACK a COMMIT frame for a request unknown here or written by another connection; the victim is untouched", async () => {
    const n = await startNode();
    // The victim: allocated and fully written by its own connection, not yet committed.
    const [v] = await allocRaw(n, "victim", ["vk"]);
    const owner = await RawPeer.connect(dataPort(n));
    closers.push(() => void owner.socket.destroy());
    owner.send(...writeFrame("victim", 0, v!.slot, v!.token, randomBytes(1000)));
    await owner.waitForReplies(1);
    const intruder = await RawPeer.connect(dataPort(n));
    closers.push(() => void intruder.socket.destroy());
    intruder.send(commitFrame("victim", 0), commitFrame("nobody", 1));
    const replies = await intruder.waitForReplies(2);
    for (const [i, r] of replies.entries()) {
      expect(r).toMatchObject({ type: FrameType.NACK, seq: i, code: "PERMISSION_DENIED" });
      expect((r as { message: string }).message).toMatch(/no frame of this request was admitted on this connection/);
    }
    // The intruder's connection going away does not abort what it named.
    intruder.socket.destroy();
    await intruder.closed;
    expect(n.rx.requestPhase("victim")).toBe("allocating");
    // The owner's own COMMIT commits it.
    owner.send(commitFrame("victim", 1));
    const answer = last(await owner.waitForReplies(2));
    expect(answer).toEqual({ type: FrameType.COMMIT_ACK, seq: 1, ready: 1, pending: 0, failed: 0 });
    expect(n.rx.requestPhase("victim")).toBe("committed");
    expect(n.calls.get("Commit") ?? 0).toBe(0);
    n.rx.checkInvariants();
  });

  it("answers a short or proofless COMMIT as the gRPC Commit would: NACK with code and reason, the request ended", async () => {
    const n = await startNode();
    const [a, b] = await allocRaw(n, "short", ["s0", "s1"]);
    const peer = await RawPeer.connect(dataPort(n));
    closers.push(() => void peer.socket.destroy());
    // Chunk s0 complete, s1 half written, and a proof for s1 that its slot does not match.
    peer.send(...writeFrame("short", 0, a!.slot, a!.token, randomBytes(1000)), ...writeFrame("short", 1, b!.slot, b!.token, randomBytes(500)));
    peer.send(commitFrame("short", 2, [{ key: "s1", crc32: 12345 }]));
    const answer = last(await peer.waitForReplies(2));
    expect(answer).toMatchObject({ type: FrameType.NACK, seq: 2, code: "FAILED_PRECONDITION", reason: "commit_unproven" });
    expect(n.rx.hasRequest("short")).toBe(false);
    // Its late gRPC Commit hears the same.
    expect(await refusal(n.client.commit({ requestId: "short" }, T))).toMatchObject({ code: "FAILED_PRECONDITION", details: { reason: "commit_unproven" } });
    // A malformed proofs section is a NACK (the frame's bounds are known), the connection stays.
    const [c] = await allocRaw(n, "bad-proofs", ["bp"]);
    peer.send(...writeFrame("bad-proofs", 3, c!.slot, c!.token, randomBytes(1000)));
    const bad = commitFrame("bad-proofs", 4, [{ key: "bp", crc32: 1 }]);
    bad.writeUInt32LE(2, 12); // claims two proofs, carries one
    peer.send(bad);
    expect(last(await peer.waitForReplies(4))).toMatchObject({ type: FrameType.NACK, seq: 4, code: "INVALID_ARGUMENT", reason: "proof_invalid" });
    peer.send(commitFrame("bad-proofs", 5));
    expect(last(await peer.waitForReplies(5))).toMatchObject({ type: FrameType.COMMIT_ACK, seq: 5, ready: 1 });
    n.rx.checkInvariants();
  });

  it("a connection torn right after (or inside) its COMMIT frame leaves the request committed or aborted, never half", async () => {
    const n = await startNode();
    const outcomes = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const id = `torn-${i}`;
      const slots = await allocRaw(n, id, [`t${i}-0`, `t${i}-1`]);
      const peer = await RawPeer.connect(dataPort(n));
      slots.forEach((s, j) => peer.send(...writeFrame(id, j, s.slot, s.token, randomBytes(1000))));
      const commit = commitFrame(id, 2);
      // Cut anywhere from nothing of the COMMIT frame to all of it, then tear the connection.
      const cut = i % 4 === 3 ? commit.length : Math.floor((commit.length * (i % 4)) / 3);
      await new Promise<void>((resolve) => peer.socket.write(commit.subarray(0, cut), () => resolve()));
      peer.socket.destroy();
      await peer.closed;
      // The receiver learns of the close asynchronously: wait until the request settled one way.
      for (let t = 0; t < 200 && n.rx.requestPhase(id) === "allocating"; t++) await new Promise((r) => setTimeout(r, 5));
      const phase = n.rx.requestPhase(id);
      if (phase === "committed") {
        expect(cut).toBe(commit.length);
        expect(n.rx.keyStates(id).allReady).toBe(true);
        outcomes.add("committed");
      } else {
        expect(phase).toBeUndefined();
        const late = await refusal(n.client.commit({ requestId: id }, T));
        expect(late.code).toBe("NOT_FOUND");
        expect(late.message).toMatch(/data connection lost/);
        outcomes.add("aborted");
      }
      n.rx.checkInvariants();
    }
    expect(outcomes.has("aborted")).toBe(true);
  });

  it("a protocol-1 sender against this receiver: Hello answered in version 1 without capabilities, Commit over gRPC", async () => {
    const n = await startNode();
    const hello1 = await n.client.hello({ protocolVersion: 1, fingerprint: "", capabilities: ["data_plane_commit"] }, T);
    expect(hello1).toMatchObject({ protocolVersion: 1, capabilities: [], notOffered: [] });
    const hello2 = await n.client.hello({ protocolVersion: 2, fingerprint: "", capabilities: ["data_plane_commit", "from_the_future"] }, T);
    expect(hello2).toMatchObject({ protocolVersion: 2, capabilities: ["data_plane_commit"] });
    const sender = senderFor({ protocol: 1 });
    const pushed = chunks("v1", 8);
    const res = await sender.push(n.server.address, "v1-req", pushed);
    expect(res).toMatchObject({ commitVia: "grpc", commit: { ready: 8 } });
    expect(n.calls.get("Commit")).toBe(1);
    expect(n.rx.commitsOnDataPlane).toBe(0);
    expectStored(n.rx, "v1-req", pushed);
    // Release of one id, as protocol 1 sends it.
    expect(await n.client.release({ requestId: "v1-req" }, T)).toMatchObject({ pinsReleased: 8, released: 1 });
  });

  it("a protocol-2 sender against a protocol-1 receiver speaks 1 and commits over gRPC", async () => {
    const n = await startNode({ protocol1: true });
    const sender = senderFor();
    const res = await sender.push(n.server.address, "to-old", chunks("old", 4));
    expect(res).toMatchObject({ commitVia: "grpc", commit: { ready: 4 } });
    expect(n.calls.get("HelloRefused")).toBe(1);
    expect(n.calls.get("Hello")).toBe(1);
    expect(n.calls.get("Commit")).toBe(1);
  });

  it("Hello says which data planes are not offered and why; a sender forcing one hears the reason", async () => {
    const n = await startNode();
    const hello = await n.client.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["ucx"] }, T);
    expect(hello.offers).toEqual([]);
    expect(hello.notOffered).toEqual([
      { transport: "ucx", reason: "ucx_not_direct", message: expect.stringMatching(/TCP data plane is used instead/) },
      { transport: "tcp", reason: "not_requested", message: "the sender did not list tcp among its transports" },
    ]);
  });
});
