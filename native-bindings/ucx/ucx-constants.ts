// Constants from the UCX 1.13 headers (ucp/api/ucp.h, ucp/api/ucp_def.h, ucs/type/status.h) that
// kvbridge passes to or reads from libucp. Values checked against the installed headers by
// test/unit/ucx-layouts.test.ts.

/** The UCP API version these constants and the struct layouts were written for. */
export const UCP_API_MAJOR = 1;
export const UCP_API_MINOR = 13;

/** ucs_status_t (subset). Negative values are errors. */
export const UCS_OK = 0;
export const UCS_INPROGRESS = 1;
export const UCS_ERR_NO_MESSAGE = -1;
export const UCS_ERR_NO_RESOURCE = -2;
export const UCS_ERR_NO_MEMORY = -4;
export const UCS_ERR_UNREACHABLE = -6;
export const UCS_ERR_BUSY = -15;
export const UCS_ERR_CANCELED = -16;
export const UCS_ERR_TIMED_OUT = -20;
export const UCS_ERR_CONNECTION_RESET = -25;
export const UCS_ERR_ENDPOINT_TIMEOUT = -80;
/** Error pointers returned as ucs_status_ptr_t lie in [UCS_ERR_LAST, -1] (UCS_PTR_IS_ERR). */
export const UCS_ERR_LAST = -100;

/** ucp_params_t.field_mask bits (enum ucp_params_field). */
export const UCP_PARAM_FIELD_FEATURES = 1n << 0n;
export const UCP_PARAM_FIELD_MT_WORKERS_SHARED = 1n << 5n;
export const UCP_PARAM_FIELD_ESTIMATED_NUM_EPS = 1n << 6n;
export const UCP_PARAM_FIELD_NAME = 1n << 8n;

/** ucp_params_t.features bits (enum ucp_feature). */
export const UCP_FEATURE_RMA = 1n << 1n;
export const UCP_FEATURE_WAKEUP = 1n << 4n;
export const UCP_FEATURE_AM = 1n << 6n;

/** ucp_worker_params_t.field_mask bits (enum ucp_worker_params_field). */
export const UCP_WORKER_PARAM_FIELD_THREAD_MODE = 1n << 0n;
export const UCP_WORKER_PARAM_FIELD_EVENTS = 1n << 2n;
export const UCP_WORKER_PARAM_FIELD_NAME = 1n << 6n;

/** ucs_thread_mode_t */
export const UCS_THREAD_MODE_SINGLE = 0;

/** ucp_wakeup_event_types */
export const UCP_WAKEUP_RMA = 1 << 0;
export const UCP_WAKEUP_TX = 1 << 10;
export const UCP_WAKEUP_RX = 1 << 11;

/** ucp_ep_params_t.field_mask bits (enum ucp_ep_params_field). */
export const UCP_EP_PARAM_FIELD_REMOTE_ADDRESS = 1n << 0n;
export const UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE = 1n << 1n;
export const UCP_EP_PARAM_FIELD_ERR_HANDLER = 1n << 2n;
export const UCP_EP_PARAM_FIELD_USER_DATA = 1n << 3n;
export const UCP_EP_PARAM_FIELD_NAME = 1n << 7n;

/** ucp_err_handling_mode_t */
export const UCP_ERR_HANDLING_MODE_NONE = 0;
export const UCP_ERR_HANDLING_MODE_PEER = 1;

/** ucp_mem_map_params_t.field_mask bits (enum ucp_mem_map_params_field). */
export const UCP_MEM_MAP_PARAM_FIELD_ADDRESS = 1n << 0n;
export const UCP_MEM_MAP_PARAM_FIELD_LENGTH = 1n << 1n;
export const UCP_MEM_MAP_PARAM_FIELD_FLAGS = 1n << 2n;
export const UCP_MEM_MAP_PARAM_FIELD_PROT = 1n << 3n;
export const UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE = 1n << 4n;

/** ucp_mem_map_params_t.flags bits (UCP_MEM_MAP_*). */
export const UCP_MEM_MAP_NONBLOCK = 1 << 0;
export const UCP_MEM_MAP_ALLOCATE = 1 << 1;

/** ucp_mem_attr_t.field_mask bits (enum ucp_mem_attr_field). */
export const UCP_MEM_ATTR_FIELD_ADDRESS = 1n << 0n;
export const UCP_MEM_ATTR_FIELD_LENGTH = 1n << 1n;

/** ucp_mem_map_params_t.prot bits (UCP_MEM_MAP_PROT_*). */
export const UCP_MEM_MAP_PROT_LOCAL_READ = 1 << 0;
export const UCP_MEM_MAP_PROT_LOCAL_WRITE = 1 << 1;
export const UCP_MEM_MAP_PROT_REMOTE_READ = 1 << 8;
export const UCP_MEM_MAP_PROT_REMOTE_WRITE = 1 << 9;

/** ucs_memory_type_t */
export const UCS_MEMORY_TYPE_HOST = 0;

/** ucp_request_param_t.op_attr_mask bits (enum ucp_op_attr_t). */
export const UCP_OP_ATTR_FIELD_FLAGS = 1 << 4;

/** ucp_ep_close_flags_t */
export const UCP_EP_CLOSE_FLAG_FORCE = 1 << 0;
