// The prefill node: evaluates prompts with the engine, cuts the KV state into chunks and pushes
// them to the decode node the router chose. Each call has its own AbortSignal end to end.

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { LlamaEngine } from "../engine/llama-engine.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import type { PrefillHandlers } from "../wire/generated/kvbridge/v1/Prefill.js";
import { kvbridgeV1 } from "../wire/proto.js";
import { callSignal, unaryHandler } from "../wire/unary.js";
import { KvSender, type TransportPreference } from "../transfer/sender.js";
import type { SenderTransport, TransportKind } from "../transport/transport.js";
import { nodeMetrics, recordFailure, recordPush, type NodeMetrics } from "../observability/metrics.js";
import { startMetricsServer } from "../observability/metrics-server.js";
import { PROTOCOL_VERSION } from "../wire/proto.js";
import { startGrpcServer, type NodeGrpcServer } from "../services/grpc-server.js";
import { VERSION } from "./version.js";
import { parseHostPort, type HostPort } from "./host-port.js";

export const MAX_PROMPT_CHARS = 4 * 1024 * 1024;

export interface PrefillNodeOptions {
  listen: HostPort;
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

export interface PrefillNode {
  grpc: NodeGrpcServer;
  grpcAddress: string;
  sender: KvSender;
  activeRequests(): number;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startPrefillNode(opts: PrefillNodeOptions): Promise<PrefillNode> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `prefill-${hostname()}-${process.pid}`;
  const { engine } = opts;
  const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
  metrics.nodeInfo.set({ node_id: nodeId, role: "prefill", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
  const sender = new KvSender({
    fingerprint: engine.fingerprint,
    transports: opts.transports,
    preference: opts.transport,
    senderId: nodeId,
    logger: log,
    credentials: opts.channelCredentials,
    faultDelayBeforeWriteMs: opts.faultDelayBeforeWriteMs,
  });
  let serving = false;
  const active = new Set<string>();

  const checkPrompt = (prompt: string): void => {
    if (typeof prompt !== "string" || prompt.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", "prompt is empty");
    if (prompt.length > MAX_PROMPT_CHARS) throw new KvbridgeError("INVALID_ARGUMENT", `prompt is ${prompt.length} characters; the most is ${MAX_PROMPT_CHARS}`);
  };

  const handlers: PrefillHandlers = {
    Plan: unaryHandler((req) => {
      checkPrompt(req.prompt);
      const tokens = engine.tokenize(req.prompt);
      return { promptTokens: tokens.length, keys: engine.chunkKeys(tokens), fingerprint: engine.fingerprint, modelId: engine.modelId };
    }),
    Prefill: unaryHandler(async (req, call) => {
      if (!serving) throw new KvbridgeError("UNAVAILABLE", `prefill node ${nodeId} is not serving (starting or draining)`);
      if (!req.requestId) throw new KvbridgeError("INVALID_ARGUMENT", "request_id is empty");
      checkPrompt(req.prompt);
      parseHostPort(req.decodeTarget, "decode_target");
      const rlog = log.child({ requestId: req.requestId });
      const signal = callSignal(call as grpc.ServerUnaryCall<unknown, unknown>);
      active.add(req.requestId);
      try {
        const tokens = engine.tokenize(req.prompt);
        if (tokens.length + 1 > engine.contextSize) {
          throw new KvbridgeError("INVALID_ARGUMENT", `prompt is ${tokens.length} tokens; the context holds ${engine.contextSize}`);
        }
        const { chunks, evalMs } = await engine.prefill(tokens, signal);
        const t0 = performance.now();
        const res = await sender.push(req.decodeTarget, req.requestId, chunks.map((c) => ({ key: c.key, data: c.bytes })), { signal });
        const transferMs = performance.now() - t0;
        recordPush(metrics, res);
        rlog.info(
          { tokens: tokens.length, chunks: chunks.length, deduped: res.deduped, bytes: res.bytesSent, transport: res.transport, evalMs: Math.round(evalMs), transferMs: Math.round(transferMs) },
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
        };
      } catch (err) {
        const e = toKvbridgeError(err);
        recordFailure(metrics, "prefill", e);
        if (e.code === "CANCELLED") rlog.info("prefill cancelled by its caller");
        else rlog.error({ err: e.message, code: e.code }, "prefill failed");
        throw e;
      } finally {
        active.delete(req.requestId);
      }
    }),
  };

  const server = await startGrpcServer(
    opts.listen,
    [{ name: "kvbridge.v1.Prefill", definition: kvbridgeV1().Prefill.service, implementation: handlers as unknown as grpc.UntypedServiceImplementation }],
    opts.grpcCredentials,
    opts.healthListen,
  );
  const metricsServer = opts.metricsListen ? await startMetricsServer(opts.metricsListen, metrics.registry) : undefined;
  serving = true;
  server.setServing("SERVING");
  log.info({ nodeId, grpc: server.address, health: server.healthAddress, metrics: metricsServer?.address, fingerprint: engine.fingerprint, model: engine.modelId }, "prefill node serving");

  let closed: Promise<void> | undefined;
  const node: PrefillNode = {
    grpc: server,
    grpcAddress: server.address,
    sender,
    activeRequests: () => active.size,
    async drain(timeoutMs) {
      serving = false;
      server.setServing("NOT_SERVING");
      const deadline = Date.now() + timeoutMs;
      while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (active.size > 0) log.warn({ nodeId, left: active.size }, "drain timeout: cancelling prefills still running");
      await node.close();
    },
    close() {
      closed ??= (async () => {
        serving = false;
        server.setServing("NOT_SERVING");
        await server.close(1_000);
        await sender.close();
        await metricsServer?.close();
        log.info({ nodeId }, "prefill node closed");
      })();
      return closed;
    },
  };
  return node;
}
