// koffi declarations for the part of libucp (UCX) that kvbridge uses: context, worker, endpoint,
// memory registration, rkeys, one-sided put, flush, request polling and the worker's event fd.
// libucp is loaded at run time; when it is missing or unusable, loadUcx() says why instead of throwing.
import { loadKoffi, type Koffi } from "../koffi/load-koffi.js";
import { UCP_API_MAJOR, UCP_API_MINOR, UCS_ERR_LAST, UCS_OK } from "./ucx-constants.js";
import { ucxStructTypes, type UcxStructTypes } from "./ucx-structs.js";

declare const handleBrand: unique symbol;
/** A native UCX handle: a non-null pointer as koffi returns it (BigInt), branded by its C type. */
export type UcxHandle<T extends string> = bigint & { readonly [handleBrand]: T };
export type UcpConfig = UcxHandle<"ucp_config_t *">;
export type UcpContext = UcxHandle<"ucp_context_h">;
export type UcpWorker = UcxHandle<"ucp_worker_h">;
export type UcpEp = UcxHandle<"ucp_ep_h">;
export type UcpMem = UcxHandle<"ucp_mem_h">;
export type UcpRkey = UcxHandle<"ucp_rkey_h">;
export type UcpRequest = UcxHandle<"request">;
/** ucs_status_ptr_t as koffi returns a `void *`: null (done), an error pointer, or a request. */
export type UcsStatusPtr = bigint | null;

type TypeObject = ReturnType<Koffi["struct"]>;

/** One-element arrays are koffi's output parameters. */
type Out<T> = [T];

export interface UcpParams {
  field_mask: bigint;
  features?: bigint;
  mt_workers_shared?: number;
  estimated_num_eps?: number;
  name?: string | null;
}
export interface UcpWorkerParams {
  field_mask: bigint;
  thread_mode?: number;
  events?: number;
  name?: string | null;
}
export interface UcpEpParams {
  field_mask: bigint;
  /** The remote worker address bytes (koffi passes the Buffer's memory). */
  address?: Buffer;
  err_mode?: number;
  err_handler?: { cb: bigint | null; arg: bigint | null };
  user_data?: bigint | null;
  name?: string | null;
}
/** ucp_mem_attr_t: set field_mask, read the rest after ucp_mem_query. */
export interface UcpMemAttr {
  field_mask: bigint;
  address: bigint | null;
  length: number;
  mem_type: number;
}
export interface UcpMemMapParams {
  field_mask: bigint;
  address?: bigint;
  length?: number;
  flags?: number;
  prot?: number;
  memory_type?: number;
}

/** The raw functions, one to one with the C API; out-parameters are one-element arrays. */
export interface UcpFunctions {
  ucp_get_version(major: Out<number>, minor: Out<number>, release: Out<number>): void;
  ucp_get_version_string(): string;
  ucp_config_read(envPrefix: string | null, filename: string | null, config: Out<UcpConfig | null>): number;
  ucp_config_release(config: UcpConfig): void;
  ucp_config_modify(config: UcpConfig, name: string, value: string): number;
  ucp_init_version(apiMajor: number, apiMinor: number, params: UcpParams, config: UcpConfig | null, context: Out<UcpContext | null>): number;
  ucp_cleanup(context: UcpContext): void;
  ucp_worker_create(context: UcpContext, params: UcpWorkerParams, worker: Out<UcpWorker | null>): number;
  ucp_worker_destroy(worker: UcpWorker): void;
  ucp_worker_get_address(worker: UcpWorker, address: Out<bigint | null>, length: Out<number>): number;
  ucp_worker_release_address(worker: UcpWorker, address: bigint): void;
  ucp_worker_progress(worker: UcpWorker): number;
  ucp_worker_get_efd(worker: UcpWorker, fd: Out<number>): number;
  ucp_worker_arm(worker: UcpWorker): number;
  ucp_worker_signal(worker: UcpWorker): number;
  ucp_worker_flush_nbx(worker: UcpWorker, param: Buffer): UcsStatusPtr;
  ucp_ep_create(worker: UcpWorker, params: UcpEpParams, ep: Out<UcpEp | null>): number;
  ucp_ep_close_nbx(ep: UcpEp, param: Buffer): UcsStatusPtr;
  ucp_ep_flush_nbx(ep: UcpEp, param: Buffer): UcsStatusPtr;
  ucp_mem_map(context: UcpContext, params: UcpMemMapParams, memh: Out<UcpMem | null>): number;
  ucp_mem_unmap(context: UcpContext, memh: UcpMem): number;
  ucp_mem_query(memh: UcpMem, attr: UcpMemAttr): number;
  ucp_rkey_pack(context: UcpContext, memh: UcpMem, buffer: Out<bigint | null>, size: Out<number>): number;
  ucp_rkey_buffer_release(buffer: bigint): void;
  ucp_ep_rkey_unpack(ep: UcpEp, rkeyBuffer: Buffer, rkey: Out<UcpRkey | null>): number;
  ucp_rkey_destroy(rkey: UcpRkey): void;
  /** `buffer` is read asynchronously until the returned request completes: keep it referenced. */
  ucp_put_nbx(ep: UcpEp, buffer: Buffer, count: number, remoteAddr: bigint, rkey: UcpRkey, param: Buffer): UcsStatusPtr;
  ucp_request_check_status(request: UcpRequest): number;
  ucp_request_free(request: UcpRequest): void;
  ucs_status_string(status: number): string;
  /** Local address of remote memory mapped into this process (shared memory), or an error status. */
  ucp_rkey_ptr(rkey: UcpRkey, remoteAddr: bigint, addr: Out<bigint | null>): number;
  /** Diagnostics written to a C `FILE *` (see native-bindings/libc/memstream.ts). */
  ucp_context_print_info(context: UcpContext, stream: bigint): void;
  ucp_ep_print_info(ep: UcpEp, stream: bigint): void;
  ucp_config_print(config: UcpConfig, stream: bigint, title: string | null, flags: number): void;
}

