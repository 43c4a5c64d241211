// Lifecycles of the UCX data plane: repeated connect/close, close during a write, idempotent
// closes, refusals of wrong inputs, and sender and receiver sharing one process and event loop.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocatePoolMemory } from "../../src/memory/mapped-pool.js";
import { allocateHeapPool, type PoolMemory } from "../../src/memory/pool-memory.js";
import { ucxAvailability, UcxNotDirectError, UcxReceiverDataPlane, UcxSenderTransport, type UcxSenderChannel } from "../../src/transport/ucx/index.js";
import type { SlotWrite } from "../../src/transport/transport.js";
import { startUcxReceiverProcess, type UcxReceiverProcess } from "../support/ucx-receiver-client.js";

const avail = ucxAvailability();
const SLOT = 64 * 1024;

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.reverse()) await c();
  closers.length = 0;
});

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  return p.then(
    () => null,
    (e: unknown) => (isKvbridgeError(e) ? e.code : `not a KvbridgeError: ${String(e)}`),
  );
}

function writesFor(slots: number[]): SlotWrite[] {
  return slots.map((slot) => ({ slot, poolOffset: slot * SLOT, token: Buffer.alloc(8), data: randomBytes(SLOT) }));
}

describe.skipIf(!avail.available)("UCX data plane lifecycle", () => {
  test("ten connect / write / close cycles to one receiver process each land their bytes; transport close is idempotent", async () => {
    const ucxConfig = { TLS: "tcp,self" };
    // tcp (emulated puts, allowed at both ends) needs the receiver for every connect and close.
    const rx: UcxReceiverProcess = await startUcxReceiverProcess({ slots: 16, slotBytes: SLOT, allocator: "ucx", ucxConfig, allowEmulatedPuts: true });
    closers.push(() => rx.stop());
    const sender = UcxSenderTransport.create({ ucxConfig, allowEmulatedPuts: true });
    closers.push(() => sender.close());
    for (let i = 0; i < 10; i++) {
      const ch = await sender.connect(rx.offer, new AbortController().signal);
      const writes = writesFor([i % 16]);
      await ch.writeAll(`cycle-${i}`, writes, new AbortController().signal);
      await ch.close();
      await ch.close();
      expect(await codeOf(ch.writeAll("after-close", writes, new AbortController().signal))).toBe("UNAVAILABLE");
      expect(await rx.sha256([{ slot: i % 16, length: SLOT }])).toEqual([sha(writes[0]!.data)]);
    }
    await sender.close();
    await sender.close();
    expect(await codeOf(sender.connect(rx.offer, new AbortController().signal))).toBe("FAILED_PRECONDITION");
  });

  test("closing a channel while its writeAll runs rejects that write with UNAVAILABLE; the transport connects again", async () => {
    const ucxConfig = { TLS: "tcp,self" };
    const rx = await startUcxReceiverProcess({ slots: 64, slotBytes: SLOT, allocator: "ucx", ucxConfig, allowEmulatedPuts: true });
    closers.push(() => rx.stop());
    const sender = UcxSenderTransport.create({ ucxConfig, closeTimeoutMs: 1_000, allowEmulatedPuts: true });
    closers.push(() => sender.close());
    const ch = (await sender.connect(rx.offer, new AbortController().signal)) as UcxSenderChannel;
    const big = Array.from({ length: 4096 }, (_, i) => ({ slot: i % 64, poolOffset: (i % 64) * SLOT, token: Buffer.alloc(8), data: randomBytes(SLOT) }));
    const running = codeOf(ch.writeAll("interrupted", big, new AbortController().signal));
    await new Promise((r) => setTimeout(r, 20));
    await ch.close();
    expect(await running).toBe("UNAVAILABLE");
    const again = await sender.connect(rx.offer, new AbortController().signal);
    const writes = writesFor([5]);
    await again.writeAll("after", writes, new AbortController().signal);
    expect(await rx.sha256([{ slot: 5, length: SLOT }])).toEqual([sha(writes[0]!.data)]);
  });

  test("wrong inputs are refused with their codes: heap pool, foreign offer, aborted connect, negative offset", async () => {
    const heap = allocateHeapPool({ slots: 2, slotBytes: SLOT });
    expect(() => UcxReceiverDataPlane.create(heap)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    heap.close();
    const sender = UcxSenderTransport.create();
    closers.push(() => sender.close());
    expect(await codeOf(sender.connect({ kind: "tcp", host: "127.0.0.1", port: 1 }, new AbortController().signal))).toBe("INVALID_ARGUMENT");
    const { memory } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto" });
    const plane = UcxReceiverDataPlane.create(memory);
    closers.push(() => memory.close());
    closers.push(() => plane.close());
    const aborted = new AbortController();
    aborted.abort();
    expect(await codeOf(sender.connect(plane.offer(), aborted.signal))).toBe("CANCELLED");
    const ch = await sender.connect(plane.offer(), new AbortController().signal);
    expect(await codeOf(ch.writeAll("bad", [{ slot: 0, poolOffset: -1, token: Buffer.alloc(8), data: Buffer.alloc(1) }], new AbortController().signal))).toBe(
      "INVALID_ARGUMENT",
    );
    expect(() => UcxSenderTransport.create({ window: 0 })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  test("UCX is offered only where puts land directly in the pool: an mmap pool or UCX tcp is refused with the reason, a UCX-allocated shared-memory pool is served", () => {
    const { memory } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto", allocator: "mmap" });
    closers.push(() => memory.close());
    for (const opts of [{}, { ucxConfig: { TLS: "posix,cma,self" } }]) {
      let err: unknown = null;
      try {
        UcxReceiverDataPlane.create(memory, opts).close();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UcxNotDirectError);
      expect((err as UcxNotDirectError).code).toBe("UNAVAILABLE");
      expect((err as UcxNotDirectError).directness.direct).toBe(false);
    }
    const { memory: tcpPool } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto", allocator: "ucx", ucx: { ucxConfig: { TLS: "tcp,self" } } });
    closers.push(() => tcpPool.close());
    expect(() => UcxReceiverDataPlane.create(tcpPool, { ucxConfig: { TLS: "tcp,self" } })).toThrow(
      expect.objectContaining({ code: "UNAVAILABLE", directness: expect.objectContaining({ direct: false, transports: expect.arrayContaining(["tcp"]) }) }),
    );
    const { memory: ucxPool } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto", allocator: "ucx", ucx: { ucxConfig: { TLS: "posix,cma,self" } } });
    closers.push(() => ucxPool.close());
    const direct = UcxReceiverDataPlane.create(ucxPool, { ucxConfig: { TLS: "posix,cma,self" } });
    closers.push(() => direct.close());
    expect(direct.ucxAllocatedPool).toBe(true);
    expect(direct.warning).toBeNull();
    expect(direct.directness()).toMatchObject({ direct: true, transports: expect.arrayContaining(["posix"]) });
    // Nobody chose the transports: UCX runs without tcp, and the default pool is served directly.
    const { memory: defaultPool } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto" });
    closers.push(() => defaultPool.close());
    const byDefault = UcxReceiverDataPlane.create(defaultPool);
    closers.push(() => byDefault.close());
    expect(byDefault.directness().direct).toBe(true);
    expect(byDefault.directness().transports).not.toContain("tcp");
  });

  test("a sender declines a receiver that offers UCX where puts would be emulated (an older receiver on UCX tcp) and says why", async () => {
    const ucxConfig = { TLS: "tcp,self" };
    const { memory } = allocatePoolMemory({ slots: 2, slotBytes: SLOT, lock: "auto", allocator: "ucx", ucx: { ucxConfig } });
    closers.push(() => memory.close());
    const plane = UcxReceiverDataPlane.create(memory, { ucxConfig, allowEmulatedPuts: true });
    closers.push(() => plane.close());
    expect(plane.directness().direct).toBe(false);
    const sender = UcxSenderTransport.create({ ucxConfig });
    closers.push(() => sender.close());
    const err = await sender.connect(plane.offer(), new AbortController().signal).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(UcxNotDirectError);
    expect((err as UcxNotDirectError).code).toBe("UNAVAILABLE");
    expect((err as UcxNotDirectError).directness).toMatchObject({ direct: false, transports: ["tcp"] });
  });

  test.each([
    ["a UCX-allocated pool (direct copies)", "ucx"],
    ["an mmap pool (software-emulated puts the receiver's progress must serve)", "mmap"],
  ] as const)("sender and receiver in one process share the event loop: writes into %s land and both close cleanly", async (_name, allocator) => {
    const ucxConfig = { TLS: "posix,cma,self" };
    const { memory } = allocatePoolMemory({ slots: 32, slotBytes: SLOT, lock: "auto", allocator, ucx: { ucxConfig } });
    const pool: PoolMemory = memory;
    const allowEmulatedPuts = allocator === "mmap";
    const plane = UcxReceiverDataPlane.create(pool, { ucxConfig, allowEmulatedPuts });
    expect(plane.ucxAllocatedPool).toBe(allocator === "ucx");
    const sender = UcxSenderTransport.create({ ucxConfig, allowEmulatedPuts });
    try {
      const ch = await sender.connect(plane.offer(), new AbortController().signal);
      const requests = [0, 1, 2, 3].map((r) => writesFor([r * 8, r * 8 + 1, r * 8 + 2, r * 8 + 3]));
      await Promise.all(requests.map((w, r) => ch.writeAll(`local-${r}`, w, new AbortController().signal)));
      for (const w of requests.flat()) expect(sha(pool.slotView(w.slot))).toBe(sha(w.data));
    } finally {
      await sender.close();
      await plane.close();
      await plane.close();
      pool.close();
    }
    expect(() => plane.offer()).toThrow(expect.objectContaining({ code: "FAILED_PRECONDITION" }));
  });
});
