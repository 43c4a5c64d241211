// A model's lifecycle on a node: its states as a discriminated union, the only transitions allowed
// between them, the snapshot metrics and kvctl read, and the events the registry publishes.
//
//   unloaded ──> loading ──> loaded ──> draining ──> unloading ──> unloaded
//      ^            │          │  ^         │            │
//      │            v          │  └─────────┘ (drain     └──> loading (a reload: same operation)
//      └──────── failed <──────┘   bound passed, kept)
//                  │ (retry)      loaded ──> unloading (idle: no drain needed)
//                  └──> loading
import type { KvbridgeError } from "../errors/kvbridge-error.js";
import type { ModelLoadOptions } from "./model-options.js";

export type ModelStateName = "unloaded" | "loading" | "loaded" | "draining" | "unloading" | "failed";

export const MODEL_STATE_NAMES: readonly ModelStateName[] = ["unloaded", "loading", "loaded", "draining", "unloading", "failed"];

/**
 * `op` numbers one load, reload or unload: every caller that joins it gets its outcome, and a loader
 * or close that finishes after its operation was overtaken (timed out, closed) is recognised as stale.
 */
export type ModelState<H> =
  | { readonly state: "unloaded" }
  /** `awaiting`: an evicted model whose close must end before the loader runs (its room passes to this one). */
  | { readonly state: "loading"; readonly options: ModelLoadOptions; readonly op: number; readonly awaiting: string | null; readonly since: number }
  | { readonly state: "loaded"; readonly options: ModelLoadOptions; readonly handle: H }
  /** Waiting for requests in flight to end, then unloading; `next`: the options of the reload that follows, null for an unload. */
  | { readonly state: "draining"; readonly options: ModelLoadOptions; readonly handle: H; readonly op: number; readonly next: ModelLoadOptions | null; readonly deadline: number }
  /** `heldFor`: the model this one was evicted for (its room is that one's). */
  | {
      readonly state: "unloading";
      readonly options: ModelLoadOptions;
      readonly handle: H;
      readonly op: number;
      readonly next: ModelLoadOptions | null;
      readonly heldFor: string | null;
      readonly cause: UnloadCause;
    }
  | { readonly state: "failed"; readonly options: ModelLoadOptions; readonly error: KvbridgeError };

/** Whether `from -> to` is one of the lifecycle's edges. */
export function isLegalTransition(from: ModelStateName, to: ModelStateName): boolean {
  switch (from) {
    case "unloaded":
      return to === "loading";
    case "loading":
      return to === "loaded" || to === "failed";
    case "loaded":
      return to === "draining" || to === "unloading";
    case "draining":
      return to === "unloading" || to === "loaded";
    case "unloading":
      return to === "unloaded" || to === "loading";
    case "failed":
      return to === "loading" || to === "unloaded";
    default: {
      const never: never = from;
      throw new Error(`unknown model state ${String(never)}`);
    }
  }
}

/** What a node says about one of its models (metrics, kvctl models, /v1/models). */
export interface ModelSnapshot {
  readonly id: string;
  readonly aliases: readonly string[];
  readonly path: string;
  readonly state: ModelStateName;
  /** The options it is loaded (or loading, or last failed) with; null when unloaded. */
  readonly options: ModelLoadOptions | null;
  /** When a request last started or ended on it or it finished loading (ms since the epoch); null when never. */
  readonly lastUsedMs: number | null;
  readonly requestsInFlight: number;
  /** Why the last load failed (state failed only). */
  readonly failure: { readonly code: string; readonly message: string } | null;
  /** Loads started since the node started (each retry and reload counts). */
  readonly loads: number;
}

export type LoadOutcome = "loaded" | "failed";
export type UnloadCause = "unload" | "evict" | "reload" | "shutdown";

/** What a registry publishes (registry.events.on("state", ...)); listeners run synchronously and must not throw. */
export interface ModelEventMap {
  /** Every state change, after it happened. */
  state: [{ id: string; from: ModelStateName; to: ModelStateName; snapshot: ModelSnapshot }];
  /** A load ended (kvbridge_model_loads_total{model,outcome}). */
  load: [{ id: string; outcome: LoadOutcome; seconds: number; error?: KvbridgeError }];
  /** A loaded model was freed; `error` when its close failed or overran its bound (it counts as freed anyway). */
  unloaded: [{ id: string; cause: UnloadCause; error?: KvbridgeError }];
}
