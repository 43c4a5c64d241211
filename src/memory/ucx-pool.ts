// UCX's side of the KV pool, in one place (the only ucp_mem_map calls): a pool UCX allocates
// (ucp_mem_map ALLOCATE: on one host UCX backs it with shared memory and a same-host UCX peer writes
// it with a plain memcpy through its own mapping, rkey_ptr, instead of UCX 1.13's software-emulated
// put into user-registered memory), and the registration of any native pool for a UCX data plane,
// which reuses a UCX pool's own registration when both use the same UCX context.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { loadLibc, SC_PAGESIZE } from "../../native-bindings/libc/libc.js";
import { acquireUcxContext, ucxContextKey, type UcxContextLease, type UcxContextOptions } from "../../native-bindings/ucx/ucx-context.js";
import {
  UCP_MEM_ATTR_FIELD_ADDRESS,
  UCP_MEM_ATTR_FIELD_LENGTH,
  UCP_MEM_MAP_ALLOCATE,
  UCP_MEM_MAP_PARAM_FIELD_ADDRESS,
  UCP_MEM_MAP_PARAM_FIELD_FLAGS,
  UCP_MEM_MAP_PARAM_FIELD_LENGTH,
  UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
  UCP_MEM_MAP_PARAM_FIELD_PROT,
  UCP_MEM_MAP_PROT_LOCAL_READ,
  UCP_MEM_MAP_PROT_LOCAL_WRITE,
  UCP_MEM_MAP_PROT_REMOTE_READ,
  UCP_MEM_MAP_PROT_REMOTE_WRITE,
  UCS_MEMORY_TYPE_HOST,
  UCS_OK,
} from "../../native-bindings/ucx/ucx-constants.js";
import type { UcpContext, UcpMem, UcxLibrary } from "../../native-bindings/ucx/ucx-library.js";
import { lockRegion, type PoolLockMode } from "./memlock.js";
import { wrapNativeRegion, type MappedPoolMemory, type NativePoolMemory } from "./native-region.js";
import type { PoolMemoryOptions } from "./pool-memory.js";
import { roundUpToPage, validatePoolSize } from "./pool-size.js";

export interface UcxPoolOptions extends PoolMemoryOptions, UcxContextOptions {
  lock: PoolLockMode;
}

/** The registration a UCX pool was allocated with, in the process's shared context for its options. */
export interface UcxPoolRegistration {
  ucx: UcxLibrary;
  context: UcpContext;
  /** ucxContextKey() of the options the pool was allocated with. */
  contextKey: string;
  memh: UcpMem;
}

/** A pool whose memory UCX allocated and registered (allocateUcxPool). */
export interface UcxPoolMemory extends NativePoolMemory {
  readonly kind: "ucx";
  /** Its registration; null once the pool is closed. */
  readonly registration: UcxPoolRegistration | null;
}

/** A pool registered with one data plane's UCX context: the memory handle its rkey is packed from. */
export interface PoolRegistration {
  readonly memh: UcpMem;
  /** True when this is the pool's own registration from its UCX allocation (same context), not a new one. */
  readonly ucxAllocated: boolean;
  /** Idempotent: unregisters what registerPool registered (nothing when it reused the pool's own). */
  release(): void;
}

const PROT_ALL = UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE | UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE;

/** ucp_mem_map: allocate `length` bytes, or register the `length` bytes at `address`; null when UCX refuses. */
function memMap(ucx: UcxLibrary, context: UcpContext, what: { allocate: number } | { address: bigint; length: number }): { memh: UcpMem | null; status: number } {
  const out: [UcpMem | null] = [null];
  const common = UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_PROT | UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE;
  const params =
    "allocate" in what
      ? { field_mask: common | UCP_MEM_MAP_PARAM_FIELD_FLAGS, length: what.allocate, flags: UCP_MEM_MAP_ALLOCATE, prot: PROT_ALL, memory_type: UCS_MEMORY_TYPE_HOST }
      : { field_mask: common | UCP_MEM_MAP_PARAM_FIELD_ADDRESS, address: what.address, length: what.length, prot: PROT_ALL, memory_type: UCS_MEMORY_TYPE_HOST };
  const status = ucx.fns.ucp_mem_map(context, params, out);
  return { memh: status === UCS_OK ? out[0] : null, status };
}

/**
 * Registers `pool` with the context of `lease` for remote writes. A UCX pool allocated in that same
 * context is already registered: its handle is reused. Throws RESOURCE_EXHAUSTED when UCX refuses.
 */
