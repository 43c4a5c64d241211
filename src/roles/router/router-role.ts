// The router role: an OpenAI-compatible HTTP API in front of prefill and decode nodes, assembled on
// the one RoleLifecycle (a failed start, e.g. a port in use, leaves no discovery timer or channel).
// Nodes are followed by their health (node-health.ts) over channels whose reconnect backoff is
// bounded, so a restarted node is used again within a second of serving, whatever the outage; /readyz
// and /health follow the pairs in rotation. The HTTP edge, in order: CORS (--allowed-origins), the
// API key (--api-key) on every path but the open ones, then the route table (404 naming the path,
// 405 with Allow). Each node's models (ListModels) are known before the router serves and followed
// after (model-directory.ts): requests are routed by their `model`, and /v1/models, /v1/models/{id},
// /v1/models/load, /v1/models/unload, /tokenize and /detokenize answer from or through the nodes.
import * as grpc from "@grpc/grpc-js";
import type http from "node:http";
import type { Logger } from "pino";
import { nodeMetrics, type NodeMetrics } from "../../observability/metrics.js";
import { metricsRoute } from "../../observability/metrics-server.js";
import {
  GENERATE_TIMEOUT_MS,
  MATCH_PREFIX_TIMEOUT_MS,
  MAX_BODY_BYTES,
  MAX_PROMPT_CHARS,
  PLAN_TIMEOUT_MS,
  PREFILL_TIMEOUT_MS,
  ROUTER_BODY_DISCARD_BYTES,
  ROUTER_GENERATE_IDLE_MS,
  ROUTER_HEALTH_INTERVAL_MS,
  ROUTER_HEALTH_TIMEOUT_MS,
  ROUTER_MODELS_REFRESH_MS,
  ROUTER_RECONNECT_INITIAL_BACKOFF_MS,
  ROUTER_RECONNECT_MAX_BACKOFF_MS,
} from "../../config/defaults.js";
import { HealthClient } from "../../wire/health-client.js";
import { PROTOCOL_VERSION } from "../../wire/proto.js";
import { boundedReconnectOptions } from "../../wire/unary-call.js";
import type { HostPort } from "../host-port.js";
import { RoleLifecycle } from "../lifecycle.js";
import { VERSION } from "../version.js";
import type { Dispatcher } from "./completion-dispatch.js";
import { handleCompletion, type CompletionRoute } from "./completion-route.js";
import { ApiKeys } from "./http-auth.js";
import { CorsPolicy } from "./http-cors.js";
import { listenHttp } from "./http-server.js";
import { requestPath, RouteTable } from "./http-routes.js";
import { sendError, sendJson } from "./openai-response.js";
import { NodeHealth, type NodeHealthReport } from "./node-health.js";
import { PeerDiscovery, type PeerSource } from "./peer-discovery.js";
import { hasReachablePair, type NodeStates } from "./routing-policy.js";
import { ModelDirectory } from "./model-directory.js";
import { listModels, loadModel, retrieveModel, unloadModel, type ModelsRoute } from "./models-routes.js";
import { handleDetokenize, handleTokenize, type TokenizeRoute } from "./tokenize-routes.js";
import { UpstreamClients } from "./upstream-clients.js";

export interface RouterOptions {
  listen: HostPort;
  prefill: PeerSource;
  decode: PeerSource;
  logger: Logger;
  /** Bound on a Plan (tokenizing the prompt on a prefill node). Default PLAN_TIMEOUT_MS. */
  planTimeoutMs?: number;
  /** Bound on a prefill (evaluation + transfer). Default PREFILL_TIMEOUT_MS. */
  prefillTimeoutMs?: number;
  /** Bound on a whole generation. Default GENERATE_TIMEOUT_MS. */
  generateTimeoutMs?: number;
  /** Longest silence of a decode node within a generation. Default ROUTER_GENERATE_IDLE_MS. */
  generateIdleMs?: number;
  /** How often each node's health is asked. Default ROUTER_HEALTH_INTERVAL_MS. */
  healthIntervalMs?: number;
  /** Bound on one health Check; a node slower than this is out of rotation. Default ROUTER_HEALTH_TIMEOUT_MS. */
  healthTimeoutMs?: number;
  /** Channel reconnect backoff to nodes. Default ROUTER_RECONNECT_INITIAL_BACKOFF_MS .. ROUTER_RECONNECT_MAX_BACKOFF_MS. */
  reconnectBackoff?: { initialMs: number; maxMs: number };
  /** Longest prompt sent on to a node, in characters. Default MAX_PROMPT_CHARS. */
  maxPromptChars?: number;
  maxBodyBytes?: number;
  /** Most bytes of a refused request's body read and discarded before answering. Default ROUTER_BODY_DISCARD_BYTES. */
  bodyDiscardBytes?: number;
  /** API keys: a request must carry one as `Authorization: Bearer <key>` (none: no key asked). */
  apiKeys?: readonly string[];
  /** With apiKeys, also protect /health, /healthz, /readyz, /version and /metrics. */
  apiKeyProtectAll?: boolean;
  /** Origins allowed by CORS (`*`: any); none: no CORS headers, preflights refused. */
  allowedOrigins?: readonly string[];
  channelCredentials?: grpc.ChannelCredentials;
  /** Extra routes (e.g. /metrics), tried before the API; return true when handled. */
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
  /** Metrics registry set (shared with other nodes of the process, e.g. `kvbridge up`). */
  metrics?: NodeMetrics;
  /** The model of requests that name none (an id or alias); default: the only model served, or the one every node has as its default. */
  defaultModel?: string;
  /** How often every node's models are listed again, and the bound on one ListModels. Default ROUTER_MODELS_REFRESH_MS. */
  modelsRefreshMs?: number;
}

