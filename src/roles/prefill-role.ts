// The prefill role: evaluates prompts with the engine, cuts the KV state into chunks and pushes them
// to the decode node the router chose. Built on RoleLifecycle (a start that fails, e.g. on a metrics
// port already taken, releases the gRPC server and the sender it had acquired); the gRPC adapter is
// services/prefill-service.ts, behind the server interceptors (request-id log, metrics, admission).
// Prompts are tokenized through the engine's tokenizePrompt: limits checked before tokenizing, long
// prompts tokenized off the event loop. Each call has its own AbortSignal end to end.

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { LlamaEngine } from "../engine/llama-engine.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { nodeMetrics, recordPush, type NodeMetrics } from "../observability/metrics.js";
import { startMetricsServer } from "../observability/metrics-server.js";
import { declareModel } from "../observability/serving-records.js";
import { startGrpcServer, type NodeGrpcServer } from "../services/grpc-server.js";
import { prefillHandlers, type PrefillOperations } from "../services/prefill-service.js";
import { serverInterceptors, type AdmissionGate } from "../services/server-interceptors.js";
import { KvSender, type TransportPreference } from "../transfer/sender.js";
import type { SenderTransport, TransportKind } from "../transport/transport.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../wire/proto.js";
import { parseHostPort, type HostPort } from "./host-port.js";
import { RoleLifecycle } from "./lifecycle.js";
import { VERSION } from "./version.js";

export interface PrefillRoleOptions {
  listen: HostPort;
  /** The engine, loaded; the role does not close it (its owner does, after the role's drain). */
  engine: LlamaEngine;
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
  sender: KvSender;
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
  /** Idempotent: gRPC server, metrics server and sender. */
  close(): Promise<void>;
}

/** Former names, kept for callers that start a prefill node. */
export type PrefillNodeOptions = PrefillRoleOptions;
export type PrefillNode = PrefillRole;

export async function startPrefillRole(opts: PrefillRoleOptions): Promise<PrefillRole> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `prefill-${hostname()}-${process.pid}`;
  const { engine } = opts;
  const active = new Set<string>();
  const lifecycle = new RoleLifecycle(log.child({ nodeId }), "prefill node", () => active.size);
  lifecycle.defer(() => log.info({ nodeId }, "prefill node closed"));
  const role = await lifecycle.start(async (): Promise<PrefillRole> => {
    const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
    metrics.nodeInfo.set({ node_id: nodeId, role: "prefill", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
    declareModel(metrics, engine.modelId);
    const sender = new KvSender({
      fingerprint: engine.fingerprint,
      transports: opts.transports,
      preference: opts.transport,
      senderId: nodeId,
      logger: log,
      credentials: opts.channelCredentials,
      faultDelayBeforeWriteMs: opts.faultDelayBeforeWriteMs,
    });
    lifecycle.defer(() => sender.close());

    const ops: PrefillOperations = {
      async plan(prompt, signal) {
        const tokens = await engine.tokenizePrompt(prompt, { signal });
        return { promptTokens: tokens.length, keys: engine.chunkKeys(tokens), fingerprint: engine.fingerprint, modelId: engine.modelId };
      },
      async prefill(req, signal) {
        if (!req.requestId) throw new KvbridgeError("INVALID_ARGUMENT", "request_id is empty", { details: { param: "request_id" } });
        parseHostPort(req.decodeTarget, "decode_target");
        // Decided and recorded in one step: a second call with the same id while the first runs is refused.
        if (active.has(req.requestId)) throw new KvbridgeError("ALREADY_EXISTS", `request ${req.requestId} is already being prefilled here`);
        active.add(req.requestId);
        const rlog = log.child({ requestId: req.requestId });
        try {
          const tokens = await engine.tokenizePrompt(req.prompt, { signal });
          const { chunks, evalMs } = await engine.prefill(tokens, signal);
          const t0 = performance.now();
          const res = await sender.push(req.decodeTarget, req.requestId, chunks.map((c) => ({ key: c.key, data: c.bytes })), { signal });
          const transferMs = performance.now() - t0;
          recordPush(metrics, res);
          rlog.info(
            { tokens: tokens.length, chunks: chunks.length, deduped: res.deduped, bytes: res.bytesSent, transport: res.transport, evalMs: Math.round(evalMs), transferMs: Math.round(transferMs) },
            "prefill pushed",
          );
          return { promptTokens: tokens.length, chunks: chunks.length, chunksDeduped: res.deduped, bytesSent: res.bytesSent, transport: res.transport, evalMs, transferMs };
        } catch (err) {
          const e = toKvbridgeError(err);
          if (e.code === "CANCELLED") rlog.info("prefill cancelled by its caller");
          else if (e.code === "INVALID_ARGUMENT") rlog.info({ err: e.message, reason: e.details.reason, limit: e.details.limit }, "prefill refused");
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
      [{ name: "kvbridge.v1.Prefill", definition: v1.Prefill.service, implementation: prefillHandlers(ops) }],
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
      sender,
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
    { nodeId, grpc: role.grpcAddress, health: role.grpc.healthAddress, metrics: role.metricsAddress, fingerprint: engine.fingerprint, model: engine.modelId, promptLimits: engine.promptLimits },
    "prefill node serving",
  );
  return role;
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