export interface UcxVersion {
  major: number;
  minor: number;
  release: number;
  /** "1.13.1" */
  text: string;
}

/** A callback UCX may call from inside ucp_worker_progress when an endpoint fails. */
export type ErrHandlerCallback = (arg: bigint | null, ep: bigint, status: number) => void;

export interface UcxLibrary {
  /** What was passed to dlopen. */
  readonly libraryPath: string;
  readonly version: UcxVersion;
  readonly fns: UcpFunctions;
  readonly structs: UcxStructTypes;
  /** A zeroed ucp_request_param_t with only op_attr_mask/flags set (no callback: requests are polled). */
  requestParam(opts?: { flags?: number }): Buffer;
  /** ucs_status_string(status) plus the numeric code, for messages. */
  describeStatus(status: number): string;
  /** Decodes a ucs_status_ptr_t: done (UCS_OK), failed (negative status), or a request to poll. */
  classifyStatusPtr(ptr: UcsStatusPtr): StatusPtrKind;
  /** koffi.register for the endpoint error handler; call unregisterCallback when the endpoint is gone. */
  registerErrHandler(cb: ErrHandlerCallback): bigint;
  unregisterCallback(ptr: bigint): void;
  /** Copies `length` native bytes at `address` into a new Buffer. */
  copyOut(address: bigint, length: number): Buffer;
  /** A zero-copy Buffer over `length` native bytes at `address` (koffi.view): valid while that memory is mapped. */
  view(address: bigint, length: number): Buffer;
}

export type StatusPtrKind =
  | { kind: "done" }
  | { kind: "failed"; status: number }
  | { kind: "request"; request: UcpRequest };

export type UcxLoadResult = { available: true; ucx: UcxLibrary } | { available: false; reason: string };

export interface LoadUcxOptions {
  /** Library to dlopen; default: $KVBRIDGE_LIBUCP, else "libucp.so.0" (the runtime soname). */
  libraryPath?: string;
}

export const DEFAULT_LIBUCP = "libucp.so.0";

const cache = new Map<string, UcxLoadResult>();

/** The library path loadUcx() would use for these options. */
export function resolveLibucpPath(opts: LoadUcxOptions = {}): string {
  const fromEnv = process.env.KVBRIDGE_LIBUCP;
  return opts.libraryPath ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : DEFAULT_LIBUCP);
}

/**
 * Loads and binds libucp once per path. Never throws: a missing library, a missing symbol or a
 * version older than the layouts were written for yields `{ available: false, reason }`.
 */
export function loadUcx(opts: LoadUcxOptions = {}): UcxLoadResult {
  const libraryPath = resolveLibucpPath(opts);
  const hit = cache.get(libraryPath);
  if (hit) return hit;
  const result = bind(libraryPath);
  cache.set(libraryPath, result);
  return result;
}

