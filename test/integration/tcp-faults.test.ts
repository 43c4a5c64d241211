// TCP data plane under faults, over real loopback sockets: garbage and truncated streams, torn and
// stalled connections, peers that never answer, and cancellation.

import net from "node:net";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateHeapPool, type PoolMemory } from "../../src/memory/pool-memory.js";
import { FRAME_MAGIC, FrameType, encodeWriteHeader } from "../../src/transport/tcp/tcp-frame.js";
import { TcpReceiverDataPlane, type TcpReceiverOptions } from "../../src/transport/tcp/tcp-receiver.js";
import { TcpSenderTransport, type TcpSenderOptions } from "../../src/transport/tcp/tcp-sender.js";
import type { SlotWrite } from "../../src/transport/transport.js";
import { TableWriteGate } from "../support/tcp-gate.js";
import { RawPeer } from "../support/tcp-raw-peer.js";

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function receiverFixture(opts: { slots?: number; slotBytes?: number } & Partial<TcpReceiverOptions> = {}) {
  const memory = allocateHeapPool({ slots: opts.slots ?? 4, slotBytes: opts.slotBytes ?? 64 * 1024 });
  closers.push(() => memory.close());
  const gate = new TableWriteGate(memory);
  const receiver = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, ...opts, memory, gate });
  closers.push(() => receiver.close());
  const offer = receiver.offer();
  if (offer.kind !== "tcp") throw new Error("a TCP receiver offers tcp");
  return { memory, gate, receiver, port: offer.port };
}

function sender(opts: TcpSenderOptions = {}): TcpSenderTransport {
  const t = new TcpSenderTransport(opts);
  closers.push(() => t.close());
  return t;
}

async function rejection(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvbridgeError);
  return err as KvbridgeError;
}

/** A valid WRITE frame (header + id + payload) for a slot of `gate`. */
function frame(requestId: string, slot: number, token: Buffer, payload: Buffer, seq = 0, offset = 0): Buffer[] {
  return [encodeWriteHeader(Buffer.from(requestId), seq, slot, offset, payload.length, token), payload];
}

/** The server keeps serving: a fresh sender still writes byte-exact. */
async function expectStillServing(memory: PoolMemory, gate: TableWriteGate, port: number, slot: number): Promise<void> {
  const channel = await sender().connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
  const data = randomBytes(1000);
  const token = gate.allocate(`after-${slot}`, slot, data.length);
  await channel.writeAll(`after-${slot}`, [{ slot, poolOffset: 0, token, data }], AbortSignal.timeout(5_000));
  expect(memory.slotView(slot, data.length).equals(data)).toBe(true);
}

