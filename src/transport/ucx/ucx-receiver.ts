// The receiver's UCX data plane: the whole pool registered once, its packed rkey and the worker's
// address handed out in the offer, and event-driven progress so that transports that need the
// target's help (tcp, software-emulated puts over shared memory) complete without a spinning core.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { PoolMemory } from "../../memory/pool-memory.js";
import { ucxPoolRegistration } from "../../memory/ucx-pool.js";
import {
  UCP_MEM_MAP_PARAM_FIELD_ADDRESS,
  UCP_MEM_MAP_PARAM_FIELD_LENGTH,
  UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
  UCP_MEM_MAP_PARAM_FIELD_PROT,
  UCP_MEM_MAP_PROT_LOCAL_READ,
  UCP_MEM_MAP_PROT_LOCAL_WRITE,
  UCP_MEM_MAP_PROT_REMOTE_READ,
  UCP_MEM_MAP_PROT_REMOTE_WRITE,
  UCS_MEMORY_TYPE_HOST,
  UCS_OK,
} from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpMem } from "../../../native-bindings/ucx/ucx-library.js";
import { ucxContextKey, type UcxContextOptions } from "../../../native-bindings/ucx/ucx-context.js";
import type { DataPlaneOffer, ReceiverDataPlane } from "../transport.js";
import { EventDrivenProgress, type EventProgressOptions, type EventProgressStats } from "./ucx-event-progress.js";
import { ucxError } from "./ucx-status.js";
import { UcxWorker } from "./ucx-worker.js";

export interface UcxReceiverOptions extends UcxContextOptions, EventProgressOptions {
  /** Worker name shown in UCX logs. */
  name?: string;
}

export class UcxReceiverDataPlane implements ReceiverDataPlane {
  readonly kind = "ucx" as const;
  private readonly worker: UcxWorker;
  private readonly progress: EventDrivenProgress;
  private readonly workerAddress: Buffer;
  private readonly rkey: Buffer;
  private readonly baseAddress: bigint;
  /** Set when this plane registered the pool itself (and so must unregister it). */
  private ownMemh: UcpMem | null;
  /** True when the pool was allocated by UCX, so same-host peers write into it directly. */
  readonly ucxAllocatedPool: boolean;
  /** Set when this plane serves in a degraded way the operator should hear about (log it as a warning). */
  readonly warning: string | null;
  private closed = false;

  private constructor(parts: {
    worker: UcxWorker;
    progress: EventDrivenProgress;
    workerAddress: Buffer;
    rkey: Buffer;
    baseAddress: bigint;
    ownMemh: UcpMem | null;
    warning: string | null;
  }) {
    this.worker = parts.worker;
    this.progress = parts.progress;
    this.workerAddress = parts.workerAddress;
    this.rkey = parts.rkey;
    this.baseAddress = parts.baseAddress;
    this.ownMemh = parts.ownMemh;
    this.ucxAllocatedPool = parts.ownMemh === null;
    this.warning = parts.warning;
  }

