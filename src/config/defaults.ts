// The one table of kvbridge's defaults. The CLI reads flags and environment variables and falls back
// to these; every layer below receives the resulting values and never picks its own.

// ---- Decode node: the KV store's timers -------------------------------------------------------

/** An allocation not renewed or committed within this is released: a sender renews every third of it, so one lost renew is survived. */
export const DEFAULT_LEASE_MS = 10_000;
/** Slots of aborted or expired writes stay unused this long, so a late one-sided write (a UCX put, a stalled TCP frame) cannot land in a reused slot; as long as the TCP receiver's stall bound. */
export const DEFAULT_QUARANTINE_MS = 30_000;
/** A committed request that is never consumed gives its pins back after this: long enough for a decode engine to pick it up under load. */
export const DEFAULT_HOLD_MS = 60_000;
/** How long Generate waits for a request's KV chunks before recomputing or failing: a transfer of a long prompt fits well within it. */
export const DEFAULT_KV_WAIT_MS = 30_000;

// ---- Decode node: the pool --------------------------------------------------------------------

/** Slots of a decode node's pinned pool: 256 x 1 MiB = 256 MiB pinned, room for several long prompts in flight on a small node. */
export const DEFAULT_POOL_SLOTS = 256;
/** Bytes per slot, the largest chunk a node accepts; senders learn it from Hello, and larger models need --slot-bytes raised. */
export const DEFAULT_SLOT_BYTES = 1 << 20;
/** Slots of `kvbridge up`'s pool: its slots are sized to the default model's chunks (about 260 KiB), so twice as many still take half of a decode node's default memory. */
export const DEFAULT_UP_POOL_SLOTS = 512;
/** Slot sizes are rounded up to this, so every slot starts on a page boundary (UCX registration, mmap). */
export const SLOT_ALIGNMENT_BYTES = 4096;

// ---- Engine -----------------------------------------------------------------------------------

/** Tokens per KV chunk, the unit of dedup and transfer; part of the fingerprint, so prefill and decode must agree. */
export const DEFAULT_CHUNK_TOKENS = 128;

// ---- Limits on what a caller may send ---------------------------------------------------------

/** Longest prompt accepted, in characters: refused before tokenizing, so one caller cannot make a node tokenize without bound. */
export const MAX_PROMPT_CHARS = 4 * 1024 * 1024;
/** Largest HTTP body the router reads: room for a prompt near MAX_PROMPT_CHARS with its JSON, and a bound on what one request makes it buffer. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Most chat messages in one request: refused before they are joined into a prompt, so a request of thousands of tiny messages costs nothing to refuse. */
export const MAX_CHAT_MESSAGES = 2048;
/** Prompts up to this many characters are tokenized on the event loop (well under a millisecond); longer ones on the engine's tokenizer thread, so no prompt stalls other requests. */
export const TOKENIZE_INLINE_CHARS = 4096;

// ---- Timeouts of calls between nodes ----------------------------------------------------------

/** Bound on each control-plane call of a transfer (Hello, Alloc, Commit, Renew): a live receiver answers in milliseconds. */
export const RPC_TIMEOUT_MS = 10_000;
/** Bound on a sender's Abort after a failure: short, since the receiver's lease releases the request anyway. */
export const ABORT_TIMEOUT_MS = 5_000;
/** Bound on a router's Plan call (tokenize and split a prompt). */
export const PLAN_TIMEOUT_MS = 30_000;
/** Bound on a router's MatchPrefix call to a decode node: affinity is a hint, a slow node is skipped. */
export const MATCH_PREFIX_TIMEOUT_MS = 1_000;
/** Bound on a whole Prefill call (evaluate the prompt and push its KV): a long prompt on a CPU engine takes minutes. */
export const PREFILL_TIMEOUT_MS = 600_000;
/** Bound on a whole Generate stream: a long completion on a CPU engine takes minutes. */
export const GENERATE_TIMEOUT_MS = 600_000;
/** How long AwaitReady waits when the caller gives no bound. */
export const AWAIT_READY_MS = 10_000;

// ---- Lifecycle --------------------------------------------------------------------------------

/** On SIGTERM, how long in-flight work may take before the node stops anyway: Kubernetes' grace period is 30 s. */
export const DRAIN_TIMEOUT_MS = 30_000;
/** `kvbridge up`'s drain on Ctrl-C: a person is waiting at the terminal. */
export const UP_DRAIN_TIMEOUT_MS = 10_000;

// ---- Data plane -------------------------------------------------------------------------------

/** TCP data connections per peer: two keep one request's frames from queueing behind another's. */
export const TCP_CONNECTIONS = 2;

// ---- Addresses --------------------------------------------------------------------------------

/** A prefill node's gRPC address. */
export const PREFILL_LISTEN = "127.0.0.1:50051";
/** A decode node's gRPC control plane (KvReceiver, Inspect, Admin, Decode, health). */
export const DECODE_LISTEN = "127.0.0.1:50061";
/** A decode node's TCP data plane, next to its control plane. */
export const DECODE_DATA_LISTEN = "127.0.0.1:50062";
/** The router's OpenAI HTTP API. */
export const ROUTER_LISTEN = "127.0.0.1:8000";
/** `kvbridge up`'s router port (the same as ROUTER_LISTEN's). */
export const UP_PORT = 8000;

