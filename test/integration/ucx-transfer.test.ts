// Real UCX between two processes: the receiver (a child process serving a pool with
// UcxReceiverDataPlane) and the sender (UcxSenderTransport in this test process), over shared
// memory and over TCP, checked byte for byte by the receiver's own sha256 of each slot.
import { createHash, randomBytes } from "node:crypto";
import { afterEach, describe, expect, test } from "vitest";
import { isKvbridgeError, type KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { ucxAvailability, UcxSenderTransport, type UcxSenderChannel } from "../../src/transport/ucx/index.js";
import type { SlotWrite } from "../../src/transport/transport.js";
import { startUcxReceiverProcess, type UcxReceiverProcess } from "../support/ucx-receiver-client.js";

const avail = ucxAvailability();
const SLOT = 256 * 1024;
const SLOTS = 64;

interface Setup {
  name: string;
  tls: string;
  allocator: "ucx" | "mmap";
  /** Puts complete inside ucp_put_nbx: the sender copies straight into the mapped pool. */
  direct: boolean;
}

const setups: Setup[] = [
  { name: "shared memory (posix,cma,self) into a UCX-allocated pool", tls: "posix,cma,self", allocator: "ucx", direct: true },
  { name: "shared memory (sysv,self) into a UCX-allocated pool", tls: "sysv,self", allocator: "ucx", direct: true },
  { name: "shared memory (posix,cma,self) into an mmap pool, software-emulated put", tls: "posix,cma,self", allocator: "mmap", direct: false },
  { name: "tcp (tcp,self) into a UCX-allocated pool", tls: "tcp,self", allocator: "ucx", direct: false },
  { name: "tcp (tcp,self) into an mmap pool", tls: "tcp,self", allocator: "mmap", direct: false },
];

let receiver: UcxReceiverProcess | null = null;
let sender: UcxSenderTransport | null = null;

afterEach(async () => {
  await sender?.close();
  sender = null;
  await receiver?.stop();
  receiver = null;
});

function expectedDigest(data: Buffer, slotBytes: number): string {
  return createHash("sha256").update(data).update(Buffer.alloc(slotBytes - data.length)).digest("hex");
}

async function connect(s: Setup, extra: { stallTimeoutMs?: number } = {}): Promise<{ rx: UcxReceiverProcess; ch: UcxSenderChannel }> {
  const ucxConfig = { TLS: s.tls };
  // Emulated paths are what receivers and senders now refuse; they are still exercised here (the
  // pump, the watchdog and byte-exactness over them) with both ends told to allow them.
  const allowEmulatedPuts = !s.direct;
  receiver = await startUcxReceiverProcess({ slots: SLOTS, slotBytes: SLOT, allocator: s.allocator, ucxConfig, allowEmulatedPuts });
  sender = UcxSenderTransport.create({ ucxConfig, allowEmulatedPuts, ...extra });
  const ch = (await sender.connect(receiver.offer, new AbortController().signal)) as UcxSenderChannel;
  return { rx: receiver, ch };
}

describe.skipIf(!avail.available)("UCX data plane between two processes", () => {
  describe.each(setups)("$name", (s) => {
    test("many concurrent writeAll calls land byte-exact in their slots, and nothing beyond them", async () => {
      const { rx, ch } = await connect(s);
      expect(rx.ucxAllocatedPool).toBe(s.allocator === "ucx");
      // 8 requests x 8 slots each; lengths cover a full slot, partial pages, one byte and empty.
      const lengths = [SLOT, SLOT - 1, 4096, 4097, 1, 0, 100_000, SLOT / 2 + 3];
      const requests: SlotWrite[][] = [];
      for (let r = 0; r < 8; r++) {
        const writes: SlotWrite[] = [];
        for (let i = 0; i < 8; i++) {
          const slot = r * 8 + i;
          writes.push({ slot, poolOffset: slot * SLOT, token: Buffer.alloc(8), data: randomBytes(lengths[(r + i) % lengths.length]!) });
        }
        requests.push(writes);
      }
      const signal = new AbortController().signal;
      await Promise.all(requests.map((w, r) => ch.writeAll(`req-${r}`, w, signal)));

      const all = requests.flat();
      const digests = await rx.sha256(all.map((w) => ({ slot: w.slot, length: SLOT })));
      expect(digests).toEqual(all.map((w) => expectedDigest(w.data, SLOT)));
      expect(ch.broken).toBe(false);
      expect(ch.stats.bytes).toBe(all.reduce((n, w) => n + w.data.length, 0));
      if (s.direct) {
        // The fast path: every put was a copy through the sender's mapping of the pool.
        expect(ch.stats.immediatePuts).toBe(ch.stats.puts);
      }
    });

    test("writes larger than one put are split and still land whole; a second round overwrites the first", async () => {
      const { rx, ch } = await connect(s);
      const signal = new AbortController().signal;
      // 4 slots written as one 1 MiB span per request, through 64 KiB puts.
      await sender!.close();
      sender = UcxSenderTransport.create({ ucxConfig: { TLS: s.tls }, maxPutBytes: 64 * 1024, window: 4, allowEmulatedPuts: !s.direct });
      const ch2 = (await sender.connect(rx.offer, signal)) as UcxSenderChannel;
      expect(ch.broken).toBe(false);
      for (const round of [1, 2]) {
        const data = randomBytes(4 * SLOT);
        await ch2.writeAll(`span-${round}`, [{ slot: 8, poolOffset: 8 * SLOT, token: Buffer.alloc(8), data }], signal);
        const digests = await rx.sha256([8, 9, 10, 11].map((slot) => ({ slot, length: SLOT })));
        expect(digests).toEqual([0, 1, 2, 3].map((i) => expectedDigest(data.subarray(i * SLOT, (i + 1) * SLOT), SLOT)));
      }
      expect(ch2.stats.puts).toBe(2 * 16);
    });
  });

  test("the receiver's event-driven progress serves software-emulated puts, then sleeps: idle costs it no CPU", async () => {
    const { rx, ch } = await connect({ name: "", tls: "posix,self", allocator: "mmap", direct: false });
    const data = randomBytes(16 * SLOT);
    await ch.writeAll("emulated", [{ slot: 0, poolOffset: 0, token: Buffer.alloc(8), data }], new AbortController().signal);
    const slots = Array.from({ length: 16 }, (_, i) => i);
    expect(await rx.sha256(slots.map((slot) => ({ slot, length: SLOT })))).toEqual(slots.map((i) => expectedDigest(data.subarray(i * SLOT, (i + 1) * SLOT), SLOT)));
    const before = await rx.stats();
    expect(before.wakeups).toBeGreaterThan(0);
    expect(before.events).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await rx.stats();
    // Asleep on the event fd: no progress found work, and a second of idling cost (far) less than
    // the ~1000 ms a polling loop would burn.
    expect(after.events).toBe(before.events);
    expect(after.cpuMs - before.cpuMs).toBeLessThan(100);
  });

  test("while a stalled receiver (SIGSTOP) holds a writeAll, the sender sleeps instead of spinning, and finishes when it resumes", async () => {
    const { rx, ch } = await connect({ name: "", tls: "tcp,self", allocator: "ucx", direct: false });
    const writes = Array.from({ length: 64 }, (_, i) => ({ slot: i, poolOffset: i * SLOT, token: Buffer.alloc(8), data: randomBytes(SLOT) }));
    rx.child.kill("SIGSTOP");
    try {
      const done = ch.writeAll("stalled", writes, new AbortController().signal);
      await new Promise((r) => setTimeout(r, 200));
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, 1_000));
      const cpu = process.cpuUsage(cpu0);
      const busy = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
      // A spinning pump would keep this process near 100% of a core.
      expect(busy).toBeLessThan(0.3);
      rx.child.kill("SIGCONT");
      await done;
    } finally {
      rx.child.kill("SIGCONT");
    }
    const digests = await rx.sha256(writes.map((w) => ({ slot: w.slot, length: SLOT })));
    expect(digests).toEqual(writes.map((w) => expectedDigest(w.data, SLOT)));
  });

  test("a long writeAll leaves the sender's event loop responsive (it yields every slice)", async () => {
    const { ch } = await connect({ name: "", tls: "posix,cma,self", allocator: "ucx", direct: true });
    const data = randomBytes(SLOT);
    // 8 GiB of direct copies: seconds of work done in 2 ms slices.
    const writes = Array.from({ length: 32_768 }, (_, i) => ({ slot: i % SLOTS, poolOffset: (i % SLOTS) * SLOT, token: Buffer.alloc(8), data }));
    let ticks = 0;
    let worstGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const t0 = performance.now();
    try {
      await ch.writeAll("long", writes, new AbortController().signal);
    } finally {
      clearInterval(timer);
    }
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThan(100);
    // A blocked loop would show one gap as long as the whole transfer and about no ticks.
    expect(worstGap).toBeLessThan(Math.max(100, ms / 4));
    expect(ticks).toBeGreaterThan(ms / 5 / 4);
  });

  test("a cancelled writeAll rejects with CANCELLED and the channel stays usable", async () => {
    const { rx, ch } = await connect({ name: "", tls: "tcp,self", allocator: "ucx", direct: false });
    const ac = new AbortController();
    const big = Array.from({ length: 32 }, (_, i) => ({ slot: i, poolOffset: i * SLOT, token: Buffer.alloc(8), data: randomBytes(SLOT) }));
    const p = ch.writeAll("to-cancel", big, ac.signal);
    setImmediate(() => ac.abort());
    const err = (await p.then(() => null, (e: unknown) => e)) as KvbridgeError | null;
    expect(err !== null && isKvbridgeError(err) ? err.code : err).toBe("CANCELLED");
    expect(ch.broken).toBe(false);
    const data = randomBytes(SLOT);
    await ch.writeAll("after-cancel", [{ slot: 40, poolOffset: 40 * SLOT, token: Buffer.alloc(8), data }], new AbortController().signal);
    expect(await rx.sha256([{ slot: 40, length: SLOT }])).toEqual([expectedDigest(data, SLOT)]);
  });
});
