// Allocates pools with lock: true and lock: "auto" and prints what happened as one line,
// UCX_MLOCK {json}. Run under a small RLIMIT_MEMLOCK without CAP_IPC_LOCK to see the refusal.
//   node --import tsx test/support/ucx-mlock-probe.ts <bytes>
import { isKvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateMappedPool } from "../../src/memory/mapped-pool.js";
import { allocateUcxPool } from "../../src/memory/ucx-pool.js";
import { ucxAvailability } from "../../src/transport/ucx/index.js";

const bytes = Number(process.argv[2] ?? 64 * 1024 * 1024);
const geometry = { slots: 16, slotBytes: bytes / 16 };

function outcome(fn: () => { locked: boolean; lockWarning: string | null; close(): void }): object {
  try {
    const pool = fn();
    const r = { ok: true, locked: pool.locked, lockWarning: pool.lockWarning };
    pool.close();
    return r;
  } catch (err) {
    return { ok: false, code: isKvbridgeError(err) ? err.code : "not a KvbridgeError", message: err instanceof Error ? err.message : String(err) };
  }
}

const ucx = ucxAvailability().available;
console.log(
  "UCX_MLOCK " +
    JSON.stringify({
      mmapLocked: outcome(() => allocateMappedPool({ ...geometry, lock: true })),
      mmapAuto: outcome(() => allocateMappedPool({ ...geometry, lock: "auto" })),
      ucxLocked: ucx ? outcome(() => allocateUcxPool({ ...geometry, lock: true })) : null,
      ucxAuto: ucx ? outcome(() => allocateUcxPool({ ...geometry, lock: "auto" })) : null,
    }),
);
