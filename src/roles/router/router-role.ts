// The router role: an OpenAI-compatible HTTP API in front of prefill and decode nodes, assembled on
// the one RoleLifecycle (a failed start, e.g. a port in use, leaves no discovery timer or channel).
import * as grpc from "@grpc/grpc-js";
import type http from "node:http";
import type { Logger } from "pino";
import { nodeMetrics, type NodeMetrics } from "../../observability/metrics.js";
import { metricsRoute } from "../../observability/metrics-server.js";
import { PROTOCOL_VERSION } from "../../wire/proto.js";
import { CLIENT_CHANNEL_OPTIONS } from "../../wire/unary-call.js";
import type { HostPort } from "../host-port.js";
import { RoleLifecycle } from "../lifecycle.js";
import { VERSION } from "../version.js";
import type { Dispatcher } from "./completion-dispatch.js";
import { handleCompletion, type CompletionRoute } from "./completion-route.js";
import { listenHttp } from "./http-server.js";
import { openAiError, sendError, sendJson } from "./openai-response.js";
import { PeerDiscovery, type PeerSource } from "./peer-discovery.js";
import { hasReachablePair, type NodeStates } from "./routing-policy.js";
import { UpstreamClients } from "./upstream-clients.js";

export interface RouterOptions {
  listen: HostPort;
  prefill: PeerSource;
  decode: PeerSource;
  logger: Logger;
  /** Bound on a prefill (evaluation + transfer). Default 10 min. */
  prefillTimeoutMs?: number;
  /** Bound on a whole generation. Default 10 min. */
  generateTimeoutMs?: number;
  /** Longest silence of a decode node within a generation. Default 30 s. */
  generateIdleMs?: number;
  maxBodyBytes?: number;
  channelCredentials?: grpc.ChannelCredentials;
  /** Extra routes (e.g. /metrics), tried before the API; return true when handled. */
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
  /** Metrics registry set (shared with other nodes of the process, e.g. `kvbridge up`). */
  metrics?: NodeMetrics;
}

export interface Router {
  url: string;
  port: number;
  inFlight(): number;
  /** Refuses new requests, waits (bounded) for those in flight, then closes. */
  drain(timeoutMs: number): Promise<void>;
  /** Idempotent; cancels what is still in flight. */
  close(): Promise<void>;
}

const ROUTES = "kvbridge serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /healthz, GET /readyz, GET /metrics";

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const log = opts.logger;
  const active = new Set<AbortController>();
  const life = new RoleLifecycle(log, "router", () => active.size);
  const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
  metrics.nodeInfo.set({ node_id: `router-${process.pid}`, role: "router", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
  const serveMetrics = metricsRoute(metrics.registry);
  let modelId: string | undefined;

  return life.start(async () => {
    // Deferred first, so it runs last: the line says everything is released.
    life.defer(() => log.info("router closed"));
    const prefillPeers = new PeerDiscovery(opts.prefill, log);
    const decodePeers = new PeerDiscovery(opts.decode, log);
    life.defer(() => prefillPeers.stop());
    life.defer(() => decodePeers.stop());
    await Promise.all([prefillPeers.start(), decodePeers.start()]);
    const upstream = new UpstreamClients(opts.channelCredentials ?? grpc.credentials.createInsecure(), CLIENT_CHANNEL_OPTIONS);
    life.defer(() => upstream.close());
    const nodes: NodeStates = new Map();
    const dispatcher: Dispatcher = {
      upstream,
      nodes,
      prefillTargets: () => prefillPeers.targets(),
      decodeTargets: () => decodePeers.targets(),
      timeouts: {
        planMs: 30_000,
        matchPrefixMs: 1_000,
        prefillMs: opts.prefillTimeoutMs ?? 600_000,
        generateMs: opts.generateTimeoutMs ?? 600_000,
        generateIdleMs: opts.generateIdleMs ?? 30_000,
      },
      log,
      onPlan: (plan) => {
        modelId ??= plan.modelId;
      },
    };
    const completions: CompletionRoute = {
      dispatcher,
      metrics,
      log,
      maxBodyBytes: opts.maxBodyBytes ?? 8 * 1024 * 1024,
      accepting: () => life.accepting,
      modelId: () => modelId,
      active,
      ended: () => life.workEnded(),
    };

    const listModels = async (): Promise<string | undefined> => {
      const t = prefillPeers.targets()[0];
      if (modelId || !t) return modelId;
      const p = await upstream.plan(t, { prompt: " " }, { timeoutMs: 5_000 }).catch(() => undefined);
      modelId ??= p?.modelId;
      return modelId;
    };

    const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
      if (opts.extraRoutes && (await opts.extraRoutes(req, res))) return;
      if (serveMetrics(req, res)) return;
      const url = new URL(req.url ?? "/", "http://router");
      const route = `${req.method} ${url.pathname}`;
      switch (route) {
        case "POST /v1/completions":
          return handleCompletion(completions, req, res, "completion");
        case "POST /v1/chat/completions":
          return handleCompletion(completions, req, res, "chat");
        case "GET /v1/models": {
          const id = await listModels();
          return sendJson(res, 200, { object: "list", data: id ? [{ id, object: "model", created: 0, owned_by: "kvbridge" }] : [] });
        }
        case "GET /healthz":
          return sendJson(res, 200, { status: "ok" });
        case "GET /readyz": {
          const ready = life.accepting && hasReachablePair(nodes, prefillPeers.targets(), decodePeers.targets());
          return sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", prefill: prefillPeers.targets(), decode: decodePeers.targets() });
        }
        default:
          return sendJson(res, 404, openAiError(`no route ${route}; ${ROUTES}`, "invalid_request_error", "not_found"));
      }
    };

    const http = await listenHttp(opts.listen, handle, (err, res) => sendError(res, err));
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
      async drain(timeoutMs: number) {
        await life.drain(timeoutMs);
      },
      close: () => life.close(),
    };
  });
}
