// The receiver's UCX data plane: the whole pool registered once, its packed rkey and the worker's
// address handed out in the offer, and event-driven progress so that transports that need the
// target's help (tcp, software-emulated puts over shared memory) complete without a spinning core.
// Given a commit gate, it also takes requests' commits as UCX active messages (ucx-commit-receiver.ts).
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { PoolMemory } from "../../memory/pool-memory.js";
import { allocatedByUcxWith, registerPool, type PoolRegistration } from "../../memory/ucx-pool.js";
import { UCP_FEATURE_AM, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcxContextOptions } from "../../../native-bindings/ucx/ucx-context.js";
import type { DataPlaneOffer, ReceiverDataPlane } from "../transport.js";
import { UcxCommitReceiver, type UcxCommitGate, type UcxCommitStats } from "./ucx-commit-receiver.js";
import { EventDrivenProgress, type EventProgressOptions, type EventProgressStats } from "./ucx-event-progress.js";
import { receiverDirectness, UcxNotDirectError, type UcxDirectness } from "./ucx-directness.js";
import { ucxError } from "./ucx-status.js";
import { UcxWorker } from "./ucx-worker.js";

export interface UcxReceiverOptions extends UcxContextOptions, EventProgressOptions {
  /** Worker name shown in UCX logs. */
  name?: string;
  /**
   * The UCX_TLS environment variable as the process started with it (UCX applies it itself; this
   * tells the plane the operator chose the transports). Passed down by the CLI.
   */
  environmentTls?: string;
  /**
   * Serve UCX even where puts would be emulated (UCX tcp, shared memory into a pool UCX did not
   * allocate), as kvbridge did before it checked: a sender killed mid-put can then abort this
   * process. For tests standing in for such receivers; never set by kvbridge's nodes.
   */
  allowEmulatedPuts?: boolean;
  /**
   * Take requests' commits on the data plane (UCX active messages after their writes; the Hello
   * capability data_plane_commit): the receiver's gate (KvReceiver). Also settable later with
   * takeCommits(). Without it COMMIT messages go unanswered and senders commit over gRPC.
   */
  commitGate?: UcxCommitGate;
}

export class UcxReceiverDataPlane implements ReceiverDataPlane {
  readonly kind = "ucx" as const;
  private readonly worker: UcxWorker;
  private readonly progress: EventDrivenProgress;
  private readonly workerAddress: Buffer;
  private readonly rkey: Buffer;
  private readonly baseAddress: bigint;
  private readonly registration: PoolRegistration;
  /** True when the pool was allocated by UCX, so same-host peers write into it directly. */
  readonly ucxAllocatedPool: boolean;
  /**
   * Set when this plane serves in a degraded way the operator should hear about (log it as a
   * warning). Always null now: a plane whose puts would be emulated is refused (UcxNotDirectError).
   */
  readonly warning: string | null = null;
  private readonly direct: UcxDirectness;
  private commits: UcxCommitReceiver | null = null;
  private closed = false;

  private constructor(parts: {
    worker: UcxWorker;
    progress: EventDrivenProgress;
    workerAddress: Buffer;
    rkey: Buffer;
    baseAddress: bigint;
    registration: PoolRegistration;
    directness: UcxDirectness;
  }) {
    this.worker = parts.worker;
    this.progress = parts.progress;
    this.workerAddress = parts.workerAddress;
    this.rkey = parts.rkey;
    this.baseAddress = parts.baseAddress;
    this.registration = parts.registration;
    this.ucxAllocatedPool = parts.registration.ucxAllocated;
    this.direct = parts.directness;
  }

