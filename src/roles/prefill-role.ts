// The prefill role: evaluates prompts with the engine, cuts the KV state into chunks and pushes them
// to the decode node the router chose. Built on RoleLifecycle (a start that fails, e.g. on a metrics
// port already taken, releases the gRPC server and the sender it had acquired); the gRPC adapter is
// services/prefill-service.ts, behind the server interceptors (request-id log, metrics, admission).
// Prompts are tokenized through the engine's tokenizePrompt: limits checked before tokenizing, long
// prompts tokenized off the event loop. Each call has its own AbortSignal end to end.
// Several models: every call names its model ("" = the node's default) and holds a lease on that
// model's engine while it runs (a known but unloaded model is loaded first); KV is pushed by one
// sender per fingerprint, so each push carries its own model's fingerprint.

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { LlamaEngine } from "../engine/llama-engine.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { NodeModels, type NodeModelsOptions } from "../models/node-models.js";
import { nodeMetrics, recordPush, type NodeMetrics } from "../observability/metrics.js";
import { attachModelMetrics } from "../observability/model-metrics.js";
import { startMetricsServer } from "../observability/metrics-server.js";
import { declareModel } from "../observability/serving-records.js";
import { startGrpcServer, type NodeGrpcServer } from "../services/grpc-server.js";
import { modelsHandlers } from "../services/models-service.js";
import { prefillInspectHandlers } from "../services/inspect-service.js";
import { prefillHandlers, type PrefillOperations } from "../services/prefill-service.js";
import { PrefillsInFlight } from "../services/prefills-in-flight.js";
import { serverInterceptors, type AdmissionGate } from "../services/server-interceptors.js";
import { KvSender, type TransportPreference } from "../transfer/sender.js";
import type { SenderTransport, TransportKind } from "../transport/transport.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../wire/proto.js";
import { parseHostPort, type HostPort } from "./host-port.js";
import { RoleLifecycle } from "./lifecycle.js";
import { VERSION } from "./version.js";

export interface PrefillRoleOptions {
  listen: HostPort;
  /** One engine, loaded; the role does not close it (its owner does, after the role's drain). Or `models`. */
  engine?: LlamaEngine;
  /**
   * The models the node serves (docs/models.md): the role owns them (closes them on close) and waits
   * for its default model to load before it serves. Exactly one of engine and models.
   */
  models?: NodeModelsOptions;
  transports: Partial<Record<TransportKind, SenderTransport>>;
  transport: TransportPreference;
  nodeId?: string;
  logger: Logger;
  grpcCredentials?: grpc.ServerCredentials;
  channelCredentials?: grpc.ChannelCredentials;
  /** Fault injection (tests only): see SenderOptions.faultDelayBeforeWriteMs. */
  faultDelayBeforeWriteMs?: number;
  /** Metrics registry set (shared with other nodes of the process, e.g. `kvbridge up`). */
  metrics?: NodeMetrics;
  /** HTTP address for /metrics; none when absent. */
  metricsListen?: HostPort;
  /** A plaintext gRPC endpoint serving only grpc.health.v1 (for kubelet probes under mTLS). */
  healthListen?: HostPort;
}

export interface PrefillRole {
  grpc: NodeGrpcServer;
  grpcAddress: string;
  /** The sender of the default model's fingerprint (one per fingerprint; see senderFor). */
  sender: KvSender;
  /** The sender pushing KV made under `fingerprint`, made on first use. */
  senderFor(fingerprint: string): KvSender;
  models: NodeModels;
  metrics: NodeMetrics;
  /** host:port of /metrics when metricsListen was given. */
  metricsAddress?: string;
  /** Prefill calls running now. */
  activeRequests(): number;
  /**
   * Health NOT_SERVING and new Prefill calls refused (UNAVAILABLE, reason "draining"); waits for the
   * running ones, at most timeoutMs, then closes (cancelling any still running). Returns how many were
   * still running at the deadline.
   */
  drain(timeoutMs: number): Promise<number>;
  /** Idempotent: gRPC server, metrics server, senders and models. */
  close(): Promise<void>;
}