// ---- Logs -------------------------------------------------------------------------------------

/** pino's levels, the choices of every --log-level flag. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** Nodes (decode, prefill, router) log requests at info: a service's log is read afterwards. */
export const NODE_LOG_LEVEL: LogLevel = "info";
/** Tools run by a person (up, send) log warnings only: their own output is the report. */
export const TOOL_LOG_LEVEL: LogLevel = "warn";

// ---- kvctl ------------------------------------------------------------------------------------

/** Bound on each kvctl call to a node: an operator wants a quick "unreachable", not a hang. */
export const KVCTL_TIMEOUT_MS = 5_000;
/** kvctl counts allocating requests whose lease ends within this as "near expiry" (a stalled sender). */
export const KVCTL_NEAR_EXPIRY_MS = 2_000;
/** kvctl status measures the transfer rate between two samples this far apart. */
export const KVCTL_SAMPLE_MS = 1_000;
/** kvctl watch redraws this often. */
export const KVCTL_WATCH_INTERVAL_MS = 1_000;

// ---- Router: recovery and bounded waits -------------------------------------------------------

/** First reconnect delay of a router's channel to a node: a restarted node is found again at once. */
export const ROUTER_RECONNECT_INITIAL_BACKOFF_MS = 100;
/** Longest reconnect delay of a router's channel (grpc-js adds up to 20% jitter, so under 1 s), whatever the outage length; gRPC's own default is 120 s. */
export const ROUTER_RECONNECT_MAX_BACKOFF_MS = 800;
/** The router asks each node's grpc.health.v1 this often: a node that says SERVING is back in rotation within it. */
export const ROUTER_HEALTH_INTERVAL_MS = 250;
/** Bound on one health Check: a node that does not answer within it (frozen, partitioned) is taken out of rotation. */
export const ROUTER_HEALTH_TIMEOUT_MS = 1_000;
/**
 * HTTP/2 keepalive on a router's channels: a PING after this long without one answered, so a
 * connection stalled by a network partition (the kernel keeps it open) is found and replaced.
 */
export const ROUTER_KEEPALIVE_TIME_MS = 1_000;
/**
 * A channel whose PING is not answered within this is closed. Longer than two health deadlines, so a
 * busy node is judged by its health (and leaves rotation cleanly) before its connection is torn down.
 */
export const ROUTER_KEEPALIVE_TIMEOUT_MS = 3_000;
/** Longest silence of a decode node within a running generation before the router ends the stream with an error. */
export const ROUTER_GENERATE_IDLE_MS = 30_000;
/** How often the router lists every node's models again (ListModels), and the bound on one such call. */
export const ROUTER_MODELS_REFRESH_MS = 5_000;

// ---- Models on a node -------------------------------------------------------------------------

/** Models resident at once on a node (--models-max): a load beyond it evicts the least recently used idle model. */
export const DEFAULT_MODELS_MAX = 4;
/** How long a load waits for a busy model to become idle when every resident model has requests in flight; 0 refuses at once (RESOURCE_EXHAUSTED models_busy). */
export const DEFAULT_MODEL_LOAD_WAIT_MS = 10_000;
/** A reload with other options, or an unload, waits this long for the model's requests in flight to end; past it the model stays loaded as it was and the call is refused. */
export const DEFAULT_MODEL_DRAIN_MS = 30_000;
/** A model load not finished within this is aborted and the model marked failed: a large GGUF read from a slow disk takes minutes. */
export const DEFAULT_MODEL_LOAD_TIMEOUT_MS = 600_000;
/** Bound on freeing one model (its close): past it the model counts as unloaded and the overrun is reported. */
export const DEFAULT_MODEL_CLOSE_TIMEOUT_MS = 30_000;

// ---- Router HTTP edge -------------------------------------------------------------------------

/** Most bytes of a refused request's body (413, 401, 404 ...) the router reads and discards before answering, so an uploading client reads the status instead of a reset; past it the connection is closed after the answer. */
export const ROUTER_BODY_DISCARD_BYTES = 64 * 1024 * 1024;

// ---- Prefill prefix cache ---------------------------------------------------------------------

/**
 * Bytes of KV chunks a prefill engine keeps by chunk key so that a prompt whose leading chunks it
 * already cut is not evaluated again (--prefix-cache-bytes; 0 turns the cache off). 256 MiB holds
 * 128 Ki tokens of the default model's KV (2 KiB per token), 16 Ki of the medium model's.
 */
export const PREFIX_CACHE_BYTES = 256 * 1024 * 1024;

/**
 * HTTP/2 keepalive of a sender's control channel to a decode node: a ping after 1 s without one
 * answered, the connection dropped after 3 s without an answer (as the router's), so a partition's
 * stalled connection is gone before the network heals and the next push connects afresh instead of
 * waiting for the kernel's next retransmission (gRPC servers here accept pings at this rate).
 */
export const SENDER_KEEPALIVE_TIME_MS = 1_000;
export const SENDER_KEEPALIVE_TIMEOUT_MS = 3_000;
