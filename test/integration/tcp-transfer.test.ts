// TCP data plane over real loopback sockets: byte-exact placement of many concurrent requests, and
// refusal of frames that claim a slot they were not given.

import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateHeapPool, type PoolMemory } from "../../src/memory/pool-memory.js";
import { TcpReceiverDataPlane } from "../../src/transport/tcp/tcp-receiver.js";
import type { TcpReceiveMode } from "../../src/transport/tcp/tcp-receiver-connection.js";
import { TcpSenderTransport, type TcpSenderOptions } from "../../src/transport/tcp/tcp-sender.js";
import type { SlotWrite } from "../../src/transport/transport.js";
import { TableWriteGate } from "../support/tcp-gate.js";

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

async function setup(opts: { slots: number; slotBytes: number; mode?: TcpReceiveMode; sender?: TcpSenderOptions }) {
  const memory = allocateHeapPool({ slots: opts.slots, slotBytes: opts.slotBytes });
  closers.push(() => memory.close());
  const gate = new TableWriteGate(memory);
  const receiver = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, memory, gate, receiveMode: opts.mode });
  closers.push(() => receiver.close());
  const transport = new TcpSenderTransport(opts.sender);
  closers.push(() => transport.close());
  const channel = await transport.connect(receiver.offer(), AbortSignal.timeout(5_000));
  return { memory, gate, receiver, transport, channel };
}

function write(gate: TableWriteGate, memory: PoolMemory, requestId: string, slot: number, data: Buffer, allocLength = data.length): SlotWrite {
  const token = gate.allocate(requestId, slot, allocLength);
  return { slot, poolOffset: slot * memory.slotBytes, token, data };
}

/** Every byte of the pool: the written prefix of each slot equals its data, the rest is still zero. */
function expectPool(memory: PoolMemory, expected: Map<number, Buffer>): void {
  for (let slot = 0; slot < memory.slots; slot++) {
    const view = memory.slotView(slot);
    const data = expected.get(slot) ?? Buffer.alloc(0);
    expect(view.subarray(0, data.length).equals(data), `slot ${slot} content`).toBe(true);
    const tail = view.subarray(data.length);
    expect(tail.every((b) => b === 0), `slot ${slot} beyond the written bytes is untouched`).toBe(true);
  }
}

async function rejection(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvbridgeError);
  return err as KvbridgeError;
}

describe.each<TcpReceiveMode>(["zero-copy", "copy"])("TCP data plane (%s receive)", (mode) => {
  it("places many concurrent requests byte-exact, with odd chunk sizes and multi-read frames", async () => {
    const slotBytes = 3 * 1024 * 1024;
    const { memory, gate, channel, receiver } = await setup({
      slots: 12,
      slotBytes,
      mode,
      // 3 connections and a frame size that divides no chunk: frames of one chunk land out of order.
      sender: { connections: 3, frameBytes: 300_001 },
    });
    const sizes = [1, 7, 65_537, 300_001, 999_983, slotBytes - 3, 2_500_009, 123_457, 4_099, 1_048_576, 77, 1_777_777];
    const expected = new Map<number, Buffer>();
    const requests: Array<Promise<void>> = [];
    for (let r = 0; r < 6; r++) {
      const writes: SlotWrite[] = [];
      for (const slot of [2 * r, 2 * r + 1]) {
        const data = randomBytes(sizes[slot]!);
        expected.set(slot, data);
        writes.push(write(gate, memory, `req-${r}`, slot, data));
      }
      requests.push(channel.writeAll(`req-${r}`, writes, AbortSignal.timeout(20_000)));
    }
    await Promise.all(requests);
    expectPool(memory, expected);
    for (const [slot, data] of expected) expect(gate.allocation(slot)!.written).toBe(data.length);
    expect(gate.refusals).toEqual([]);
    expect(channel.broken).toBe(false);
    expect(receiver.connectionCount).toBe(3);
  });

  it("refuses wrong token, unallocated slot, out-of-bounds and another request's slot, and keeps the connection", async () => {
    const { memory, gate, channel, receiver } = await setup({ slots: 6, slotBytes: 64 * 1024, mode, sender: { connections: 1, frameBytes: 16 * 1024 } });
    const expected = new Map<number, Buffer>();
    const ok = (requestId: string, slot: number, bytes: number): Promise<void> => {
      const data = randomBytes(bytes);
      expected.set(slot, data);
      return channel.writeAll(requestId, [write(gate, memory, requestId, slot, data)], AbortSignal.timeout(5_000));
    };
    await ok("a", 0, 1000);

    const signal = AbortSignal.timeout(5_000);
    const tokenA1 = gate.allocate("a", 1, 5000);
    const wrongToken = await rejection(channel.writeAll("a", [{ slot: 1, poolOffset: 0, token: Buffer.alloc(8, 7), data: randomBytes(5000) }], signal));
    expect(wrongToken.code).toBe("PERMISSION_DENIED");
    expect(wrongToken.message).toMatch(/bad write token for slot 1/);

    const unallocated = await rejection(channel.writeAll("a", [{ slot: 5, poolOffset: 0, token: tokenA1, data: randomBytes(10) }], signal));
    expect(unallocated.code).toBe("NOT_FOUND");
    expect(unallocated.message).toMatch(/slot 5 is not allocated/);

    // 40 KiB into a 20 KiB allocation: the first frame fits, the second is outside and refused.
    const tokenA2 = gate.allocate("a", 2, 20 * 1024);
    const bounded = randomBytes(40 * 1024);
    const oob = await rejection(channel.writeAll("a", [{ slot: 2, poolOffset: 0, token: tokenA2, data: bounded }], signal));
    expect(oob.code).toBe("INVALID_ARGUMENT");
    expect(oob.message).toMatch(/outside the 20480-byte allocation/);
    expected.set(2, bounded.subarray(0, 16 * 1024));

    // Request b's own slot and token, claimed under request a's id.
    const tokenB = gate.allocate("b", 3, 3000);
    const stolen = await rejection(channel.writeAll("a", [{ slot: 3, poolOffset: 0, token: tokenB, data: randomBytes(3000) }], signal));
    expect(stolen.code).toBe("PERMISSION_DENIED");
    expect(stolen.message).toMatch(/slot 3 belongs to another request/);

    // Same connection, still serving valid frames.
    const dataB = randomBytes(3000);
    expected.set(3, dataB);
    await channel.writeAll("b", [{ slot: 3, poolOffset: 0, token: tokenB, data: dataB }], signal);
    await ok("c", 4, 60 * 1024);
    expectPool(memory, expected);
    expect(gate.refusals.map((r) => r.code)).toEqual(["PERMISSION_DENIED", "NOT_FOUND", "INVALID_ARGUMENT", "INVALID_ARGUMENT", "PERMISSION_DENIED"]);
    expect(channel.broken).toBe(false);
    expect(receiver.connectionCount).toBe(1);
    expect(gate.lost).toEqual([]);
  });
});

