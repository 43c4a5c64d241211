// koffi declarations for UCX active messages (UCX 1.13 API), used by the UCX data-plane commit: the
// handler and receive-parameter structs, the receive-callback prototype, ucp_worker_set_am_recv_handler
// and ucp_am_send_nbx. Bound once per loaded libucp; test/unit/ucx-layouts.test.ts checks the layouts
// and constants against the installed headers.
import { loadKoffi, type Koffi } from "../../../native-bindings/koffi/load-koffi.js";
import type { UcpEp, UcpWorker, UcsStatusPtr, UcxLibrary } from "../../../native-bindings/ucx/ucx-library.js";
import { ucxStructTypes } from "../../../native-bindings/ucx/ucx-structs.js";

type TypeObject = ReturnType<Koffi["struct"]>;

/** enum ucp_am_handler_param_field */
export const UCP_AM_HANDLER_PARAM_FIELD_ID = 1n << 0n;
export const UCP_AM_HANDLER_PARAM_FIELD_FLAGS = 1n << 1n;
export const UCP_AM_HANDLER_PARAM_FIELD_CB = 1n << 2n;
export const UCP_AM_HANDLER_PARAM_FIELD_ARG = 1n << 3n;
/** enum ucp_am_cb_flags */
export const UCP_AM_FLAG_WHOLE_MSG = 1 << 0;
/** enum ucp_send_am_flags */
export const UCP_AM_SEND_FLAG_REPLY = 1 << 0;
export const UCP_AM_SEND_FLAG_EAGER = 1 << 1;
/** ucp_am_recv_attr_t */
export const UCP_AM_RECV_ATTR_FIELD_REPLY_EP = 1n << 0n;
export const UCP_AM_RECV_ATTR_FLAG_DATA = 1n << 16n;
export const UCP_AM_RECV_ATTR_FLAG_RNDV = 1n << 17n;

/** sizeof / offsetof in the UCX 1.13.1 headers (x86_64), checked by test/unit/ucx-layouts.test.ts. */
export const UCX_1_13_AM_LAYOUT = {
  ucp_am_handler_param_t: { size: 32, offsets: { field_mask: 0, id: 8, flags: 12, cb: 16, arg: 24 } },
  ucp_am_recv_param_t: { size: 16, offsets: { recv_attr: 0, reply_ep: 8 } },
} as const satisfies Record<string, { size: number; offsets: Record<string, number> }>;

export interface UcxAmStructTypes {
  ucp_am_handler_param_t: TypeObject;
  ucp_am_recv_param_t: TypeObject;
  /** ucs_status_t ucp_am_recv_callback_t(void *arg, const void *header, size_t header_length, void *data, size_t length, const ucp_am_recv_param_t *param) */
  ucp_am_recv_callback_t: TypeObject;
}

/**
 * An active-message receive callback as koffi hands it over: pointers as BigInt (null for NULL).
 * Runs on the JavaScript thread, from inside ucp_worker_progress. Returns a ucs_status_t (UCS_OK:
 * the data is not kept).
 */
export type AmRecvCallback = (arg: bigint | null, header: bigint | null, headerLength: number, data: bigint | null, length: number, param: bigint | null) => number;

export interface AmReceiveParam {
  recvAttr: bigint;
  /** The endpoint to answer on (only when the sender asked for it: UCP_AM_SEND_FLAG_REPLY). */
  replyEp: UcpEp | null;
}

export interface UcxAm {
  readonly types: UcxAmStructTypes;
  /** Installs (cb non-null) or clears (cb null) the handler of AM `id` on `worker`; returns a ucs_status_t. */
  setHandler(worker: UcpWorker, id: number, cb: bigint | null, flags: number): number;
  /** ucp_am_send_nbx with no header; `data` is read until the returned request completes: keep it referenced. */
  send(ep: UcpEp, id: number, data: Buffer, param: Buffer): UcsStatusPtr;
  /** koffi.register for an AM receive callback; unregister with ucx.unregisterCallback. */
  register(cb: AmRecvCallback): bigint;
  /** Decodes the callback's `param` pointer. */
  receiveParam(param: bigint): AmReceiveParam;
}

const cache = new WeakMap<UcxLibrary, UcxAm>();
const typeCache = new WeakMap<Koffi, UcxAmStructTypes>();

/** The AM structs, declared once per koffi instance (anonymous structs: no global name to collide). */
export function ucxAmStructTypes(koffi: Koffi): UcxAmStructTypes {
  const hit = typeCache.get(koffi);
  if (hit) return hit;
  const ucp_am_recv_callback_t = koffi.proto(
    "int kvbridge_ucp_am_recv_cb(void *arg, void *header, size_t header_length, void *data, size_t length, void *param)",
  );
  const types: UcxAmStructTypes = {
    ucp_am_handler_param_t: koffi.struct({
      field_mask: "uint64_t",
      id: "unsigned int",
      flags: "uint32_t",
      cb: koffi.pointer(ucp_am_recv_callback_t),
      arg: "void *",
    }),
    ucp_am_recv_param_t: koffi.struct({ recv_attr: "uint64_t", reply_ep: "void *" }),
    ucp_am_recv_callback_t,
  };
  typeCache.set(koffi, types);
  return types;
}

/** Binds the AM functions of the library `ucx` was loaded from (once per library). Throws when they cannot be bound. */
export function ucxAm(ucx: UcxLibrary): UcxAm {
  const hit = cache.get(ucx);
  if (hit) return hit;
  const k = loadKoffi();
  if (!k.ok) throw new Error(k.reason);
  const koffi = k.koffi;
  // Same path as loadUcx: dlopen hands back the library already loaded.
  const lib = koffi.load(ucx.libraryPath);
  const types = ucxAmStructTypes(koffi);
  const reqParam = koffi.pointer(ucxStructTypes(koffi).ucp_request_param_t);
  const setRecvHandler = lib.func("ucp_worker_set_am_recv_handler", "int", ["void *", koffi.pointer(types.ucp_am_handler_param_t)]) as (
    worker: UcpWorker,
    param: { field_mask: bigint; id: number; flags: number; cb: bigint | null; arg: bigint | null },
  ) => number;
  const amSend = lib.func("ucp_am_send_nbx", "void *", ["void *", "unsigned int", "const void *", "size_t", "const void *", "size_t", reqParam]) as (
    ep: UcpEp,
    id: number,
    header: null,
    headerLength: number,
    data: Buffer,
    length: number,
    param: Buffer,
  ) => UcsStatusPtr;
  const cbPtr = koffi.pointer(types.ucp_am_recv_callback_t);
  const am: UcxAm = {
    types,
    setHandler(worker, id, cb, flags) {
      return setRecvHandler(worker, {
        field_mask: UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS | UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG,
        id,
        flags,
        cb,
        arg: null,
      });
    },
    send(ep, id, data, param) {
      return amSend(ep, id, null, 0, data, data.length, param);
    },
    register(cb) {
      return koffi.register(cb, cbPtr) as unknown as bigint;
    },
    receiveParam(param) {
      const p = koffi.decode(param, types.ucp_am_recv_param_t) as { recv_attr: bigint | number; reply_ep: bigint | null };
      const replyEp = p.reply_ep === null || p.reply_ep === 0n ? null : (p.reply_ep as UcpEp);
      return { recvAttr: BigInt(p.recv_attr), replyEp };
    },
  };
  cache.set(ucx, am);
  return am;
}
