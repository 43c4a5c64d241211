// One ucp_worker on the process's shared UCX context: its address, progress, event fd, and an
// idempotent destroy that also drops the context lease.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { acquireUcxContext, type UcxContextLease, type UcxContextOptions } from "../../../native-bindings/ucx/ucx-context.js";
import {
  UCP_WORKER_PARAM_FIELD_NAME,
  UCP_WORKER_PARAM_FIELD_THREAD_MODE,
  UCS_OK,
  UCS_THREAD_MODE_SINGLE,
} from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpWorker, UcxLibrary } from "../../../native-bindings/ucx/ucx-library.js";
import { ucxError } from "./ucx-status.js";

export class UcxWorker {
  readonly ucx: UcxLibrary;
  readonly lease: UcxContextLease;
  private handle: UcpWorker | null;

  private constructor(lease: UcxContextLease, handle: UcpWorker) {
    this.ucx = lease.ucx;
    this.lease = lease;
    this.handle = handle;
  }

  /** Creates a worker (single-threaded: only the JavaScript thread touches it). Throws UNAVAILABLE. */
  static create(name: string, opts: UcxContextOptions = {}): UcxWorker {
    const acquired = acquireUcxContext(opts);
    if (!acquired.ok) throw new KvbridgeError("UNAVAILABLE", `UCX is unavailable: ${acquired.reason}`);
    const lease = acquired.lease;
    const out: [UcpWorker | null] = [null];
    const status = lease.ucx.fns.ucp_worker_create(
      lease.context,
      { field_mask: UCP_WORKER_PARAM_FIELD_THREAD_MODE | UCP_WORKER_PARAM_FIELD_NAME, thread_mode: UCS_THREAD_MODE_SINGLE, name },
      out,
    );
    if (status !== UCS_OK || out[0] === null) {
      lease.release();
      throw ucxError(lease.ucx, `creating the UCX worker "${name}" failed`, status, "UNAVAILABLE");
    }
    return new UcxWorker(lease, out[0]);
  }

  get closed(): boolean {
    return this.handle === null;
  }

  /** The native handle; throws FAILED_PRECONDITION after destroy(). */
  get worker(): UcpWorker {
    if (this.handle === null) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX worker is closed");
    return this.handle;
  }

  /** A copy of the worker's address (what a peer needs for ucp_ep_create). */
  address(): Buffer {
    const { fns } = this.ucx;
    const addr: [bigint | null] = [null];
    const len: [number] = [0];
    const status = fns.ucp_worker_get_address(this.worker, addr, len);
    if (status !== UCS_OK || addr[0] === null) throw ucxError(this.ucx, "ucp_worker_get_address failed", status, "INTERNAL");
    try {
      return this.ucx.copyOut(addr[0], Number(len[0]));
    } finally {
      fns.ucp_worker_release_address(this.worker, addr[0]);
    }
  }

  /** One ucp_worker_progress call; returns how many events it processed. */
  progress(): number {
    return this.ucx.fns.ucp_worker_progress(this.worker);
  }

  /** The worker's event file descriptor (readable when ucp_worker_arm said so and something happened). */
  eventFd(): number {
    const fd: [number] = [-1];
    const status = this.ucx.fns.ucp_worker_get_efd(this.worker, fd);
    if (status !== UCS_OK) throw ucxError(this.ucx, "ucp_worker_get_efd failed (the context needs UCP_FEATURE_WAKEUP)", status, "INTERNAL");
    return fd[0];
  }

  /** ucp_worker_arm: UCS_OK when armed (sleep until the fd is readable), UCS_ERR_BUSY when events are pending. */
  arm(): number {
    return this.ucx.fns.ucp_worker_arm(this.worker);
  }

  /** Idempotent. Destroys the worker (UCX releases its endpoints and requests) and drops the context lease. */
  destroy(): void {
    if (this.handle === null) return;
    const h = this.handle;
    this.handle = null;
    this.ucx.fns.ucp_worker_destroy(h);
    this.lease.release();
  }
}