export function registerPool(pool: MappedPoolMemory | UcxPoolMemory, lease: UcxContextLease): PoolRegistration {
  if (pool.kind === "ucx" && pool.registration !== null && pool.registration.context === lease.context) {
    return { memh: pool.registration.memh, ucxAllocated: true, release: () => undefined };
  }
  const length = pool.slots * pool.slotBytes;
  const { memh, status } = memMap(lease.ucx, lease.context, { address: pool.address, length });
  if (memh === null) {
    throw new KvbridgeError("RESOURCE_EXHAUSTED", `registering the ${length}-byte KV pool with UCX (ucp_mem_map) failed: UCX ${lease.ucx.describeStatus(status)}`);
  }
  let released = false;
  return {
    memh,
    ucxAllocated: false,
    release() {
      if (released) return;
      released = true;
      lease.ucx.fns.ucp_mem_unmap(lease.context, memh);
    },
  };
}

/** True when `pool` was allocated by UCX with these context options (a data plane using them writes it directly). */
export function allocatedByUcxWith(pool: MappedPoolMemory | UcxPoolMemory, opts: UcxContextOptions): boolean {
  return pool.kind === "ucx" && pool.registration !== null && pool.registration.contextKey === ucxContextKey(opts);
}

/**
 * Allocates and registers the pool through UCX, then mlocks it per `lock`. Throws UNAVAILABLE when
 * libucp or libc cannot be used, RESOURCE_EXHAUSTED when UCX cannot allocate or (lock: true) mlock fails.
 * Close every data plane that serves the pool before closing the pool.
 */
export function allocateUcxPool(opts: UcxPoolOptions): UcxPoolMemory {
  validatePoolSize(opts);
  const libcLoad = loadLibc();
  if (!libcLoad.available) throw new KvbridgeError("UNAVAILABLE", `UCX pool memory is unavailable: ${libcLoad.reason}`);
  const libc = libcLoad.libc;
  const acquired = acquireUcxContext({ libraryPath: opts.libraryPath, ucxConfig: opts.ucxConfig });
  if (!acquired.ok) throw new KvbridgeError("UNAVAILABLE", `UCX pool memory is unavailable: ${acquired.reason}`);
  const { ucx, context } = acquired.lease;
  const total = opts.slots * opts.slotBytes;
  const requested = roundUpToPage(total, libc.sysconf(SC_PAGESIZE));

  const { memh: handle, status } = memMap(ucx, context, { allocate: requested });
  if (handle === null) {
    acquired.lease.release();
    throw new KvbridgeError(
      "RESOURCE_EXHAUSTED",
      `UCX could not allocate ${requested} bytes for the KV pool: ${ucx.describeStatus(status)}; check free memory and /dev/shm size, or use the mmap pool`,
    );
  }
  const unmap = (): void => {
    ucx.fns.ucp_mem_unmap(context, handle);
    acquired.lease.release();
  };

  const attr = { field_mask: UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH, address: null as bigint | null, length: 0, mem_type: 0 };
  const queryStatus = ucx.fns.ucp_mem_query(handle, attr);
  const address = attr.address;
  if (queryStatus !== UCS_OK || address === null || attr.length < total) {
    unmap();
    throw new KvbridgeError("INTERNAL", `ucp_mem_query on the new KV pool failed or reported ${attr.length} bytes for ${total}: ${ucx.describeStatus(queryStatus)}`);
  }
  const mappedBytes = Number(attr.length);

  let lock;
  try {
    lock = lockRegion(libc, address, mappedBytes, opts.lock);
  } catch (err) {
    unmap();
    throw err;
  }
  const view = libc.view(address, mappedBytes);
  // UCX may fall back to a heap allocation that is not zeroed; the pool must start zeroed like
  // every other pool (and this faults every page in now, not on the first transfer).
  new Uint8Array(view, 0, total).fill(0);

  let registration: UcxPoolRegistration | null = { ucx, context, contextKey: ucxContextKey(opts), memh: handle };
  const region = wrapNativeRegion("ucx", {
    address,
    mappedBytes,
    locked: lock.locked,
    lockWarning: lock.warning,
    slots: opts.slots,
    slotBytes: opts.slotBytes,
    view,
    release: () => {
      registration = null;
      if (lock.locked) libc.munlock(address, mappedBytes);
      unmap();
    },
  });
  // A getter, so the registration reads null as soon as the pool is closed.
  return Object.defineProperty(region, "registration", { get: () => registration, enumerable: true }) as UcxPoolMemory;
}
