// Whether UCX puts into the pool are direct: the bytes land in the registered pool by the sender's
// own copy (shared memory mapped into the sender) or by the NIC (RDMA), with nothing asked of the
// receiver's process. Anything else (UCX's tcp, shared memory into memory UCX did not allocate, ud)
// is emulated with active messages handled in the receiver's progress, where UCX 1.13 aborts the
// receiver when a sender dies mid-put (ucp_put_handler: "Endpoint timeout", SIGABRT). kvbridge
// offers and accepts UCX only where puts are direct; otherwise its own TCP data plane carries them.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { captureCStream } from "../../../native-bindings/libc/memstream.js";
import { UCP_EP_CLOSE_FLAG_FORCE, UCP_EP_PARAM_FIELD_REMOTE_ADDRESS, UCS_INPROGRESS, UCS_OK } from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpContext, UcpEp, UcpRkey, UcxLibrary } from "../../../native-bindings/ucx/ucx-library.js";
import type { UcxWorker } from "./ucx-worker.js";

/** Why UCX is (or is not) used for a pool: shown by the node's log line and its handshake. */
export interface UcxDirectness {
  /** True when every transport a peer could put over writes straight into the pool. */
  readonly direct: boolean;
  /** The transports considered (UCX names: posix, sysv, rc_mlx5, tcp, ...). */
  readonly transports: readonly string[];
  /** One sentence for people. */
  readonly why: string;
}

/** Thrown where UCX would emulate puts: the caller serves (or sends) over TCP instead. */
export class UcxNotDirectError extends KvbridgeError {
  readonly directness: UcxDirectness;
  constructor(message: string, directness: UcxDirectness) {
    super("UNAVAILABLE", `${message}: ${directness.why}`, { details: { reason: "ucx_not_direct" } });
    this.directness = directness;
  }
}

/** Shared-memory transports that put by a copy through the mapped segment (rkey_ptr). */
const MAPPED_SHM = new Set(["posix", "sysv", "xpmem"]);
/** Transports that never carry a put (self is the process itself; cm's only connect; cma has no RMA lane in 1.13). */
const NEUTRAL = new Set(["self", "cma", "sockcm", "rdmacm", "tcpsockcm", "cuda_copy", "cuda_ipc", "gdr_copy", "rocm_copy", "rocm_ipc"]);
const isRdmaRma = (tl: string): boolean => /^(rc|dc)(_|$)/.test(tl);
const isUd = (tl: string): boolean => /^ud(_|$)/.test(tl);