describe("receiver: malformed streams close only their own connection", () => {
  it("garbage bytes get a CLOSE reply and a closed connection; the server keeps serving", async () => {
    const { memory, gate, port } = await receiverFixture();
    const peer = await RawPeer.connect(port);
    peer.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    const [close] = await peer.waitForReplies(1);
    expect(close).toMatchObject({ type: FrameType.CLOSE, code: "INVALID_ARGUMENT" });
    expect(close!.type === FrameType.CLOSE && close!.message).toMatch(/bad frame magic/);
    await peer.waitClosed();
    expect(gate.lost).toEqual([]); // nothing was admitted on it, so no request to report
    await expectStillServing(memory, gate, port, 3);
  });

  it("an unknown protocol version is refused with INCOMPATIBLE", async () => {
    const { port } = await receiverFixture();
    const peer = await RawPeer.connect(port);
    const header = encodeWriteHeader(Buffer.from("r"), 0, 0, 0, 0, Buffer.alloc(8));
    header.writeUInt8(9, 4);
    peer.send(header);
    const [close] = await peer.waitForReplies(1);
    expect(close).toMatchObject({ type: FrameType.CLOSE, code: "INCOMPATIBLE" });
    expect(close!.type === FrameType.CLOSE && close!.message).toMatch(/version 9 is not supported; this receiver speaks 1/);
    await peer.waitClosed();
  });

  it("an oversized payload length after a good frame closes the connection and reports the earlier request", async () => {
    const { memory, gate, port } = await receiverFixture({ maxFrameBytes: 32 * 1024 });
    const token = gate.allocate("r1", 0, 1000);
    const peer = await RawPeer.connect(port);
    const payload = randomBytes(1000);
    peer.send(...frame("r1", 0, token, payload, 7));
    peer.send(encodeWriteHeader(Buffer.from("r1"), 8, 0, 0, 32 * 1024 + 1, token));
    const replies = await peer.waitForReplies(2);
    expect(replies[0]).toEqual({ type: FrameType.ACK, seq: 7 });
    expect(replies[1]).toMatchObject({ type: FrameType.CLOSE, code: "INVALID_ARGUMENT" });
    expect(replies[1]!.type === FrameType.CLOSE && replies[1]!.message).toMatch(/32769 bytes exceeds this receiver's limit of 32768/);
    await peer.waitClosed();
    const [lost] = await gate.waitForLost(1);
    expect(lost).toMatchObject({ ids: ["r1"] });
    expect(lost!.reason).toMatch(/protocol error/);
    expect(memory.slotView(0, 1000).equals(payload)).toBe(true);
    expect(gate.allocation(0)!.aborted).toBe(false); // r1 had finished its bytes: the gate keeps it
    await expectStillServing(memory, gate, port, 3);
  });

  it("an oversized request id length closes the connection", async () => {
    const { port } = await receiverFixture();
    const peer = await RawPeer.connect(port);
    const header = encodeWriteHeader(Buffer.from("r"), 0, 0, 0, 0, Buffer.alloc(8));
    header.writeUInt16LE(300, 6);
    peer.send(header);
    const [close] = await peer.waitForReplies(1);
    expect(close!.type === FrameType.CLOSE && close!.message).toMatch(/request id length 300 is outside 1\.\.256/);
    await peer.waitClosed();
  });

  it("a refused frame's payload is skipped, even when it looks like a frame, and the next frame is served", async () => {
    const { memory, gate, port } = await receiverFixture();
    const token = gate.allocate("r", 1, 100);
    const peer = await RawPeer.connect(port);
    // The refused payload is itself a well-formed frame for slot 1: it must not be parsed.
    const decoy = Buffer.concat(frame("r", 1, token, Buffer.alloc(10, 0xee), 99));
    peer.send(...frame("r", 1, Buffer.alloc(8, 1), decoy, 1));
    const good = randomBytes(100);
    peer.send(...frame("r", 1, token, good, 2));
    const replies = await peer.waitForReplies(2);
    expect(replies[0]).toMatchObject({ type: FrameType.NACK, seq: 1, code: "PERMISSION_DENIED" });
    expect(replies[1]).toEqual({ type: FrameType.ACK, seq: 2 });
    expect(memory.slotView(1, 100).equals(good)).toBe(true);
    peer.destroy();
  });
});

describe("receiver: torn and stalled connections report their requests", () => {
  it("a frame truncated by the sender closing reports the request, which the gate aborts", async () => {
    const { gate, port } = await receiverFixture();
    const token = gate.allocate("t1", 2, 50_000);
    const peer = await RawPeer.connect(port);
    const [header, payload] = frame("t1", 2, token, randomBytes(50_000));
    peer.send(header!, payload!.subarray(0, 20_000));
    peer.socket.end();
    const [lost] = await gate.waitForLost(1);
    expect(lost).toMatchObject({ ids: ["t1"], reason: "connection closed by the sender" });
    expect(gate.allocation(2)!.aborted).toBe(true);
  });

  it("killing the connection mid-frame (RST) reports the request to connectionLost", async () => {
    const { gate, port } = await receiverFixture();
    const tokenA = gate.allocate("k1", 0, 40_000);
    const tokenB = gate.allocate("k2", 1, 10);
    const peer = await RawPeer.connect(port);
    peer.send(...frame("k2", 1, tokenB, randomBytes(10), 0));
    const [header, payload] = frame("k1", 0, tokenA, randomBytes(40_000), 1);
    peer.send(header!, payload!.subarray(0, 1234));
    await peer.waitForReplies(1); // k2's frame is in
    peer.socket.resetAndDestroy();
    const [lost] = await gate.waitForLost(1);
    expect(lost!.ids).toEqual(["k1", "k2"]);
    expect(gate.allocation(0)!.aborted).toBe(true);
    expect(gate.allocation(1)!.aborted).toBe(false);
  });

  it("request ids silent on a connection for forgetIdleMs are no longer reported when it ends", async () => {
    // Margins sized for a loaded 2-core CI machine: the burst of 1090 frames below must take well
    // under forgetIdleMs, and the first ten ids must sit idle well over it.
    const { gate, port } = await receiverFixture({ slots: 1100, slotBytes: 1, forgetIdleMs: 1_500 });
    const peer = await RawPeer.connect(port);
    const send = (from: number, to: number): void => {
      for (let i = from; i < to; i++) peer.send(...frame(`id-${i}`, i, gate.allocate(`id-${i}`, i, 1), Buffer.from([i & 0xff]), i));
    };
    send(0, 10);
    await peer.waitForReplies(1);
    await new Promise((r) => setTimeout(r, 2_000));
    // The table reaching 1024 ids triggers the sweep of ids idle for more than forgetIdleMs.
    send(10, 1100);
    while ((peer.replies.at(-1)?.seq ?? 0) < 1099) await peer.waitForReplies(peer.replies.length + 1);
    peer.socket.resetAndDestroy();
    const [lost] = await gate.waitForLost(1);
    expect(lost!.ids).toHaveLength(1090);
    expect(lost!.ids).not.toContain("id-0");
    expect(lost!.ids).toContain("id-10");
  });

  it("a sender that stalls mid-frame is cut off after stallTimeoutMs", async () => {
    const { gate, port, receiver } = await receiverFixture({ stallTimeoutMs: 200 });
    const token = gate.allocate("s1", 0, 5000);
    const peer = await RawPeer.connect(port);
    const [header, payload] = frame("s1", 0, token, randomBytes(5000));
    const started = Date.now();
    peer.send(header!, payload!.subarray(0, 100));
    await peer.waitClosed(3_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const [lost] = await gate.waitForLost(1);
    expect(lost!.reason).toMatch(/no bytes for 200 ms in the middle of a frame/);
    expect(receiver.connectionCount).toBe(0);
  });

  it("an idle connection between frames is kept open past stallTimeoutMs", async () => {
    const { gate, port, receiver } = await receiverFixture({ stallTimeoutMs: 100 });
    const peer = await RawPeer.connect(port);
    await new Promise((r) => setTimeout(r, 350));
    expect(receiver.connectionCount).toBe(1);
    const token = gate.allocate("i", 0, 10);
    peer.send(...frame("i", 0, token, randomBytes(10), 5));
    expect(await peer.waitForReplies(1)).toEqual([{ type: FrameType.ACK, seq: 5 }]);
    peer.destroy();
  });
});

/** A TCP server that accepts and then never reads nor answers. */
async function silentPeer(): Promise<{ port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port };
}

function writesFor(slots: number, bytes: number): SlotWrite[] {
  return Array.from({ length: slots }, (_, slot) => ({ slot, poolOffset: 0, token: Buffer.alloc(8), data: Buffer.alloc(bytes, slot) }));
}

describe("sender: bounded waits and cancellation", () => {
  it("a peer that accepts and never answers fails writeAll with DEADLINE_EXCEEDED within the ack deadline", async () => {
    const { port } = await silentPeer();
    const channel = await sender({ ackTimeoutMs: 300, connections: 2 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const started = Date.now();
    const small = await rejection(channel.writeAll("q", writesFor(1, 1000), AbortSignal.timeout(30_000)));
    const elapsed = Date.now() - started;
    expect(small.code).toBe("DEADLINE_EXCEEDED");
    expect(small.message).toMatch(/no acknowledgement from tcp:\/\/127\.0\.0\.1:\d+ for 300 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2_000);
    expect(channel.broken).toBe(true);
  });

  it("a peer that stops reading (full socket buffers) fails writeAll within the ack deadline", async () => {
    const { port } = await silentPeer();
    const channel = await sender({ ackTimeoutMs: 400 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const started = Date.now();
    const err = await rejection(channel.writeAll("q", writesFor(8, 4 * 1024 * 1024), AbortSignal.timeout(30_000)));
    expect(err.code).toBe("DEADLINE_EXCEEDED");
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it("cancelling a write to a peer that stopped reading settles CANCELLED once the socket lets go of the buffers", async () => {
    const { port } = await silentPeer();
    const channel = await sender({ ackTimeoutMs: 500, connections: 1 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const ac = new AbortController();
    const pending = channel.writeAll("c", writesFor(8, 4 * 1024 * 1024), ac.signal);
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    const err = await rejection(pending);
    expect(err.code).toBe("CANCELLED");
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it("signal abort mid-transfer rejects CANCELLED and the channel keeps working for the next request", async () => {
    const { memory, gate, port, receiver } = await receiverFixture({ slots: 5, slotBytes: 8 * 1024 * 1024 });
    const channel = await sender({ connections: 2 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const ac = new AbortController();
    gate.onWritten = () => ac.abort(); // abort as soon as the first frame is in memory
    const writes = [0, 1, 2, 3].map((slot) => ({
      slot,
      poolOffset: 0,
      token: gate.allocate("cancel-me", slot),
      data: Buffer.alloc(8 * 1024 * 1024, 0xab),
    }));
    const err = await rejection(channel.writeAll("cancel-me", writes, ac.signal));
    expect(err.code).toBe("CANCELLED");
    gate.onWritten = null;
    const total = [0, 1, 2, 3].reduce((n, s) => n + gate.allocation(s)!.written, 0);
    expect(total).toBeLessThan(32 * 1024 * 1024); // the rest was never sent

    const data = randomBytes(3 * 1024 * 1024 + 5);
    const token = gate.allocate("next", 4);
    await channel.writeAll("next", [{ slot: 4, poolOffset: 0, token, data }], AbortSignal.timeout(10_000));
    expect(memory.slotView(4, data.length).equals(data)).toBe(true);
    expect(channel.broken).toBe(false);
    expect(receiver.connectionCount).toBe(2);
    expect(gate.lost).toEqual([]);
  });

  it("an already-aborted signal rejects CANCELLED without sending", async () => {
    const { gate, port } = await receiverFixture();
    const channel = await sender().connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const token = gate.allocate("pre", 0, 10);
    const err = await rejection(channel.writeAll("pre", [{ slot: 0, poolOffset: 0, token, data: Buffer.alloc(10) }], AbortSignal.abort()));
    expect(err.code).toBe("CANCELLED");
    expect(gate.allocation(0)!.written).toBe(0);
  });

  it("a frame larger than the receiver's limit comes back as the receiver's CLOSE reason", async () => {
    const { gate, port } = await receiverFixture({ maxFrameBytes: 4096 });
    const channel = await sender({ frameBytes: 8192, connections: 1 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const token = gate.allocate("big", 0, 10_000);
    const err = await rejection(channel.writeAll("big", [{ slot: 0, poolOffset: 0, token, data: Buffer.alloc(10_000) }], AbortSignal.timeout(5_000)));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/exceeds this receiver's limit of 4096; split writes into smaller frames/);
    expect(channel.broken).toBe(true);
  });

  it("a peer answering with garbage breaks the channel with a clear error", async () => {
    const server = net.createServer((s) => {
      s.on("error", () => {});
      s.once("data", () => s.write(Buffer.from("HTTP/1.1 400 Bad Request\r\n\r\n")));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as net.AddressInfo).port;
    const channel = await sender({ connections: 1 }).connect({ kind: "tcp", host: "127.0.0.1", port }, AbortSignal.timeout(5_000));
    const err = await rejection(channel.writeAll("g", writesFor(1, 10), AbortSignal.timeout(5_000)));
    expect(err.code).toBe("INVALID_ARGUMENT");
    expect(err.message).toMatch(/bad reply magic .*not a kvbridge TCP receiver/);
    expect(channel.broken).toBe(true);
    await channel.close();
  });
});

// The magic is part of the documented wire format (docs/protocol.md): "KVBT".
it("frames start with the documented magic", () => {
  expect(FRAME_MAGIC.toString("latin1")).toBe("KVBT");
});