/** 2^64: error pointers are small negative numbers seen as unsigned 64-bit values. */
const TWO_POW_64 = 1n << 64n;
const FIRST_ERROR_PTR = TWO_POW_64 + BigInt(UCS_ERR_LAST);

function bind(libraryPath: string): UcxLoadResult {
  const k = loadKoffi();
  if (!k.ok) return { available: false, reason: k.reason };
  const koffi = k.koffi;
  // UCX's memory-event machinery (libucm) is unsafe in a process whose other threads allocate while
  // UCX initialises, which is every Node process (V8 and libuv threads):
  //  - its malloc hooks swap the allocator for UCX's own heap: receivers crashed with SIGSEGV on
  //    heap addresses in about one integration run in two;
  //  - installing its mmap hooks probes them with sbrk(+page) then sbrk(-page), which cuts off a
  //    brk growth another thread made in between; with malloc hooks already off, about one process
  //    start in a hundred still crashed later in V8's GC or compiler on an unmapped heap address.
  // The events only feed registration caches of RDMA NICs (shared memory and tcp do not use them),
  // and must be decided before libucs initialises, so they are turned off here unless the operator
  // set these variables (docs/ucx.md: RDMA deployments).
  process.env.UCX_MEM_MALLOC_HOOKS ??= "no";
  process.env.UCX_MEM_EVENTS ??= "no";
  let lib: ReturnType<Koffi["load"]>;
  try {
    lib = koffi.load(libraryPath);
  } catch (err) {
    return { available: false, reason: `cannot load ${libraryPath}: ${errMessage(err)} (install libucx0, or set KVBRIDGE_LIBUCP to libucp's path)` };
  }
  try {
    const s = ucxStructTypes(koffi);
    const outPtr = koffi.out(koffi.pointer("void *"));
    const outSize = koffi.out(koffi.pointer("size_t"));
    const outUint = koffi.out(koffi.pointer("unsigned int"));
    const outInt = koffi.out(koffi.pointer("int"));
    const params = (t: UcxStructTypes[keyof UcxStructTypes]) => koffi.pointer(t);
    const reqParam = koffi.pointer(s.ucp_request_param_t);
    const f = (name: string, ret: string, args: Array<string | TypeObject | ReturnType<Koffi["out"]>>) => lib.func(name, ret, args);
    const fns = {
      ucp_get_version: f("ucp_get_version", "void", [outUint, outUint, outUint]),
      ucp_get_version_string: f("ucp_get_version_string", "const char *", []),
      ucp_config_read: f("ucp_config_read", "int", ["const char *", "const char *", outPtr]),
      ucp_config_release: f("ucp_config_release", "void", ["void *"]),
      ucp_config_modify: f("ucp_config_modify", "int", ["void *", "const char *", "const char *"]),
      ucp_init_version: f("ucp_init_version", "int", ["unsigned int", "unsigned int", params(s.ucp_params_t), "void *", outPtr]),
      ucp_cleanup: f("ucp_cleanup", "void", ["void *"]),
      ucp_worker_create: f("ucp_worker_create", "int", ["void *", params(s.ucp_worker_params_t), outPtr]),
      ucp_worker_destroy: f("ucp_worker_destroy", "void", ["void *"]),
      ucp_worker_get_address: f("ucp_worker_get_address", "int", ["void *", outPtr, outSize]),
      ucp_worker_release_address: f("ucp_worker_release_address", "void", ["void *", "void *"]),
      ucp_worker_progress: f("ucp_worker_progress", "unsigned int", ["void *"]),
      ucp_worker_get_efd: f("ucp_worker_get_efd", "int", ["void *", outInt]),
      ucp_worker_arm: f("ucp_worker_arm", "int", ["void *"]),
      ucp_worker_signal: f("ucp_worker_signal", "int", ["void *"]),
      ucp_worker_flush_nbx: f("ucp_worker_flush_nbx", "void *", ["void *", reqParam]),
      ucp_ep_create: f("ucp_ep_create", "int", ["void *", params(s.ucp_ep_params_t), outPtr]),
      ucp_ep_close_nbx: f("ucp_ep_close_nbx", "void *", ["void *", reqParam]),
      ucp_ep_flush_nbx: f("ucp_ep_flush_nbx", "void *", ["void *", reqParam]),
      ucp_mem_map: f("ucp_mem_map", "int", ["void *", params(s.ucp_mem_map_params_t), outPtr]),
      ucp_mem_unmap: f("ucp_mem_unmap", "int", ["void *", "void *"]),
      ucp_mem_query: f("ucp_mem_query", "int", ["void *", koffi.inout(koffi.pointer(s.ucp_mem_attr_t))]),
      ucp_rkey_pack: f("ucp_rkey_pack", "int", ["void *", "void *", outPtr, outSize]),
      ucp_rkey_buffer_release: f("ucp_rkey_buffer_release", "void", ["void *"]),
      ucp_ep_rkey_unpack: f("ucp_ep_rkey_unpack", "int", ["void *", "const void *", outPtr]),
      ucp_rkey_destroy: f("ucp_rkey_destroy", "void", ["void *"]),
      ucp_put_nbx: f("ucp_put_nbx", "void *", ["void *", "const void *", "size_t", "uint64_t", "void *", reqParam]),
      ucp_request_check_status: f("ucp_request_check_status", "int", ["void *"]),
      ucp_request_free: f("ucp_request_free", "void", ["void *"]),
      ucs_status_string: f("ucs_status_string", "const char *", ["int"]),
      ucp_rkey_ptr: f("ucp_rkey_ptr", "int", ["void *", "uint64_t", outPtr]),
      ucp_context_print_info: f("ucp_context_print_info", "void", ["void *", "void *"]),
      ucp_ep_print_info: f("ucp_ep_print_info", "void", ["void *", "void *"]),
      ucp_config_print: f("ucp_config_print", "void", ["void *", "void *", "const char *", "int"]),
    } as unknown as UcpFunctions;

    const major: Out<number> = [0];
    const minor: Out<number> = [0];
    const release: Out<number> = [0];
    fns.ucp_get_version(major, minor, release);
    const version: UcxVersion = { major: major[0], minor: minor[0], release: release[0], text: `${major[0]}.${minor[0]}.${release[0]}` };
    // UCX keeps 1.x ABI-compatible for callers of an older API version (field_mask-guarded structs,
    // ucp_init_version); an older library may lack fields or functions our layouts assume.
    if (version.major !== UCP_API_MAJOR || version.minor < UCP_API_MINOR) {
      return {
        available: false,
        reason: `${libraryPath} is UCX ${version.text}; kvbridge's bindings need UCX ${UCP_API_MAJOR}.${UCP_API_MINOR} or a later 1.x`,
      };
    }

    const requestParamOffsets = {
      op_attr_mask: koffi.offsetof(s.ucp_request_param_t, "op_attr_mask"),
      flags: koffi.offsetof(s.ucp_request_param_t, "flags"),
    };
    const requestParamSize = koffi.sizeof(s.ucp_request_param_t);
    const errHandlerPtrType = koffi.pointer(s.ucp_err_handler_cb_t);

    const ucx: UcxLibrary = {
      libraryPath,
      version,
      fns,
      structs: s,
      requestParam(opts = {}) {
        const buf = Buffer.alloc(requestParamSize);
        if (opts.flags !== undefined) {
          buf.writeUInt32LE(1 << 4 /* UCP_OP_ATTR_FIELD_FLAGS */, requestParamOffsets.op_attr_mask);
          buf.writeUInt32LE(opts.flags, requestParamOffsets.flags);
        }
        return buf;
      },
      describeStatus(status) {
        return `${fns.ucs_status_string(status)} (${status})`;
      },
      classifyStatusPtr(ptr) {
        if (ptr === null || ptr === 0n) return { kind: "done" };
        if (ptr >= FIRST_ERROR_PTR) {
          const status = Number(ptr - TWO_POW_64);
          return status === UCS_OK ? { kind: "done" } : { kind: "failed", status };
        }
        return { kind: "request", request: ptr as UcpRequest };
      },
      registerErrHandler(cb) {
        return koffi.register(cb, errHandlerPtrType);
      },
      unregisterCallback(ptr) {
        koffi.unregister(ptr);
      },
      view(address, length) {
        return Buffer.from(koffi.view(address, length));
      },
      copyOut(address, length) {
        return Buffer.from(new Uint8Array(koffi.view(address, length)));
      },
    };
    return { available: true, ucx };
  } catch (err) {
    return { available: false, reason: `${libraryPath} loaded but could not be bound: ${errMessage(err)}` };
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