/** The transports (tl names) of a context's resources, from ucp_context_print_info. */
export function contextTransports(ucx: UcxLibrary, context: UcpContext): string[] | null {
  const text = captureCStream((file) => ucx.fns.ucp_context_print_info(context, file));
  if (text === null) return null;
  const out = new Set<string>();
  for (const m of text.matchAll(/resource\s+\d+\s*:.*--\s+([A-Za-z0-9_]+)\//g)) out.add(m[1]!);
  return [...out].sort();
}

/**
 * The receiver's view: which transports its context has and whether a same-host peer can map its
 * pool (checked with an endpoint to itself: ucp_rkey_ptr on its own rkey).
 */
export function receiverDirectness(worker: UcxWorker, rkey: Buffer, baseAddress: bigint): UcxDirectness {
  const transports = contextTransports(worker.ucx, worker.lease.context);
  if (transports === null) return { direct: false, transports: [], why: "the UCX context's transports could not be read (open_memstream unavailable)" };
  const hasRma = transports.some(isRdmaRma);
  const shm = transports.filter((t) => MAPPED_SHM.has(t) || t === "knem");
  const mapped = transports.some((t) => MAPPED_SHM.has(t)) && selfRkeyMapped(worker, rkey, baseAddress);
  const emulating = transports.filter((t) => t === "tcp" || (MAPPED_SHM.has(t) && !mapped) || (isUd(t) && !hasRma) || (!NEUTRAL.has(t) && !MAPPED_SHM.has(t) && t !== "knem" && !isRdmaRma(t) && !isUd(t)));
  const direct = [...shm.filter((t) => t === "knem" || mapped), ...transports.filter(isRdmaRma)];
  if (emulating.length > 0) {
    const shmNote = shm.some((t) => MAPPED_SHM.has(t)) && !mapped ? "; shared memory cannot map this pool (it was not allocated by UCX in this context, or UCX fell back to anonymous memory: give /dev/shm the pool's size)" : "";
    return {
      direct: false,
      transports,
      why: `UCX would emulate puts over ${emulating.join(",")} (the receiver's progress handles every put, and UCX 1.13 aborts the receiver when such a sender dies mid-put)${shmNote}; the TCP data plane is used instead`,
    };
  }
  if (direct.length === 0) return { direct: false, transports, why: `no UCX transport here can put into the pool (${transports.join(",") || "none"}); the TCP data plane is used instead` };
  return {
    direct: true,
    transports,
    why: `puts land directly in the pool over ${direct.join(",")}${mapped ? " (same-host senders map it: one copy per put)" : ""}`,
  };
}

/** The sender's view of one endpoint: direct when the pool is mapped here or the put lanes are RDMA. */
export function endpointDirectness(ucx: UcxLibrary, ep: UcpEp, rkey: UcpRkey, baseAddress: bigint): UcxDirectness {
  const text = captureCStream((file) => ucx.fns.ucp_ep_print_info(ep, file)) ?? "";
  const lanes = [...text.matchAll(/lane\[\d+\]:\s+\d+:([A-Za-z0-9_]+)\/\S+.*->.*$/gm)].map((m) => ({ tl: m[1]!, rma: /\brma/.test(m[0].split("->")[1] ?? "") }));
  const transports = [...new Set(lanes.map((l) => l.tl))].sort();
  const out: [bigint | null] = [null];
  if (ucx.fns.ucp_rkey_ptr(rkey, baseAddress, out) === UCS_OK && out[0] !== null) {
    return { direct: true, transports, why: "the receiver's pool is mapped into this process (shared memory): each put is one copy" };
  }
  const rma = lanes.filter((l) => l.rma);
  if (rma.length > 0 && rma.every((l) => isRdmaRma(l.tl) || l.tl === "knem")) {
    return { direct: true, transports, why: `puts go over RDMA (${[...new Set(rma.map((l) => l.tl))].join(",")})` };
  }
  return {
    direct: false,
    transports,
    why: `UCX would emulate puts over ${transports.join(",") || "its active-message lanes"} (no mapped pool, no RDMA lane), which the receiver's progress handles and UCX 1.13 can abort it over; use the TCP data plane`,
  };
}

/** ucp_rkey_ptr through an endpoint to the worker itself: does shared memory map this pool? */
function selfRkeyMapped(worker: UcxWorker, packedRkey: Buffer, baseAddress: bigint): boolean {
  const { ucx } = worker;
  const { fns } = ucx;
  const epOut: [UcpEp | null] = [null];
  if (fns.ucp_ep_create(worker.worker, { field_mask: UCP_EP_PARAM_FIELD_REMOTE_ADDRESS, address: worker.address() }, epOut) !== UCS_OK || epOut[0] === null) return false;
  const ep = epOut[0];
  try {
    const rkeyOut: [UcpRkey | null] = [null];
    if (fns.ucp_ep_rkey_unpack(ep, packedRkey, rkeyOut) !== UCS_OK || rkeyOut[0] === null) return false;
    try {
      const out: [bigint | null] = [null];
      return fns.ucp_rkey_ptr(rkeyOut[0], baseAddress, out) === UCS_OK && out[0] !== null;
    } finally {
      fns.ucp_rkey_destroy(rkeyOut[0]);
    }
  } finally {
    const r = ucx.classifyStatusPtr(fns.ucp_ep_close_nbx(ep, ucx.requestParam({ flags: UCP_EP_CLOSE_FLAG_FORCE })));
    if (r.kind === "request") {
      // A loopback endpoint closes within a few progress calls; never wait unbounded.
      for (let i = 0; i < 10_000 && fns.ucp_request_check_status(r.request) === UCS_INPROGRESS; i++) worker.progress();
      fns.ucp_request_free(r.request);
    }
  }
}