it("a zero-byte write and an empty writeAll resolve; invalid arguments are refused before sending", async () => {
  const { memory, gate, channel } = await setup({ slots: 2, slotBytes: 1024 });
  await channel.writeAll("z", [], AbortSignal.timeout(5_000));
  await channel.writeAll("z", [write(gate, memory, "z", 0, Buffer.alloc(0), 10)], AbortSignal.timeout(5_000));
  const badToken = await rejection(channel.writeAll("z", [{ slot: 1, poolOffset: 0, token: Buffer.alloc(3), data: Buffer.alloc(1) }], AbortSignal.timeout(5_000)));
  expect(badToken.code).toBe("INVALID_ARGUMENT");
  const longId = await rejection(channel.writeAll("x".repeat(257), [], AbortSignal.timeout(5_000)));
  expect(longId.code).toBe("INVALID_ARGUMENT");
  expect(channel.broken).toBe(false);
});

it("closing the receiver fails in-flight writes with UNAVAILABLE and marks the channel broken", async () => {
  const { memory, gate, channel, receiver } = await setup({ slots: 4, slotBytes: 8 * 1024 * 1024, sender: { connections: 2 } });
  const writes = [0, 1, 2, 3].map((slot) => write(gate, memory, "big", slot, Buffer.alloc(8 * 1024 * 1024, slot + 1)));
  // Close right after the first frame lands: the request is then mid-transfer on both connections.
  let closing: Promise<void> | null = null;
  gate.onWritten = () => {
    closing ??= receiver.close();
  };
  const inflight = channel.writeAll("big", writes, AbortSignal.timeout(10_000));
  const err = await rejection(inflight);
  expect(err.code).toBe("UNAVAILABLE");
  expect(channel.broken).toBe(true);
  const after = await rejection(channel.writeAll("next", [], AbortSignal.timeout(1_000)));
  expect(after.code).toBe("UNAVAILABLE");
  await closing;
  expect(gate.lost.length).toBeGreaterThanOrEqual(1);
  expect(gate.lost.every((l) => l.ids.join() === "big" && /closing/.test(l.reason))).toBe(true);
  expect(gate.allocation(3)!.aborted || gate.allocation(0)!.aborted).toBe(true);
});

it("connect to a closed port fails UNAVAILABLE at once", async () => {
  const memory = allocateHeapPool({ slots: 1, slotBytes: 16 });
  closers.push(() => memory.close());
  const receiver = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, memory, gate: new TableWriteGate(memory) });
  const offer = receiver.offer();
  await receiver.close();
  await receiver.close(); // idempotent
  const transport = new TcpSenderTransport({ connectTimeoutMs: 2_000 });
  closers.push(() => transport.close());
  const started = Date.now();
  const err = await rejection(transport.connect(offer, AbortSignal.timeout(5_000)));
  expect(err.code).toBe("UNAVAILABLE");
  expect(err.message).toMatch(/cannot connect to the TCP data plane/);
  expect(Date.now() - started).toBeLessThan(2_000);
});
