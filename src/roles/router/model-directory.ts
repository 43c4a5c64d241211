// What the router knows of its nodes' models: each node's ListModels (asked when the node is first
// seen, when it comes back into rotation, and every interval), written into the routing policy's node
// states so routing reads it synchronously; the name a request gives resolved to a model id (an id or
// an alias; none: the default model); and the merged list GET /v1/models answers. A model name no
// node serves is a 404 in the OpenAI shape (code model_not_found, param model).
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError, type ErrorDetails } from "../../errors/kvbridge-error.js";
import type { ListModelsResponse__Output } from "../../wire/generated/kvbridge/v1/ListModelsResponse.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import type { CallOptions } from "../../wire/unary-call.js";
import { HttpEdgeError } from "./http-errors.js";
import type { NodeModel, NodeStates } from "./routing-policy.js";

/**
 * The name a request may give for "the router's default model": what the router answered as its model
 * id before it routed by model, so clients written for that keep working. A node model of that id wins.
 */
export const ROUTER_DEFAULT_MODEL_NAME = "kvbridge";

/** The Models calls the directory makes (ModelsClient through UpstreamClients). */
export interface ModelsUpstream {
  listModels(target: string, opts: CallOptions): Promise<ListModelsResponse__Output>;
}

export interface ModelDirectoryOptions {
  nodes: NodeStates;
  prefillTargets(): readonly string[];
  decodeTargets(): readonly string[];
  upstream: ModelsUpstream;
  /** --default-model: the model of requests that name none (an id or alias). */
  defaultModel?: string;
  /** Bound on one ListModels. */
  timeoutMs: number;
  /** How often every node is listed again. */
  intervalMs: number;
  log: Logger;
}

/** 404 model_not_found, param model, in the OpenAI shape. */
export class ModelNotFoundError extends HttpEdgeError {
  override readonly details: Readonly<ErrorDetails>;
  constructor(message: string) {
    super(404, "model_not_found", "NOT_FOUND", message);
    this.details = Object.freeze({ reason: "model_not_found", param: "model" });
  }
}

/** One node's view of one model, as /v1/models reports it (no node address: its node id and role). */
export interface NodeModelReport {
  node_id: string;
  role: string;
  state: string;
  fingerprint: string;
  requests_in_flight: number;
  loads: number;
  last_used_ms: number;
  context_size: number;
  options: { context_size: number; threads: number; max_sequences: number; chunk_tokens: number } | null;
  failure: { code: string; message: string } | null;
}

/** A /v1/models entry: the OpenAI model object and the model's state on every node that serves it. */
export interface ModelEntry {
  id: string;
  object: "model";
  created: number;
  owned_by: "kvbridge";
  aliases: string[];
  /** loaded when one node has it loaded, else loading, draining, unloading, failed, unloaded in that order. */
  state: string;
  /** Whether a prefill and a decode node both serve it (a request for it can be routed). */
  routable: boolean;
  is_default: boolean;
  nodes: NodeModelReport[];
}

const STATE_RANK = ["loaded", "loading", "draining", "unloading", "failed", "unloaded"];

export function nodeModelReport(list: Pick<ListModelsResponse__Output, "nodeId" | "role">, m: ModelInfo__Output): NodeModelReport {
  const o = m.options;
  return {
    node_id: list.nodeId,
    role: list.role,
    state: m.state,
    fingerprint: m.fingerprint,
    requests_in_flight: m.requestsInFlight,
    loads: m.loads,
    last_used_ms: m.lastUsedMs,
    context_size: m.contextSize,
    options: o ? { context_size: o.contextSize, threads: o.threads, max_sequences: o.maxSequences, chunk_tokens: o.chunkTokens } : null,
    failure: m.failure ? { code: m.failure.code, message: m.failure.message } : null,
  };
}

function toNodeModel(m: ModelInfo__Output): NodeModel {
  return { id: m.id, aliases: [...m.aliases], fingerprint: m.fingerprint, state: m.state };
}

