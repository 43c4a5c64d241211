// The model lifecycle series of a node, fed by its model host's events: loads by outcome
// (kvbridge_model_loads_total{model,outcome}) and each catalog model's state as a one-hot gauge
// (kvbridge_model_state{model,state}: 1 for the state it is in, 0 for the others). `role` tells the
// prefill and decode nodes of one process (kvbridge up) apart on a shared registry.
import { Counter, Gauge, type Registry } from "prom-client";
import type { ModelEventMap, ModelSnapshot } from "../models/model-state.js";
import { MODEL_STATE_NAMES } from "../models/model-state.js";

interface ModelSeries {
  loads: Counter<"model" | "outcome" | "role">;
  state: Gauge<"model" | "state" | "role">;
}

const byRegistry = new WeakMap<Registry, ModelSeries>();

function series(registry: Registry): ModelSeries {
  let s = byRegistry.get(registry);
  if (!s) {
    s = {
      loads: new Counter({ name: "kvbridge_model_loads_total", help: "Model loads ended, by outcome (loaded or failed)", labelNames: ["model", "outcome", "role"], registers: [registry] }),
      state: new Gauge({ name: "kvbridge_model_state", help: "1 for the state each model of the node is in (unloaded, loading, loaded, draining, unloading, failed), 0 for the others", labelNames: ["model", "state", "role"], registers: [registry] }),
    };
    byRegistry.set(registry, s);
  }
  return s;
}

/** What the metrics listen to: a model host's (or registry's) typed events. */
export interface ModelEventSource {
  on<K extends keyof ModelEventMap>(event: K, listener: (...args: ModelEventMap[K]) => void): unknown;
  off<K extends keyof ModelEventMap>(event: K, listener: (...args: ModelEventMap[K]) => void): unknown;
}

/** Starts the series at the models' current states and follows the events; returns the detach function. */
export function attachModelMetrics(registry: Registry, role: "prefill" | "decode", events: ModelEventSource, models: readonly ModelSnapshot[]): () => void {
  const s = series(registry);
  const setState = (model: string, current: string): void => {
    for (const state of MODEL_STATE_NAMES) s.state.set({ model, state, role }, state === current ? 1 : 0);
  };
  for (const m of models) {
    setState(m.id, m.state);
    for (const outcome of ["loaded", "failed"]) s.loads.inc({ model: m.id, outcome, role }, 0);
  }
  const onState = (e: ModelEventMap["state"][0]): void => setState(e.id, e.to);
  const onLoad = (e: ModelEventMap["load"][0]): void => s.loads.inc({ model: e.id, outcome: e.outcome, role });
  events.on("state", onState);
  events.on("load", onLoad);
  return () => {
    events.off("state", onState);
    events.off("load", onLoad);
  };
}