/** Former names, kept for callers that start a prefill node. */
export type PrefillNodeOptions = PrefillRoleOptions;
export type PrefillNode = PrefillRole;

export async function startPrefillRole(opts: PrefillRoleOptions): Promise<PrefillRole> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `prefill-${hostname()}-${process.pid}`;
  const models = nodeModelsOf(opts);
  const active = new PrefillsInFlight();
  const lifecycle = new RoleLifecycle(log.child({ nodeId }), "prefill node", () => active.size);
  lifecycle.defer(() => log.info({ nodeId }, "prefill node closed"));
  const role = await lifecycle.start(async (): Promise<PrefillRole> => {
    const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
    metrics.nodeInfo.set({ node_id: nodeId, role: "prefill", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
    // Closed after the gRPC server (deferred before it): no call runs on a model by then.
    lifecycle.defer(() => models.close());
    lifecycle.defer(attachModelMetrics(metrics.registry, "prefill", models.host.events, models.snapshots()));
    // The node serves once its default model is loaded, as a node of one engine always did.
    const first = await models.host.ensureLoaded(models.defaultModel);
    declareModel(metrics, first.id);
    const senders = new Map<string, KvSender>();
    const senderFor = (fingerprint: string): KvSender => {
      let sender = senders.get(fingerprint);
      if (!sender) {
        sender = new KvSender({
          fingerprint,
          transports: opts.transports,
          preference: opts.transport,
          senderId: nodeId,
          logger: log,
          credentials: opts.channelCredentials,
          faultDelayBeforeWriteMs: opts.faultDelayBeforeWriteMs,
        });
        senders.set(fingerprint, sender);
      }
      return sender;
    };
    lifecycle.defer(async () => {
      await Promise.all([...senders.values()].map((s) => s.close()));
    });
    const defaultSender = senderFor(models.engineOf(models.defaultModel)!.fingerprint);

    /** Runs `fn` with the engine of the request's model, held (counted in flight) until it ends. */
    const withModel = async <T>(model: string, signal: AbortSignal, fn: (engine: LlamaEngine, id: string, vocabSize: number | undefined) => Promise<T>): Promise<T> => {
      const lease = await models.acquire(model, signal);
      try {
        return await fn(lease.model.engine, lease.id, lease.model.vocabSize);
      } finally {
        lease.release();
      }
    };

    const ops: PrefillOperations = {
      plan: (req, signal) =>
        withModel(req.model, signal, async (engine, modelId) => {
          const tokens = await engine.tokenizePrompt(req.prompt, { signal });
          return { promptTokens: tokens.length, keys: engine.chunkKeys(tokens), fingerprint: engine.fingerprint, modelId };
        }),
      tokenize: (req, signal) =>
        withModel(req.model, signal, async (engine, modelId) => {
          const tokens = await engine.tokenizePrompt(req.prompt, { signal });
          // tokenizePrompt adds the model's BOS as a prompt gets it; add_special false leaves it out.
          const special = req.addSpecial ? 0 : leadingSpecial(engine, tokens);
          return { tokens: tokens.slice(special), modelId };
        }),
      detokenize: (req, signal) =>
        withModel(req.model, signal, async (engine, modelId, vocabSize) => {
          // Checked here: llama.cpp aborts the process on a token id outside the vocabulary.
          if (vocabSize === undefined) {
            throw new KvbridgeError("FAILED_PRECONDITION", `model ${modelId}'s vocabulary size is not known here; Detokenize needs it`, { details: { param: "model" } });
          }
          const bad = req.tokens.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
          if (bad >= 0) {
            throw new KvbridgeError("INVALID_ARGUMENT", `token ${bad} is ${req.tokens[bad]}; model ${modelId}'s tokens are 0..${vocabSize - 1}`, { details: { param: "tokens", limit: vocabSize } });
          }
          if (req.tokens.length > engine.contextSize) {
            throw new KvbridgeError("INVALID_ARGUMENT", `${req.tokens.length} tokens are more than the model's context (${engine.contextSize})`, {
              details: { param: "tokens", limit: engine.contextSize, reason: "prompt_too_long" },
            });
          }
          return { text: engine.detokenize(req.tokens), modelId };
        }),
      renderChat: (req, signal) =>
        withModel(req.model, signal, async (engine, modelId) => {
          const { prompt, template } = engine.renderChat(req.messages);
          return { prompt, template, modelId, fingerprint: engine.fingerprint };
        }),
      // A model that is not resident holds no cached chunks; asking must not load it (routers ask every node).
      cachedPrefix: async (req) => ({ chunks: models.engineOf(models.resolve(req.model).id)?.cachedPrefix(req.keys) ?? 0 }),
      async prefill(req, signal) {
        if (!req.requestId) throw new KvbridgeError("INVALID_ARGUMENT", "request_id is empty", { details: { param: "request_id" } });
        parseHostPort(req.decodeTarget, "decode_target");
        // Decided and recorded in one step: a second call with the same id while the first runs is refused.
        if (active.has(req.requestId)) throw new KvbridgeError("ALREADY_EXISTS", `request ${req.requestId} is already being prefilled here`);
        active.add(req.requestId, req.model, req.decodeTarget);
        const rlog = log.child({ requestId: req.requestId });
        try {
          return await withModel(req.model, signal, async (engine, modelId) => {
            const tokens = await engine.tokenizePrompt(req.prompt, { signal });
            active.evaluating(req.requestId, modelId, tokens.length);
            const { chunks, evalMs, cachedChunks } = await engine.prefill(tokens, signal);
            active.pushing(req.requestId, chunks.length);
            const t0 = performance.now();
            const res = await senderFor(engine.fingerprint).push(req.decodeTarget, req.requestId, chunks.map((c) => ({ key: c.key, data: c.bytes })), { signal });
            const transferMs = performance.now() - t0;
            recordPush(metrics, res);
            rlog.info(
              { model: modelId, tokens: tokens.length, chunks: chunks.length, cachedChunks, deduped: res.deduped, bytes: res.bytesSent, transport: res.transport, evalMs: Math.round(evalMs), transferMs: Math.round(transferMs) },
              "prefill pushed",
            );
            return {
              promptTokens: tokens.length,
              chunks: chunks.length,
              chunksDeduped: res.deduped,
              bytesSent: res.bytesSent,
              transport: res.transport,
              evalMs,
              transferMs,
              modelId,
              fingerprint: engine.fingerprint,
            };
          });
        } catch (err) {
          const e = toKvbridgeError(err);
          if (e.code === "CANCELLED") rlog.info("prefill cancelled by its caller");
          else if (e.code === "INVALID_ARGUMENT" || e.code === "NOT_FOUND") rlog.info({ err: e.message, reason: e.details.reason, limit: e.details.limit }, "prefill refused");
          else rlog.error({ err: e.message, code: e.code }, "prefill failed");
          throw e;
        } finally {
          active.delete(req.requestId);
          lifecycle.workEnded();
        }
      },
    };

    const v1 = kvbridgeV1();
    const server = await startGrpcServer(
      opts.listen,
      [
        { name: "kvbridge.v1.Prefill", definition: v1.Prefill.service, implementation: prefillHandlers(ops) },
        { name: "kvbridge.v1.Models", definition: v1.Models.service, implementation: modelsHandlers(models, { nodeId, role: "prefill" }) },
        {
          name: "kvbridge.v1.Inspect",
          definition: v1.Inspect.service,
          implementation: prefillInspectHandlers({
            nodeId,
            version: VERSION,
            transports: Object.keys(opts.transports),
            serving: () => lifecycle.accepting,
            models: () => models,
            fingerprint: () => models.engineOf(models.defaultModel)?.fingerprint ?? "",
            prefills: () => active.list(),
          }),
        },
      ],
      opts.grpcCredentials,
      opts.healthListen,
      serverInterceptors({ gate: prefillAdmission(nodeId, lifecycle), metrics, logger: log }),
    );
    lifecycle.defer(() => server.close(1_000));

    let metricsAddress: string | undefined;
    if (opts.metricsListen) {
      const ms = await startMetricsServer(opts.metricsListen, metrics.registry);
      lifecycle.defer(() => ms.close());
      metricsAddress = ms.address;
    }
    // Popped first on close: health says NOT_SERVING before anything is taken down.
    lifecycle.defer(() => server.setServing("NOT_SERVING"));

    return {
      grpc: server,
      grpcAddress: server.address,
      sender: defaultSender,
      senderFor,
      models,
      metrics,
      metricsAddress,
      activeRequests: () => active.size,
      drain(timeoutMs) {
        const drained = lifecycle.drain(timeoutMs);
        server.setServing("NOT_SERVING");
        log.info({ nodeId, inFlight: active.size, timeoutMs }, "draining: new prefills refused, waiting for those in flight");
        return drained;
      },
      close: () => lifecycle.close(),
    };
  });
  role.grpc.setServing("SERVING");
  log.info(
    {
      nodeId,
      grpc: role.grpcAddress,
      health: role.grpc.healthAddress,
      metrics: role.metricsAddress,
      models: models.catalog.ids(),
      defaultModel: models.defaultModel,
      fingerprint: models.engineOf(models.defaultModel)?.fingerprint,
      promptLimits: models.engineOf(models.defaultModel)?.promptLimits,
    },
    "prefill node serving",
  );
  return role;
}

/** The role's models: the given ones, or the one engine given (its owner closes it). */
function nodeModelsOf(opts: PrefillRoleOptions): NodeModels {
  if (opts.models && opts.engine) throw new KvbridgeError("INVALID_ARGUMENT", "a prefill role takes an engine or models, not both");
  if (opts.models) return new NodeModels(opts.models);
  if (!opts.engine) throw new KvbridgeError("INVALID_ARGUMENT", "a prefill role needs an engine or models");
  return NodeModels.preloaded(Promise.resolve(opts.engine), opts.engine.modelId, false);
}

/** How many leading tokens are the model's own (its BOS), as tokenizePrompt puts them before a prompt's text. */
function leadingSpecial(engine: LlamaEngine, tokens: readonly number[]): number {
  const prefix = engine.tokenize("");
  return prefix.length > 0 && prefix.every((t, i) => tokens[i] === t) ? prefix.length : 0;
}

/** Former name of startPrefillRole. */
export const startPrefillNode = startPrefillRole;

/**
 * The admission gate of a prefill node: a Prefill is refused (UNAVAILABLE) unless the node is serving,
 * with reason "draining" once it drains or closes ("loading" while it still starts), so a router
 * sends it elsewhere. Plan, which holds nothing on the node, is always answered.
 */
function prefillAdmission(nodeId: string, lifecycle: RoleLifecycle): AdmissionGate {
  const prefill = kvbridgeV1().Prefill.service.Prefill.path;
  return {
    refusal(method) {
      if (method !== prefill || lifecycle.accepting) return undefined;
      if (lifecycle.phase === "starting") {
        return new KvbridgeError("UNAVAILABLE", `prefill node ${nodeId} is still starting; retry shortly or use another node`, { details: { reason: "loading" } });
      }
      return new KvbridgeError("UNAVAILABLE", `prefill node ${nodeId} is draining and takes no new prefills; use another node`, { details: { reason: "draining" } });
    },
  };
}