export class ModelDirectory {
  private readonly listed = new Map<string, ListModelsResponse__Output>();
  private readonly asking = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Seconds since the epoch, the `created` of every entry (the router does not know when a file was made). */
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly o: ModelDirectoryOptions) {}

  /** Lists every node once (each bounded), then every interval. */
  async start(): Promise<void> {
    await this.refreshAll();
    if (this.stopped) return;
    this.timer = setInterval(() => void this.refreshAll(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private targets(): string[] {
    return [...new Set([...this.o.prefillTargets(), ...this.o.decodeTargets()])];
  }

  /**
   * Lists, now, every node in rotation that never answered ListModels yet (a node that just turned
   * SERVING: its list is asked on that event, and a request arriving first waits for it instead of
   * being told no node serves its model). Nodes out of rotation are not waited for.
   */
  async listNew(): Promise<void> {
    const fresh = this.targets().filter((t) => !this.listed.has(t) && this.o.nodes.get(t)?.reachable === true);
    if (fresh.length > 0) await Promise.all(fresh.map((t) => this.refresh(t)));
  }

  async refreshAll(): Promise<void> {
    const targets = this.targets();
    for (const t of this.listed.keys()) if (!targets.includes(t)) this.listed.delete(t);
    await Promise.all(targets.map((t) => this.refresh(t)));
  }

  /**
   * Asks one node's ListModels (one call at a time per node); a node that does not answer keeps its
   * last list. `after`: a list asked after this moment (not a call already under way), e.g. to see the
   * models a load evicted.
   */
  refresh(target: string, after = false): Promise<void> {
    const running = this.asking.get(target);
    if (running) return after ? running.then(() => this.refresh(target)) : running;
    const p = this.o.upstream
      .listModels(target, { timeoutMs: this.o.timeoutMs })
      .then(
        (list) => {
          if (this.stopped) return;
          // A node dropped from discovery meanwhile gets no entry back from a late answer.
          const state = this.o.nodes.get(target);
          if (!state) return;
          this.listed.set(target, list);
          state.models = list.models.map(toNodeModel);
        },
        (err: unknown) => this.o.log.debug({ node: target, err: toKvbridgeError(err).message }, "ListModels failed; the node keeps its last model list"),
      )
      .finally(() => this.asking.delete(target));
    this.asking.set(target, p);
    return p;
  }

  /** A model's state as a node answered it (LoadModel, UnloadModel): applied at once. */
  record(target: string, info: ModelInfo__Output): void {
    const list = this.listed.get(target);
    if (!list) return;
    const models = list.models.map((m) => (m.id === info.id ? info : m));
    this.listed.set(target, { ...list, models });
    const state = this.o.nodes.get(target);
    if (state) state.models = models.map(toNodeModel);
  }

  /** Each node's last list, for the nodes listed so far. */
  lists(): ReadonlyMap<string, ListModelsResponse__Output> {
    return this.listed;
  }

  /** The model ids of every listed node, in first-seen order. */
  private ids(): string[] {
    const ids: string[] = [];
    for (const list of this.listed.values()) for (const m of list.models) if (!ids.includes(m.id)) ids.push(m.id);
    return ids;
  }

  /** The id of the model `name` names on some node (an id first, then an alias), if any. */
  private find(name: string): string | undefined {
    const all = [...this.listed.values()].flatMap((l) => l.models);
    return all.find((m) => m.id === name)?.id ?? all.find((m) => m.aliases.includes(name))?.id;
  }

  /**
   * The model id a request's `model` names. None (or "kvbridge" when no node serves a model of that
   * name): --default-model, else the only model served, else the default model every node agrees
   * on. Unknown: ModelNotFoundError. No node listed yet: UNAVAILABLE.
   */
  resolve(name: string | undefined): string {
    if (this.listed.size === 0) throw new KvbridgeError("UNAVAILABLE", "no node has listed its models yet (all unreachable?); retry shortly");
    if (name !== undefined && name !== "") {
      const id = this.find(name);
      if (id !== undefined) return id;
      if (name !== ROUTER_DEFAULT_MODEL_NAME) throw this.notFound(name);
    }
    return this.defaultModel();
  }

  private defaultModel(): string {
    if (this.o.defaultModel !== undefined) {
      const id = this.find(this.o.defaultModel);
      if (id === undefined) throw this.notFound(this.o.defaultModel, " (the router's --default-model)");
      return id;
    }
    const ids = this.ids();
    if (ids.length === 1) return ids[0]!;
    const defaults = new Set([...this.listed.values()].map((l) => l.defaultModel).filter((d) => d !== ""));
    if (defaults.size === 1) return [...defaults][0]!;
    throw new KvbridgeError("INVALID_ARGUMENT", `this router serves several models (${ids.join(", ")}) and has no --default-model: name one in \`model\``, { details: { param: "model" } });
  }

  private notFound(name: string, why = ""): ModelNotFoundError {
    const ids = this.ids();
    const shown = JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name);
    return new ModelNotFoundError(`model ${shown}${why} is not served by this router; it serves ${ids.length > 0 ? ids.join(", ") : "no model yet"} (GET /v1/models)`);
  }

  /** Every model any node serves, with its state on each. */
  list(): ModelEntry[] {
    return this.ids().map((id) => this.entry(id)!);
  }

  /** One model by id or alias; undefined when no node serves it. */
  entry(name: string): ModelEntry | undefined {
    const id = this.find(name);
    if (id === undefined) return undefined;
    const prefill = new Set(this.o.prefillTargets());
    const decode = new Set(this.o.decodeTargets());
    const nodes: NodeModelReport[] = [];
    const aliases = new Set<string>();
    let onPrefill = false;
    let onDecode = false;
    let isDefault = false;
    for (const [target, list] of this.listed) {
      const m = list.models.find((x) => x.id === id);
      if (!m) continue;
      for (const a of m.aliases) aliases.add(a);
      onPrefill ||= prefill.has(target);
      onDecode ||= decode.has(target);
      isDefault ||= m.isDefault;
      nodes.push(nodeModelReport(list, m));
    }
    const state = STATE_RANK.find((s) => nodes.some((n) => n.state === s)) ?? "unloaded";
    return { id, object: "model", created: this.created, owned_by: "kvbridge", aliases: [...aliases], state, routable: onPrefill && onDecode, is_default: isDefault, nodes };
  }

  /** The targets whose list holds model `id`. */
  servers(id: string): string[] {
    return [...this.listed].filter(([, l]) => l.models.some((m) => m.id === id)).map(([t]) => t);
  }
}
