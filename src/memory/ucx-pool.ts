// A pool whose memory UCX allocates (ucp_mem_map with ALLOCATE): on one host UCX then backs it with
// shared memory (posix or sysv) and a UCX peer writes into it with a plain memcpy through its own
// mapping (rkey_ptr), instead of UCX 1.13's software-emulated put into user-registered memory.
// Registered once, in the process's shared UCX context; the UCX receiver data plane reuses it.
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { loadLibc, SC_PAGESIZE } from "../../native-bindings/libc/libc.js";
import { acquireUcxContext, ucxContextKey, type UcxContextOptions } from "../../native-bindings/ucx/ucx-context.js";
import {
  UCP_MEM_ATTR_FIELD_ADDRESS,
  UCP_MEM_ATTR_FIELD_LENGTH,
  UCP_MEM_MAP_ALLOCATE,
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
import { wrapNativeRegion, type MappedPoolMemory } from "./native-region.js";
import type { PoolMemory, PoolMemoryOptions } from "./pool-memory.js";
import { roundUpToPage, validatePoolSize } from "./pool-size.js";

export interface UcxPoolOptions extends PoolMemoryOptions, UcxContextOptions {
  lock: PoolLockMode;
}

/** What a UCX data plane needs to reuse a UCX-allocated pool's registration. */
export interface UcxPoolRegistration {
  ucx: UcxLibrary;
  context: UcpContext;
  /** ucxContextKey() of the options the pool was allocated with. */
  contextKey: string;
  memh: UcpMem;
}

const registrations = new WeakMap<PoolMemory, UcxPoolRegistration>();

/** The registration of a pool made by allocateUcxPool and not yet closed; null for any other pool. */
export function ucxPoolRegistration(pool: PoolMemory): UcxPoolRegistration | null {
  return registrations.get(pool) ?? null;
}

/**
 * Allocates and registers the pool through UCX, then mlocks it per `lock`. Throws UNAVAILABLE when
 * libucp or libc cannot be used, RESOURCE_EXHAUSTED when UCX cannot allocate or (lock: true) mlock fails.
 * Close every data plane that serves the pool before closing the pool.
 */
export function allocateUcxPool(opts: UcxPoolOptions): MappedPoolMemory {
  validatePoolSize(opts);
  const libcLoad = loadLibc();
  if (!libcLoad.available) throw new KvbridgeError("UNAVAILABLE", `UCX pool memory is unavailable: ${libcLoad.reason}`);
  const libc = libcLoad.libc;
  const acquired = acquireUcxContext({ libraryPath: opts.libraryPath, ucxConfig: opts.ucxConfig });
  if (!acquired.ok) throw new KvbridgeError("UNAVAILABLE", `UCX pool memory is unavailable: ${acquired.reason}`);
  const { ucx, context } = acquired.lease;
  const { fns } = ucx;
  const total = opts.slots * opts.slotBytes;
  const pageSize = libc.sysconf(SC_PAGESIZE);
  const requested = roundUpToPage(total, pageSize);

  const memh: [UcpMem | null] = [null];
  const status = fns.ucp_mem_map(
    context,
    {
      field_mask:
        UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_FLAGS | UCP_MEM_MAP_PARAM_FIELD_PROT | UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
      length: requested,
      flags: UCP_MEM_MAP_ALLOCATE,
      prot: UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE | UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE,
      memory_type: UCS_MEMORY_TYPE_HOST,
    },
    memh,
  );
  if (status !== UCS_OK || memh[0] === null) {
    acquired.lease.release();
    throw new KvbridgeError(
      "RESOURCE_EXHAUSTED",
      `UCX could not allocate ${requested} bytes for the KV pool: ${ucx.describeStatus(status)}; check free memory and /dev/shm size, or use the mmap pool`,
    );
  }
  const handle = memh[0];
  const unmap = (): void => {
    fns.ucp_mem_unmap(context, handle);
    acquired.lease.release();
  };

  const attr = { field_mask: UCP_MEM_ATTR_FIELD_ADDRESS | UCP_MEM_ATTR_FIELD_LENGTH, address: null as bigint | null, length: 0, mem_type: 0 };
  const queryStatus = fns.ucp_mem_query(handle, attr);
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

  const pool = wrapNativeRegion({
    address,
    mappedBytes,
    allocator: "ucx",
    locked: lock.locked,
    lockWarning: lock.warning,
    slots: opts.slots,
    slotBytes: opts.slotBytes,
    view,
    release: () => {
      registrations.delete(pool);
      if (lock.locked) libc.munlock(address, mappedBytes);
      unmap();
    },
  });
  registrations.set(pool, { ucx, context, contextKey: ucxContextKey(opts), memh: handle });
  return pool;
}