  /**
   * Serves `pool` over UCX. The pool must be native memory (kind "ucx" or "mmap"): one made by
   * allocatePoolMemory/allocateUcxPool. Throws UNAVAILABLE when UCX cannot be used here,
   * UcxNotDirectError (UNAVAILABLE, with `.directness`) where UCX would emulate puts into this pool
   * (UCX tcp, shared memory into memory UCX did not allocate), INVALID_ARGUMENT for a heap pool. Close this plane before closing the pool.
   */
  static create(pool: PoolMemory, opts: UcxReceiverOptions = {}): UcxReceiverDataPlane {
    if (pool.kind === "heap") {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        "the UCX data plane needs native pool memory (kind ucx or mmap) it can register; this pool is heap memory: allocate it with allocatePoolMemory() on a host where libc can be bound, or serve it over TCP",
      );
    }
    // Same-host UCX senders write a UCX-allocated pool by direct copies. Into any other memory
    // UCX 1.13 emulates the put over the receiver's shared-memory FIFO (a sender killed mid-message
    // wedges it for every later sender, or aborts the receiver), so such a pool is served without
    // posix/sysv/xpmem (and tcp) unless the operator chose the transports: only RDMA is then left,
    // and where there is none, receiverDirectness() below refuses UCX and the node serves TCP.
    const ucxAllocated = allocatedByUcxWith(pool, opts);
    let contextOpts: UcxReceiverOptions = opts;
    const chosen = opts.ucxConfig?.TLS ?? opts.environmentTls;
    if (!ucxAllocated && !opts.allowEmulatedPuts && (chosen === undefined || chosen === "")) {
      contextOpts = { ...opts, ucxConfig: { ...opts.ucxConfig, TLS: "^tcp,mm" } };
    }
    const worker = UcxWorker.create(opts.name ?? `kvbridge-receiver-${process.pid}`, contextOpts);
    const { ucx, lease } = worker;
    const { fns } = ucx;
    let registration: PoolRegistration | null = null;
    let progress: EventDrivenProgress | null = null;
    try {
      registration = registerPool(pool, lease);
      const packed: [bigint | null] = [null];
      const size: [number] = [0];
      const packStatus = fns.ucp_rkey_pack(lease.context, registration.memh, packed, size);
      if (packStatus !== UCS_OK || packed[0] === null) throw ucxError(ucx, "packing the pool's remote key (ucp_rkey_pack) failed", packStatus, "INTERNAL");
      let rkey: Buffer;
      try {
        rkey = ucx.copyOut(packed[0], Number(size[0]));
      } finally {
        fns.ucp_rkey_buffer_release(packed[0]);
      }
      // Offer UCX only where every put a peer can make lands in the pool without this process's
      // help; otherwise refuse (the node keeps its TCP data plane) and say why.
      const directness = receiverDirectness(worker, rkey, pool.address);
      if (!directness.direct && !opts.allowEmulatedPuts) throw new UcxNotDirectError("the UCX data plane is not offered", directness);
      const workerAddress = worker.address();
      progress = new EventDrivenProgress(worker, opts);
      const plane = new UcxReceiverDataPlane({ worker, progress, workerAddress, rkey, baseAddress: pool.address, registration, directness });
      // A context without active messages (UCX tcp, never offered by nodes) serves without commits.
      if (opts.commitGate && (lease.features & UCP_FEATURE_AM) !== 0n) plane.takeCommits(opts.commitGate);
      return plane;
    } catch (err) {
      progress?.stop();
      registration?.release();
      worker.destroy();
      throw err;
    }
  }

  /**
   * Takes requests' commits from now on: a COMMIT active message from a sender holding one of the
   * request's slot tokens commits it through `gate` and is answered on the sender's endpoint. Once.
   */
  takeCommits(gate: UcxCommitGate): void {
    if (this.worker.closed) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX data plane is closed");
    if (this.commits) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX data plane already takes commits");
    try {
      this.commits = new UcxCommitReceiver(this.worker, gate);
    } catch (err) {
      throw new KvbridgeError("UNAVAILABLE", `the UCX data plane cannot take commits: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Whether COMMIT messages are taken (takeCommits was called). */
  get takesCommits(): boolean {
    return this.commits !== null;
  }

  /** COMMIT messages handled so far; null when the plane does not take commits. */
  get commitStats(): Readonly<UcxCommitStats> | null {
    return this.commits?.stats ?? null;
  }

  /** Why UCX is offered: the transports and that every put lands directly in the pool. */
  directness(): UcxDirectness {
    return this.direct;
  }

  offer(): DataPlaneOffer {
    if (this.worker.closed) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX data plane is closed");
    // Copies: a caller that mutates its offer must not corrupt the next one.
    return { kind: "ucx", workerAddress: Buffer.from(this.workerAddress), rkey: Buffer.from(this.rkey), baseAddress: this.baseAddress, takesCommits: this.takesCommits };
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
      this.commits?.close();
      this.registration.release();
      this.worker.destroy();
    }
    return Promise.resolve();
  }
}
