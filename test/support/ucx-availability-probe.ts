// Imports the UCX modules and tries each entry point in a process whose libucp is whatever
// KVBRIDGE_LIBUCP says, then prints one line: UCX_PROBE {json}. Used to show that a missing
// library is a value (availability false, UNAVAILABLE errors, heap-free fallbacks), never a crash.
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocatePoolMemory } from "../../src/memory/mapped-pool.js";
import { ucxAvailability, UcxReceiverDataPlane, UcxSenderTransport } from "../../src/transport/ucx/index.js";

const cleanups: Array<() => unknown> = [];

function attempt(fn: () => { close(): unknown } | { memory: { close(): unknown } }): { ok: true } | { ok: false; code: string; message: string } {
  try {
    const made = fn();
    cleanups.push(() => ("memory" in made ? made.memory.close() : made.close()));
    return { ok: true };
  } catch (err) {
    return { ok: false, code: isKvbridgeError(err) ? err.code : "not a KvbridgeError", message: String(err instanceof Error ? err.message : err) };
  }
}

const availability = ucxAvailability();
const pool = allocatePoolMemory({ slots: 4, slotBytes: 4096, lock: "auto" });
const sender = attempt(() => UcxSenderTransport.create());
const receiver = attempt(() => UcxReceiverDataPlane.create(pool.memory));
const explicitUcxPool = attempt(() => allocatePoolMemory({ slots: 4, slotBytes: 4096, lock: "auto", allocator: "ucx" }));
console.log(
  "UCX_PROBE " +
    JSON.stringify({
      availability,
      pool: { kind: pool.memory.kind, allocator: pool.memory.kind === "ucx" ? "ucx" : pool.memory.kind === "mmap" ? "libc" : null, warning: pool.warning },
      sender,
      receiver,
      explicitUcxPool,
    }),
);
// The receiver plane closes before the pool it serves.
for (const c of cleanups) await c();
pool.memory.close();
console.log("UCX_PROBE_DONE");