export interface Router {
  url: string;
  port: number;
  inFlight(): number;
  /** Every known node, in rotation or not, and its last health answer. */
  nodes(): { prefill: NodeHealthReport[]; decode: NodeHealthReport[] };
  /** Refuses new requests, waits (bounded) for those in flight, then closes. */
  drain(timeoutMs: number): Promise<void>;
  /** Idempotent; cancels what is still in flight. */
  close(): Promise<void>;
}

const MODEL_PATH_PREFIX = "/v1/models/";

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const log = opts.logger;
  const active = new Set<AbortController>();
  const life = new RoleLifecycle(log, "router", () => active.size);
  const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
  metrics.nodeInfo.set({ node_id: `router-${process.pid}`, role: "router", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
  const serveMetrics = metricsRoute(metrics.registry);
  // Checked before anything starts: a bad key fails the start, not the first request.
  const apiKeys = new ApiKeys({ keys: opts.apiKeys ?? [], protectAll: opts.apiKeyProtectAll });
  const cors = new CorsPolicy(opts.allowedOrigins ?? []);

  return life.start(async () => {
    // Deferred first, so it runs last: the line says everything is released.
    life.defer(() => log.info("router closed"));
    const prefillPeers = new PeerDiscovery(opts.prefill, log);
    const decodePeers = new PeerDiscovery(opts.decode, log);
    life.defer(() => prefillPeers.stop());
    life.defer(() => decodePeers.stop());
    await Promise.all([prefillPeers.start(), decodePeers.start()]);
    const credentials = opts.channelCredentials ?? grpc.credentials.createInsecure();
    const backoff = opts.reconnectBackoff ?? { initialMs: ROUTER_RECONNECT_INITIAL_BACKOFF_MS, maxMs: ROUTER_RECONNECT_MAX_BACKOFF_MS };
    const channelOptions = boundedReconnectOptions(backoff.initialMs, backoff.maxMs);
    // Health probes on connections of their own: probing a node that is down keeps only the probe's
    // channel in reconnect backoff, so the first call after the node is back connects at once.
    const probeOptions = { ...channelOptions, "grpc.use_local_subchannel_pool": 1 };
    const upstream = new UpstreamClients(credentials, channelOptions);
    life.defer(() => upstream.close());
    const nodes: NodeStates = new Map();
    const modelsRefreshMs = opts.modelsRefreshMs ?? ROUTER_MODELS_REFRESH_MS;
    const directory = new ModelDirectory({
      nodes,
      prefillTargets: () => prefillPeers.targets(),
      decodeTargets: () => decodePeers.targets(),
      upstream,
      defaultModel: opts.defaultModel,
      timeoutMs: modelsRefreshMs,
      intervalMs: modelsRefreshMs,
      log,
    });
    life.defer(() => directory.stop());
    const health = new NodeHealth({
      nodes,
      targets: () => [...prefillPeers.targets(), ...decodePeers.targets()],
      probe: (target) => new HealthClient(target, credentials, probeOptions),
      intervalMs: opts.healthIntervalMs ?? ROUTER_HEALTH_INTERVAL_MS,
      timeoutMs: opts.healthTimeoutMs ?? ROUTER_HEALTH_TIMEOUT_MS,
      log,
      onServing: (target) => void directory.refresh(target),
    });
    life.defer(() => health.stop());
    // Every node asked once before serving (its health, then its models): the first requests see the fleet as it is.
    await health.start();
    await directory.start();
    const dispatcher: Dispatcher = {
      upstream,
      nodes,
      prefillTargets: () => prefillPeers.targets(),
      decodeTargets: () => decodePeers.targets(),
      timeouts: {
        planMs: opts.planTimeoutMs ?? PLAN_TIMEOUT_MS,
        matchPrefixMs: MATCH_PREFIX_TIMEOUT_MS,
        prefillMs: opts.prefillTimeoutMs ?? PREFILL_TIMEOUT_MS,
        generateMs: opts.generateTimeoutMs ?? GENERATE_TIMEOUT_MS,
        generateIdleMs: opts.generateIdleMs ?? ROUTER_GENERATE_IDLE_MS,
      },
      log,
      onModelInfo: (target, info) => directory.record(target, info),
      rotationSignal: (target) => health.rotationSignal(target),
    };
    const completions: CompletionRoute = {
      dispatcher,
      metrics,
      log,
      maxBodyBytes: opts.maxBodyBytes ?? MAX_BODY_BYTES,
      maxPromptChars: opts.maxPromptChars ?? MAX_PROMPT_CHARS,
      accepting: () => life.accepting,
      resolveModel: (name) => directory.resolve(name),
      listNewNodes: () => directory.listNew(),
      active,
      ended: () => life.workEnded(),
    };

    const models: ModelsRoute = { directory, upstream, maxBodyBytes: completions.maxBodyBytes, callTimeoutMs: dispatcher.timeouts.prefillMs };
    const tokenizer: TokenizeRoute = {
      directory,
      nodes,
      prefillTargets: () => prefillPeers.targets(),
      upstream,
      maxBodyBytes: completions.maxBodyBytes,
      callTimeoutMs: dispatcher.timeouts.prefillMs,
      maxPromptChars: completions.maxPromptChars,
    };

    const readiness = (route: "health" | "readyz") => (_req: http.IncomingMessage, res: http.ServerResponse): void => {
      // /health (as vLLM's): a prefill + decode pair is in rotation; /readyz: that, and not draining.
      const pair = hasReachablePair(nodes, prefillPeers.targets(), decodePeers.targets());
      const ready = pair && (route === "health" || life.accepting);
      const nodesNow = { prefill: health.report(prefillPeers.targets()), decode: health.report(decodePeers.targets()) };
      sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", draining: !life.accepting, ...nodesNow });
    };
    const routes = new RouteTable()
      .add("POST", "/v1/completions", (req, res) => handleCompletion(completions, req, res, "completion"))
      .add("POST", "/v1/chat/completions", (req, res) => handleCompletion(completions, req, res, "chat"))
      .add("GET", "/v1/models", (_req, res) => listModels(models, res))
      .add("POST", "/v1/models/load", (req, res) => loadModel(models, req, res))
      .add("POST", "/v1/models/unload", (req, res) => unloadModel(models, req, res))
      .add("POST", "/tokenize", (req, res) => handleTokenize(tokenizer, req, res))
      .add("POST", "/detokenize", (req, res) => handleDetokenize(tokenizer, req, res))
      .add("GET", "/version", (_req, res) => sendJson(res, 200, { version: VERSION }))
      .add("GET", "/healthz", (_req, res) => sendJson(res, 200, { status: "ok" }))
      .add("GET", "/health", readiness("health"))
      .add("GET", "/readyz", readiness("readyz"))
      .add("GET", "/metrics", (req, res) => {
        serveMetrics(req, res);
      });

    const route = (req: http.IncomingMessage, res: http.ServerResponse, path: string): void | Promise<void> => {
      // GET /v1/models/{id}: ids may hold '/', so the rest of the path is the id.
      if ((req.method === "GET" || req.method === "HEAD") && path.startsWith(MODEL_PATH_PREFIX) && path.length > MODEL_PATH_PREFIX.length) {
        retrieveModel(models, res, path.slice(MODEL_PATH_PREFIX.length));
        return;
      }
      return routes.find(req.method ?? "GET", path)(req, res, path);
    };
    // Synchronous up to the route's handler: a refusal (CORS, key, 404, 405) throws at once, no promise made.
    const handle = (req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void> => {
      if (cors.apply(req, res)) return;
      const path = requestPath(req);
      if (apiKeys.protects(path)) apiKeys.check(req);
      const extra = opts.extraRoutes;
      if (!extra) return route(req, res, path);
      return (async () => {
        if (!(await extra(req, res))) await route(req, res, path);
      })();
    };

    const http = await listenHttp(opts.listen, handle, (err, res) => sendError(res, err), {
      maxBodyBytes: completions.maxBodyBytes,
      discardBytes: opts.bodyDiscardBytes ?? ROUTER_BODY_DISCARD_BYTES,
    });
    life.defer(() => http.close());
    // Runs first on close: every request still in flight is cancelled before its connection drops.
    life.defer(() => {
      for (const ac of active) ac.abort();
    });
    log.info({ url: http.url, prefill: prefillPeers.targets(), decode: decodePeers.targets() }, "router serving");
    return {
      url: http.url,
      port: http.port,
      inFlight: () => active.size,
      nodes: () => ({ prefill: health.report(prefillPeers.targets()), decode: health.report(decodePeers.targets()) }),
      async drain(timeoutMs: number) {
        await life.drain(timeoutMs);
      },
      close: () => life.close(),
    };
  });
}