  /**
   * Serves `pool` over UCX. The pool must be native memory (kind "mmap"): one made by
   * allocatePoolMemory/allocateUcxPool. Throws UNAVAILABLE when UCX cannot be used here,
   * INVALID_ARGUMENT for a heap pool. Close this plane before closing the pool.
   */
  static create(pool: PoolMemory, opts: UcxReceiverOptions = {}): UcxReceiverDataPlane {
    if (pool.kind !== "mmap" || pool.address === null) {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        "the UCX data plane needs native pool memory (kind mmap) it can register; this pool is heap memory: allocate it with allocatePoolMemory() on a host where libc can be bound, or serve it over TCP",
      );
    }
    // Same-host UCX senders write a UCX-allocated pool by direct copies. Into any other memory
    // UCX 1.13 emulates the put over the receiver's shared-memory FIFO, which a sender killed
    // mid-message wedges for every later sender (the slot it reserved never completes). Such a
    // pool is therefore served without posix/sysv (same-host senders then use loopback tcp),
    // unless the operator chose the transports.
    const reg = ucxPoolRegistration(pool);
    const direct = reg !== null && reg.contextKey === ucxContextKey(opts);
    let contextOpts: UcxReceiverOptions = opts;
    let warning: string | null = null;
    if (!direct) {
      const chosen = opts.ucxConfig?.TLS ?? process.env.UCX_TLS;
      if (chosen === undefined || chosen === "") {
        contextOpts = { ...opts, ucxConfig: { ...opts.ucxConfig, TLS: "^posix,sysv" } };
      } else {
        warning =
          `the KV pool was not allocated by UCX (with these settings), so same-host puts over shared memory are emulated ` +
          `through the receiver's FIFO, which a sender killed mid-transfer can block for all senders; UCX_TLS=${chosen} was kept. ` +
          `Allocate the pool with allocatePoolMemory (allocator "auto" or "ucx", same ucxConfig) or exclude posix,sysv`;
      }
    }
    const worker = UcxWorker.create(opts.name ?? `kvbridge-receiver-${process.pid}`, contextOpts);
    const { ucx, lease } = worker;
    const { fns } = ucx;
    let ownMemh: UcpMem | null = null;
    let progress: EventDrivenProgress | null = null;
    try {
      let memh: UcpMem;
      if (direct && reg.context === lease.context) {
        memh = reg.memh;
      } else {
        const out: [UcpMem | null] = [null];
        const status = fns.ucp_mem_map(
          lease.context,
          {
            field_mask:
              UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH | UCP_MEM_MAP_PARAM_FIELD_PROT | UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE,
            address: pool.address,
            length: pool.slots * pool.slotBytes,
            prot: UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE | UCP_MEM_MAP_PROT_REMOTE_READ | UCP_MEM_MAP_PROT_REMOTE_WRITE,
            memory_type: UCS_MEMORY_TYPE_HOST,
          },
          out,
        );
        if (status !== UCS_OK || out[0] === null) {
          throw ucxError(ucx, `registering the ${pool.slots * pool.slotBytes}-byte KV pool with UCX (ucp_mem_map) failed`, status, "RESOURCE_EXHAUSTED");
        }
        memh = ownMemh = out[0];
      }

      const packed: [bigint | null] = [null];
      const size: [number] = [0];
      const packStatus = fns.ucp_rkey_pack(lease.context, memh, packed, size);
      if (packStatus !== UCS_OK || packed[0] === null) throw ucxError(ucx, "packing the pool's remote key (ucp_rkey_pack) failed", packStatus, "INTERNAL");
      let rkey: Buffer;
      try {
        rkey = ucx.copyOut(packed[0], Number(size[0]));
      } finally {
        fns.ucp_rkey_buffer_release(packed[0]);
      }
      const workerAddress = worker.address();
      progress = new EventDrivenProgress(worker, opts);
      return new UcxReceiverDataPlane({ worker, progress, workerAddress, rkey, baseAddress: pool.address, ownMemh, warning });
    } catch (err) {
      progress?.stop();
      if (ownMemh !== null) fns.ucp_mem_unmap(lease.context, ownMemh);
      worker.destroy();
      throw err;
    }
  }

  offer(): DataPlaneOffer {
    if (this.worker.closed) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX data plane is closed");
    // Copies: a caller that mutates its offer must not corrupt the next one.
    return { kind: "ucx", workerAddress: Buffer.from(this.workerAddress), rkey: Buffer.from(this.rkey), baseAddress: this.baseAddress };
  }

  /** Wakeups and events served so far (for tests and metrics). */
  get progressStats(): Readonly<EventProgressStats> {
    return this.progress.stats;
  }

  /** Idempotent: stops progress, unregisters the pool (if this plane registered it), destroys the worker. */
  close(): Promise<void> {
    // Synchronous on purpose: a caller that closes the pool right after us (even without awaiting)
    // must find the registration already gone.
    if (!this.closed) {
      this.closed = true;
      this.progress.stop();
      if (this.ownMemh !== null) {
        this.worker.ucx.fns.ucp_mem_unmap(this.worker.lease.context, this.ownMemh);
        this.ownMemh = null;
      }
      this.worker.destroy();
    }
    return Promise.resolve();
  }
}
