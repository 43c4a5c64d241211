// Locking a native region in RAM (mlock) under the pool's lock mode, with an error that names the
// limit that refused it and how to raise it.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { RLIM_INFINITY, RLIMIT_MEMLOCK, type LibcBindings } from "../../native-bindings/libc/libc.js";

/** true: lock or fail; false: never lock; "auto": lock when the memlock limit allows, else report why not. */
export type PoolLockMode = boolean | "auto";

export interface LockOutcome {
  locked: boolean;
  /** Set when mode was "auto" and mlock failed: why, and how to fix it (log it as a warning). */
  warning: string | null;
}

/**
 * mlocks [address, address + bytes) per `mode`. With mode true a refusal throws RESOURCE_EXHAUSTED
 * (the caller still owns the region and must release it).
 */
export function lockRegion(libc: LibcBindings, address: bigint, bytes: number, mode: PoolLockMode): LockOutcome {
  if (mode === false) return { locked: false, warning: null };
  if (libc.mlock(address, bytes) === 0) return { locked: true, warning: null };
  const reason = describeMlockFailure(libc, bytes, libc.errno());
  if (mode === true) throw new KvbridgeError("RESOURCE_EXHAUSTED", reason);
  return { locked: false, warning: `${reason}; continuing with unlocked pages (one-sided writes may page-fault)` };
}

/** The message for a refused mlock: errno, the RLIMIT_MEMLOCK in force, and the fixes. */
export function describeMlockFailure(libc: LibcBindings, bytes: number, errno: number): string {
  let limit = "unknown";
  try {
    const rl = libc.getrlimit(RLIMIT_MEMLOCK);
    limit = rl.soft === RLIM_INFINITY ? "unlimited" : `${rl.soft} bytes (${rl.soft / 1024n} KiB)`;
  } catch {
    // The limit only enriches the message; the mlock failure itself is what the caller must see.
  }
  return (
    `mlock of ${bytes} bytes for the KV pool failed: ${libc.strerror(errno)} (RLIMIT_MEMLOCK is ${limit}); ` +
    `raise it with \`ulimit -l unlimited\` (or to at least ${Math.ceil(bytes / 1024)} KiB); in a container set the memlock ulimit ` +
    `(docker run --ulimit memlock=-1, or the container runtime's default ulimits under Kubernetes) or grant CAP_IPC_LOCK; ` +
    `or run with the pool unlocked (lock: "auto" or false)`
  );
}
