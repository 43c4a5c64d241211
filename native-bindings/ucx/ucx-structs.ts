// koffi struct layouts for the UCX 1.13 parameter structs kvbridge fills in. UCX grows these structs
// only at the end and guards each field with field_mask, so a layout written for 1.13 stays valid
// for later 1.x libraries; UCX_1_13_LAYOUT pins the sizes and offsets we rely on (LP64).
import type { Koffi } from "../koffi/load-koffi.js";

type TypeObject = ReturnType<Koffi["struct"]>;

export interface UcxStructTypes {
  ucp_params_t: TypeObject;
  ucp_worker_params_t: TypeObject;
  ucp_err_handler_t: TypeObject;
  ucp_ep_params_t: TypeObject;
  ucp_mem_map_params_t: TypeObject;
  ucp_request_param_t: TypeObject;
  ucp_mem_attr_t: TypeObject;
  /** void ucp_err_handler_cb_t(void *arg, ucp_ep_h ep, ucs_status_t status) */
  ucp_err_handler_cb_t: TypeObject;
}

/** sizeof / offsetof as printed by a C program compiled against the UCX 1.13.1 headers (x86_64). */
export const UCX_1_13_LAYOUT = {
  ucp_params_t: {
    size: 80,
    offsets: {
      field_mask: 0, features: 8, request_size: 16, request_init: 24, request_cleanup: 32,
      tag_sender_mask: 40, mt_workers_shared: 48, estimated_num_eps: 56, estimated_num_ppn: 64, name: 72,
    },
  },
  ucp_worker_params_t: {
    size: 200,
    offsets: {
      field_mask: 0, thread_mode: 8, cpu_mask: 16, events: 144, user_data: 152, event_fd: 160,
      flags: 168, name: 176, am_alignment: 184, client_id: 192,
    },
  },
  ucp_err_handler_t: { size: 16, offsets: { cb: 0, arg: 8 } },
  ucp_ep_params_t: {
    size: 104,
    offsets: {
      field_mask: 0, address: 8, err_mode: 16, err_handler: 24, user_data: 40, flags: 48,
      sockaddr: 56, conn_request: 72, name: 80, local_sockaddr: 88,
    },
  },
  ucp_mem_map_params_t: {
    size: 40,
    offsets: { field_mask: 0, address: 8, length: 16, flags: 24, prot: 28, memory_type: 32 },
  },
  ucp_request_param_t: {
    size: 72,
    offsets: {
      op_attr_mask: 0, flags: 4, request: 8, cb: 16, datatype: 24, user_data: 32, reply_buffer: 40,
      memory_type: 48, recv_info: 56, memh: 64,
    },
  },
  ucp_mem_attr_t: { size: 32, offsets: { field_mask: 0, address: 8, length: 16, mem_type: 24 } },
} as const satisfies Record<string, { size: number; offsets: Record<string, number> }>;

const cache = new WeakMap<Koffi, UcxStructTypes>();

/**
 * Declares the structs once per koffi instance. The types are anonymous on purpose: koffi type names
 * are process-global, and anonymous types cannot collide with another module's declarations.
 */
export function ucxStructTypes(koffi: Koffi): UcxStructTypes {
  const hit = cache.get(koffi);
  if (hit) return hit;
  // struct ucs_sock_addr { const struct sockaddr *addr; socklen_t addrlen; }
  const ucs_sock_addr_t = koffi.struct({ addr: "void *", addrlen: "uint32_t" });
  const ucp_err_handler_cb_t = koffi.proto("void kvbridge_ucp_err_handler_cb(void *arg, void *ep, int status)");
  const types: UcxStructTypes = {
    ucp_params_t: koffi.struct({
      field_mask: "uint64_t",
      features: "uint64_t",
      request_size: "size_t",
      request_init: "void *",
      request_cleanup: "void *",
      tag_sender_mask: "uint64_t",
      mt_workers_shared: "int",
      estimated_num_eps: "size_t",
      estimated_num_ppn: "size_t",
      name: "const char *",
    }),
    ucp_worker_params_t: koffi.struct({
      field_mask: "uint64_t",
      thread_mode: "int",
      // ucs_cpu_set_t: { ucs_cpu_mask_t ucs_bits[UCS_CPU_SETSIZE / UCS_CPU_BITS_PER_MASK] } = 16 x unsigned long
      cpu_mask: koffi.array("uint64_t", 16),
      events: "unsigned int",
      user_data: "void *",
      event_fd: "int",
      flags: "uint64_t",
      name: "const char *",
      am_alignment: "size_t",
      client_id: "uint64_t",
    }),
    ucp_err_handler_t: koffi.struct({ cb: koffi.pointer(ucp_err_handler_cb_t), arg: "void *" }),
    ucp_ep_params_t: koffi.struct({
      field_mask: "uint64_t",
      address: "void *",
      err_mode: "int",
      err_handler: koffi.struct({ cb: koffi.pointer(ucp_err_handler_cb_t), arg: "void *" }),
      user_data: "void *",
      flags: "unsigned int",
      sockaddr: ucs_sock_addr_t,
      conn_request: "void *",
      name: "const char *",
      local_sockaddr: ucs_sock_addr_t,
    }),
    ucp_mem_map_params_t: koffi.struct({
      field_mask: "uint64_t",
      address: "void *",
      length: "size_t",
      flags: "unsigned int",
      prot: "unsigned int",
      memory_type: "int",
    }),
    ucp_request_param_t: koffi.struct({
      op_attr_mask: "uint32_t",
      flags: "uint32_t",
      request: "void *",
      cb: "void *", // union of callback pointers
      datatype: "uint64_t",
      user_data: "void *",
      reply_buffer: "void *",
      memory_type: "int",
      recv_info: "void *", // union of pointers
      memh: "void *",
    }),
    ucp_mem_attr_t: koffi.struct({
      field_mask: "uint64_t",
      address: "void *",
      length: "size_t",
      mem_type: "int",
    }),
    ucp_err_handler_cb_t,
  };
  cache.set(koffi, types);
  return types;
}
