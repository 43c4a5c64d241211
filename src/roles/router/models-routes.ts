// The router's model endpoints: GET /v1/models (every model any node serves, with its state on each
// node, in OpenAI's list shape), GET /v1/models/{id} (one, by id or alias; 404 model_not_found
// otherwise), and POST /v1/models/load {"model", "options"} and /v1/models/unload {"model"}, which
// call LoadModel / UnloadModel on every node serving the model and report its state on each. Both are
// idempotent, as the nodes' calls are: a load with the options the model already has answers at once,
// and concurrent loads of one model share the node's one load.
import type http from "node:http";
import { KvbridgeError, toKvbridgeError } from "../../errors/kvbridge-error.js";
import type { ListModelsResponse__Output } from "../../wire/generated/kvbridge/v1/ListModelsResponse.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import type { ModelLoadOptions } from "../../wire/generated/kvbridge/v1/ModelLoadOptions.js";
import type { CallOptions } from "../../wire/unary-call.js";
import { readJsonBody } from "./http-server.js";
import { ModelNotFoundError, nodeModelReport, type ModelDirectory, type NodeModelReport } from "./model-directory.js";
import { errorResponse, sendJson } from "./openai-response.js";

/** The Models calls the endpoints make on nodes (UpstreamClients). */
export interface ModelsActions {
  loadModel(target: string, req: { model: string; options?: ModelLoadOptions }, opts: CallOptions): Promise<ModelInfo__Output>;
  unloadModel(target: string, req: { model: string }, opts: CallOptions): Promise<ModelInfo__Output>;
}

export interface ModelsRoute {
  directory: ModelDirectory;
  upstream: ModelsActions;
  maxBodyBytes: number;
  /** Bound on one node's LoadModel / UnloadModel (the node bounds its own load and drain). */
  callTimeoutMs: number;
}

/** The load options /v1/models/load accepts, by their JSON name. */
const OPTION_FIELDS = { context_size: "contextSize", threads: "threads", max_sequences: "maxSequences", chunk_tokens: "chunkTokens" } as const;
const MAX_OPTION = 0xffff_ffff;

function bad(message: string, param: string): KvbridgeError {
  return new KvbridgeError("INVALID_ARGUMENT", message, { details: { param } });
}

function modelField(body: Record<string, unknown>): string {
  if (typeof body.model !== "string" || body.model.length === 0) throw bad("model must be a non-empty string naming the model", "model");
  return body.model;
}

/** `options` of a load: an object of positive integers among context_size, threads, max_sequences, chunk_tokens; absent or null: none. */
export function parseLoadOptions(raw: unknown): ModelLoadOptions | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) throw bad("options must be an object (context_size, threads, max_sequences, chunk_tokens)", "options");
  const out: ModelLoadOptions = {};
  for (const [key, value] of Object.entries(raw)) {
    if (!Object.hasOwn(OPTION_FIELDS, key)) throw bad(`options.${key} is not a load option; use context_size, threads, max_sequences or chunk_tokens`, `options.${key}`);
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_OPTION) throw bad(`options.${key} must be a positive integer`, `options.${key}`);
    out[OPTION_FIELDS[key as keyof typeof OPTION_FIELDS]] = value;
  }
  return out;
}

function jsonObject(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw new KvbridgeError("INVALID_ARGUMENT", "the request body must be a JSON object");
  return body as Record<string, unknown>;
}

export function listModels(r: ModelsRoute, res: http.ServerResponse): void {
  sendJson(res, 200, { object: "list", data: r.directory.list() });
}

/** GET /v1/models/{id}: the id is the rest of the path, percent-decoded (ids may hold '/'). */
export function retrieveModel(r: ModelsRoute, res: http.ServerResponse, rawId: string): void {
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    id = rawId;
  }
  const entry = r.directory.entry(id);
  if (!entry) throw new ModelNotFoundError(`model ${JSON.stringify(id.slice(0, 200))} is not served by this router (GET /v1/models lists the models)`);
  sendJson(res, 200, entry);
}

type NodeOutcome = NodeModelReport | { node_id: string; role: string; error: { message: string; code: string | null } };

/** LoadModel or UnloadModel on every node serving the model; the answer lists its state on each. */
async function onEveryNode(r: ModelsRoute, res: http.ServerResponse, id: string, action: "load" | "unload", call: (target: string) => Promise<ModelInfo__Output>): Promise<void> {
  const targets = r.directory.servers(id);
  const lists = r.directory.lists();
  const outcomes = await Promise.allSettled(targets.map((t) => call(t)));
  let failure: unknown;
  const nodes: NodeOutcome[] = outcomes.map((o, i) => {
    const target = targets[i]!;
    const list: Pick<ListModelsResponse__Output, "nodeId" | "role"> = lists.get(target) ?? { nodeId: "", role: "" };
    if (o.status === "fulfilled") {
      r.directory.record(target, o.value);
      return nodeModelReport(list, o.value);
    }
    failure ??= o.reason;
    const { body } = errorResponse(o.reason);
    return { node_id: list.nodeId, role: list.role, error: { message: body.error.message, code: body.error.code } };
  });
  // A load may have evicted another model, an unload freed room: the nodes' lists as they are now.
  await Promise.all(targets.map((t) => r.directory.refresh(t, true)));
  if (failure !== undefined) {
    const { status, body } = errorResponse(failure);
    sendJson(res, status, { ...body, model: id, action, nodes });
    return;
  }
  sendJson(res, 200, { ...r.directory.entry(id), action, nodes });
}

export async function loadModel(r: ModelsRoute, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = jsonObject(await readJsonBody(req, res, r.maxBodyBytes));
  const name = modelField(body);
  const options = parseLoadOptions(body.options);
  const id = r.directory.resolve(name);
  await onEveryNode(r, res, id, "load", (t) => r.upstream.loadModel(t, { model: id, ...(options ? { options } : {}) }, { timeoutMs: r.callTimeoutMs }));
}

export async function unloadModel(r: ModelsRoute, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const body = jsonObject(await readJsonBody(req, res, r.maxBodyBytes));
  const id = r.directory.resolve(modelField(body));
  await onEveryNode(r, res, id, "unload", (t) => r.upstream.unloadModel(t, { model: id }, { timeoutMs: r.callTimeoutMs }));
}

/** A node's own "unknown model" (its catalog is newer than the router's list) in the router's shape. */
export function asModelNotFound(err: unknown): unknown {
  const e = toKvbridgeError(err);
  return e.code === "NOT_FOUND" && e.details.reason === "model_not_found" && !(e instanceof ModelNotFoundError) ? new ModelNotFoundError(e.message) : err;
}
