// The receiving end of bench/tcp-bench.ts, in its own process so sender and receiver each get a
// core, as iperf3's client and server do. Prints {"port":N} once listening; exits when stdin closes.
//   tcp-bench-receiver kvbridge <slotBytes> <slots> <zero-copy|copy>
//   tcp-bench-receiver bare      (reads an 8-byte LE count, discards that many bytes, answers 1 byte)
//   tcp-bench-receiver bare-pool <poolBytes>   (the same, copying every byte into a pool, cycling)

import net from "node:net";
import { allocateHeapPool } from "../src/memory/pool-memory.js";
import { TcpReceiverDataPlane } from "../src/transport/tcp/tcp-receiver.js";
import type { TcpReceiveMode } from "../src/transport/tcp/tcp-receiver-connection.js";
import type { AdmitResult, WriteGate } from "../src/transport/transport.js";

/** Token every bench slot is allocated with. */
export const BENCH_TOKEN = Buffer.from("benchtok", "latin1");

/**
 * Every slot is allocated to whichever request writes it, with BENCH_TOKEN; the checks a real gate
 * does per frame (slot, bounds, token) are still made, so the cost of admission is in the figure.
 */
function benchGate(memory: ReturnType<typeof allocateHeapPool>): WriteGate {
  return {
    admit(_requestId, slot, offsetInSlot, length, token): AdmitResult {
      if (slot >= memory.slots) return { ok: false, code: "NOT_FOUND", message: `slot ${slot} is not allocated` };
      if (offsetInSlot + length > memory.slotBytes) return { ok: false, code: "INVALID_ARGUMENT", message: "out of bounds" };
      if (!token.equals(BENCH_TOKEN)) return { ok: false, code: "PERMISSION_DENIED", message: "bad write token" };
      return { ok: true, target: memory.slotView(slot).subarray(offsetInSlot, offsetInSlot + length) };
    },
    written() {},
    connectionLost() {},
  };
}

async function main(): Promise<void> {
  const [kind, slotBytesArg, slotsArg, modeArg] = process.argv.slice(2);
  let close: () => Promise<void>;
  let port: number;
  if (kind === "kvbridge") {
    const memory = allocateHeapPool({ slots: Number(slotsArg), slotBytes: Number(slotBytesArg) });
    const plane = await TcpReceiverDataPlane.listen({
      host: "127.0.0.1",
      port: 0,
      memory,
      gate: benchGate(memory),
      receiveMode: modeArg as TcpReceiveMode,
      maxFrameBytes: 64 * 1024 * 1024,
    });
    const offer = plane.offer();
    port = offer.kind === "tcp" ? offer.port : 0;
    close = async () => {
      await plane.close();
      memory.close();
    };
  } else if (kind === "bare" || kind === "bare-pool") {
    // bare-pool keeps what it receives, as any receiver of KV must: each read is copied into the
    // next bytes of a pool much larger than the caches, wrapping at its end.
    const pool = kind === "bare-pool" ? Buffer.alloc(Number(slotBytesArg)) : null;
    let at = 0;
    const keep = (bytes: Buffer): void => {
      if (!pool) return;
      let from = 0;
      while (from < bytes.length) {
        const n = Math.min(bytes.length - from, pool.length - at);
        bytes.copy(pool, at, from, from + n);
        from += n;
        at = (at + n) % pool.length;
      }
    };
    const server = net.createServer({ noDelay: true }, (socket) => {
      let expected = -1;
      let got = 0;
      let head = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        if (expected < 0) {
          head = Buffer.concat([head, chunk]);
          if (head.length < 8) return;
          expected = Number(head.readBigUInt64LE(0));
          got = head.length - 8;
          keep(head.subarray(8));
        } else {
          got += chunk.length;
          keep(chunk);
        }
        if (got >= expected) {
          socket.write(Buffer.from([1]));
          expected = -1;
          head = Buffer.alloc(0);
        }
      });
      socket.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as net.AddressInfo).port;
    close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  } else {
    throw new Error(`usage: tcp-bench-receiver kvbridge <slotBytes> <slots> <mode> | bare | bare-pool <poolBytes>`);
  }
  process.stdout.write(JSON.stringify({ port }) + "\n");
  process.stdin.resume();
  process.stdin.on("end", () => {
    void close().then(() => process.exit(0));
  });
}

void main();
