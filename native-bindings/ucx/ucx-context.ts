// The process's ucp_context per libucp and configuration (UCX recommends one context per process):
// workers, endpoints and memory registrations hang off it, so a pool allocated by UCX can be handed
// to a receiver's worker without registering it twice. Reference-counted: the last release cleans up.
import {
  UCP_API_MAJOR,
  UCP_API_MINOR,
  UCP_FEATURE_AM,
  UCP_FEATURE_RMA,
  UCP_FEATURE_WAKEUP,
  UCP_PARAM_FIELD_FEATURES,
  UCP_PARAM_FIELD_MT_WORKERS_SHARED,
  UCP_PARAM_FIELD_NAME,
  UCS_OK,
} from "./ucx-constants.js";
import { captureCStream } from "../libc/memstream.js";
import { loadUcx, resolveLibucpPath, type LoadUcxOptions, type UcpConfig, type UcpContext, type UcxLibrary } from "./ucx-library.js";

export interface UcxContextOptions extends LoadUcxOptions {
  /**
   * UCX configuration applied on top of the UCX_* environment (ucp_config_modify), without the
   * UCX_ prefix: { TLS: "tcp,self" }. Components that share a pool must use the same settings.
   */
  ucxConfig?: Readonly<Record<string, string>>;
}

export interface UcxContextLease {
  readonly ucx: UcxLibrary;
  readonly context: UcpContext;
  /** The ucp_feature bits the context was created with (UCP_FEATURE_AM: active messages work on it). */
  readonly features: bigint;
  /** Idempotent: drops this lease; the context is cleaned up when the last lease goes. */
  release(): void;
}

export type UcxContextResult = { ok: true; lease: UcxContextLease } | { ok: false; reason: string };

interface Shared {
  context: UcpContext;
  features: bigint;
  leases: number;
}

const shared = new Map<string, Shared>();

function sortedConfig(opts: UcxContextOptions): Array<[string, string]> {
  return Object.entries(opts.ucxConfig ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Which shared context these options lease: equal keys, same ucp_context. */
export function ucxContextKey(opts: UcxContextOptions = {}): string {
  return JSON.stringify([resolveLibucpPath(opts), sortedConfig(opts)]);
}

/**
 * Leases the shared context for this libucp and configuration, creating it on first use with the
 * features kvbridge needs (RMA for put, WAKEUP for event-driven progress, AM for the data-plane
 * commit and its answer, except over UCX tcp: activeMessagesFor). Never throws.
 */
export function acquireUcxContext(opts: UcxContextOptions = {}): UcxContextResult {
  const loaded = loadUcx(opts);
  if (!loaded.available) return { ok: false, reason: loaded.reason };
  const ucx = loaded.ucx;
  const config = sortedConfig(opts);
  const key = ucxContextKey(opts);
  let entry = shared.get(key);
  if (!entry) {
    const created = createContext(ucx, config);
    if (!created.ok) return created;
    entry = { context: created.context, features: created.features, leases: 0 };
    shared.set(key, entry);
  }
  entry.leases += 1;
  const held = entry;
  let released = false;
  return {
    ok: true,
    lease: {
      ucx,
      context: held.context,
      features: held.features,
      release(): void {
        if (released) return;
        released = true;
        held.leases -= 1;
        if (held.leases === 0) {
          shared.delete(key);
          ucx.fns.ucp_cleanup(held.context);
        }
      },
    },
  };
}

/** The transports kvbridge gives UCX where the operator chose none: everything but tcp. */
export const DEFAULT_TLS = "^tcp";

/** UCX_TLS as UCX read it (environment, then config file; "all" when unset), or null if unreadable. */
function effectiveTls(ucx: UcxLibrary, config: UcpConfig): string | null {
  const text = captureCStream((file) => ucx.fns.ucp_config_print(config, file, null, 1 /* UCS_CONFIG_PRINT_CONFIG */));
  const m = text === null ? null : /^UCX_TLS=(.*)$/m.exec(text);
  return m ? m[1]!.trim() : null;
}

/**
 * Whether a context with these transports gets UCP_FEATURE_AM. Not where UCX's tcp transport is
 * chosen: UCX 1.13's puts over tcp (emulated by the target) then fail with "Endpoint timeout" at the
 * first flush. kvbridge never offers or accepts UCX over tcp (it uses its TCP data plane), so the
 * contexts that carry requests always have it.
 */
function activeMessagesFor(tls: string | null): boolean {
  if (tls === null) return true;
  if (tls.startsWith("^")) return true;
  return !tls.split(",").some((t) => t.trim() === "tcp" || t.trim().startsWith("tcp:"));
}

function createContext(ucx: UcxLibrary, settings: Array<[string, string]>): { ok: true; context: UcpContext; features: bigint } | { ok: false; reason: string } {
  const { fns } = ucx;
  const config: [UcpConfig | null] = [null];
  const readStatus = fns.ucp_config_read(null, null, config);
  if (readStatus !== UCS_OK || config[0] === null) {
    return { ok: false, reason: `ucp_config_read failed: ${ucx.describeStatus(readStatus)}; check the UCX_* environment variables` };
  }
  try {
    for (const [name, value] of settings) {
      const st = fns.ucp_config_modify(config[0], name, value);
      if (st !== UCS_OK) return { ok: false, reason: `UCX rejected the setting ${name}=${value}: ${ucx.describeStatus(st)}` };
    }
    // UCX's tcp transport has no remote memory access: a put over it is emulated by the target's
    // progress (ucp_put_handler), which UCX 1.13 aborts the target process for when the sender dies
    // mid-put. kvbridge has its own TCP data plane, so where nobody chose the transports (UCX_TLS
    // unset: "all") UCX is used without tcp. An explicit choice is kept; the receiver then checks it
    // (ucx-directness.ts) and serves TCP only where puts would not be direct.
    if (!settings.some(([name]) => name === "TLS") && effectiveTls(ucx, config[0]) === "all") {
      const st = fns.ucp_config_modify(config[0], "TLS", DEFAULT_TLS);
      if (st !== UCS_OK) return { ok: false, reason: `UCX rejected the setting TLS=${DEFAULT_TLS}: ${ucx.describeStatus(st)}` };
    }
    const features = UCP_FEATURE_RMA | UCP_FEATURE_WAKEUP | (activeMessagesFor(effectiveTls(ucx, config[0])) ? UCP_FEATURE_AM : 0n);
    const context: [UcpContext | null] = [null];
    const status = fns.ucp_init_version(
      UCP_API_MAJOR,
      UCP_API_MINOR,
      {
        field_mask: UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED | UCP_PARAM_FIELD_NAME,
        features,
        // Every worker is driven from the one JavaScript thread.
        mt_workers_shared: 0,
        name: "kvbridge",
      },
      config[0],
      context,
    );
    if (status !== UCS_OK || context[0] === null) {
      return { ok: false, reason: `ucp_init failed: ${ucx.describeStatus(status)}; check UCX_TLS / UCX_NET_DEVICES (ucx_info -d lists what this host has)` };
    }
    return { ok: true, context: context[0], features };
  } finally {
    fns.ucp_config_release(config[0]);
  }
}
