// The decode role: a KV receiver (pool, store, data planes, gRPC control plane, inspection, admin,
// health, metrics) and, when given one, the engine that turns received KV chunks into tokens. Built
// on RoleLifecycle; `kvbridge decode` and `kvbridge up` both start it here, the same way.
// Several models (docs/models.md): the node holds them in a model host, accepts KV whose fingerprint
// is one of its loaded models', and serves the Models service; it serves once its default model has
// loaded the first time (a node of one engine: once the engine has loaded, as always).

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { DEFAULT_KV_WAIT_MS } from "../config/defaults.js";
import type { LlamaEngine } from "../engine/llama-engine.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { NodeModels, type NodeModelsOptions } from "../models/node-models.js";
import { allocatePoolMemory } from "../memory/mapped-pool.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import { nodeMetrics, type NodeMetrics } from "../observability/metrics.js";
import { countReceiverEvents, receiverSnapshot } from "../observability/metrics-receiver.js";
import { attachModelMetrics } from "../observability/model-metrics.js";
import { declareModel } from "../observability/serving-records.js";
import { startMetricsServer } from "../observability/metrics-server.js";
import { adminHandlers } from "../services/admin-service.js";
import { decodeEngineService, decodeHandlers, type DecodeEngineService, type RecomputePolicy } from "../services/decode-service.js";
import { startGrpcServer, type GrpcServiceBinding, type NodeGrpcServer } from "../services/grpc-server.js";
import { inspectHandlers } from "../services/inspect-service.js";
import { deferredModelsHandlers } from "../services/models-service.js";
import { receiverHandlers } from "../services/receiver-service.js";
import { serverInterceptors, type AdmissionGate } from "../services/server-interceptors.js";
import { KvReceiver, type NotOffered } from "../transfer/receiver.js";
import { TcpReceiverDataPlane } from "../transport/tcp/tcp-receiver.js";
import type { TcpTlsOptions } from "../transport/tcp/tcp-tls.js";
import type { ReceiverDataPlane, TransportKind } from "../transport/transport.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../wire/proto.js";
import type { HostPort } from "./host-port.js";
import { RoleLifecycle } from "./lifecycle.js";
import { VERSION } from "./version.js";
import type { UcxCommitGate } from "../transport/ucx/ucx-commit-receiver.js";

export interface DecodeRoleOptions {
  listen: HostPort;
  dataListen: HostPort;
  /** Address put into data-plane offers (the pod IP in Kubernetes); default: the listen host. */
  advertiseHost?: string;
  /** The pod's IP (env POD_IP, read by the CLI): offered when both listen addresses are wildcards. */
  podIp?: string;
  poolSlots: number;
  slotBytes: number;
  leaseMs: number;
  quarantineMs: number;
  holdMs?: number;
  transport: "auto" | TransportKind;
  lockMemory: boolean | "auto";
  nodeId?: string;
  logger: Logger;
  /**
   * The engine, loaded or still loading; absent: a receiver only (raw KV transfers). The node serves
   * health (NOT_SERVING), inspection and metrics while it loads, and refuses Hello, Alloc, Generate
   * and MatchPrefix (reason "loading"). If it fails to load, or its chunks do not fit the slots, the
   * node stays NOT_SERVING ("load failed"). The role owns it: it closes it on close.
   */
  engine?: Promise<LlamaEngine>;
  /**
   * The models the node serves (docs/models.md), instead of `engine`: the role loads them (its default
   * model first, at start; the others when asked for) and closes them. Each one's chunks must fit the
   * slots, else its load fails.
   */
  models?: NodeModelsOptions;
  /** When a needed KV chunk is lost: recompute it locally (default) or fail the request. */
  recomputePolicy?: RecomputePolicy;
  /** Default bound on Generate's wait for a request's chunks (DEFAULT_KV_WAIT_MS). */
  kvWaitMs?: number;
  /**
   * Optional UCX data plane factory (absent or failing: TCP only, with one log line); `commitGate` is
   * the node's receiver, so the UCX plane takes requests' commits on the data plane.
   */
  ucxDataPlane?: (memory: PoolMemory, logger: Logger, commitGate?: UcxCommitGate) => Promise<ReceiverDataPlane>;
  grpcCredentials?: grpc.ServerCredentials;
  /** Mutual TLS on the TCP data plane (give it with TLS grpcCredentials); plaintext when absent. */
  dataTls?: TcpTlsOptions;
  /**
   * With mutual TLS: client certificate names admitted to the Admin service (see
   * AdminServiceOptions.identities); default any certificate from the node's CA.
   */
  adminIdentities?: readonly string[];
  /** Token guarding the Admin service (kvctl evict/abort); without one, loopback callers only. */
  adminToken?: string;
  /** HTTP address for /metrics (Prometheus); none when absent. */
  metricsListen?: HostPort;
  /** A plaintext gRPC endpoint serving only grpc.health.v1 (for kubelet probes under mTLS). */
  healthListen?: HostPort;
  /** The node's metric set (share it to add other roles' metrics); default: a fresh registry. */
  metrics?: NodeMetrics;
  /**
   * Health turns NOT_SERVING when no slot could be given to a new request (none free, none
   * evictable) for this long: the pool is stuck, not just busy. Default: twice the lease.
   */
  stuckPoolMs?: number;
}

export type DecodeHealthReason = "serving" | "loading" | "load failed" | "draining" | "closed" | "pool stuck";

export interface DecodeRole {
  receiver: KvReceiver;
  grpc: NodeGrpcServer;
  dataPlanes: ReceiverDataPlane[];
  grpcAddress: string;
  transports: TransportKind[];
  metrics: NodeMetrics;
  /** host:port of /metrics when metricsListen was given. */
  metricsAddress?: string;
  /** Resolves once the engine (the default model) is attached (at once without one); rejects with why it failed to load. */
  engineReady: Promise<void>;
  /** The node's models once attached (at once with `models`, once the engine has loaded with `engine`). */
  models(): NodeModels | undefined;
  /** What grpc.health.v1 reports now, and why. */
  health(): { status: "SERVING" | "NOT_SERVING"; reason: DecodeHealthReason };
  /**
   * Health NOT_SERVING, new requests refused, requests already here (their later Alloc batches,
   * Commit, Generate) served; waits for them, at most timeoutMs, then closes. Returns how many were
   * still in flight at the deadline.
   */
  drain(timeoutMs: number): Promise<number>;
  /** Idempotent. Releases everything: servers, data planes, sweeper, engine, pool memory. */
  close(): Promise<void>;
}

type EngineState = "none" | "loading" | "loaded" | "failed";

/** What the admission gate answers from: first that applies of closed, loading (or failed), draining, serving. */
type Admission = "serving" | "draining" | "loading" | "load failed" | "closed";

export async function startDecodeRole(opts: DecodeRoleOptions): Promise<DecodeRole> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `decode-${hostname()}-${process.pid}`;
  let receiver: KvReceiver | undefined;
  let engineService: DecodeEngineService | undefined;
  const inFlight = (): number => (receiver?.activeRequests ?? 0) + (engineService?.activeRequests() ?? 0);
  const lifecycle = new RoleLifecycle(log.child({ nodeId }), "decode node", inFlight);
  // A load that fails before the role attaches to it (below, once serving) is reported there, not
  // as an unhandled rejection.
  opts.engine?.catch(() => undefined);
  lifecycle.defer(() => log.info({ nodeId }, "decode node closed"));
  const { role, serving } = await lifecycle.start(async () => {
    // TCP only: plain mmap; otherwise "auto" lets UCX allocate the pool (same-host peers then write it directly).
    const { memory, warning } = allocatePoolMemory({ slots: opts.poolSlots, slotBytes: opts.slotBytes, lock: opts.lockMemory, allocator: opts.transport === "tcp" ? "mmap" : "auto" });
    lifecycle.defer(() => memory.close());
    if (warning) log.warn({ nodeId }, warning);

    // Closed after the gRPC server and the data planes (deferred before them): no Generate is
    // running on them by then. Set when the models (or the engine) attach.
    let models: NodeModels | undefined;
    lifecycle.defer(() => models?.close());

    const rx = new KvReceiver({ memory, leaseMs: opts.leaseMs, quarantineMs: opts.quarantineMs, holdMs: opts.holdMs, fingerprint: "", nodeId, logger: log });
    receiver = rx;
    lifecycle.defer(() => rx.close());
    rx.events.on("ended", () => lifecycle.workEnded());

    const notOffered: NotOffered[] = [];
    const dataPlanes = await startDataPlanes(opts, rx, memory, lifecycle, nodeId, notOffered);
    rx.setOffers(dataPlanes.map((d) => d.offer()), notOffered);
    const transports = dataPlanes.map((d) => d.kind);

    let engineState: EngineState = opts.engine || opts.models ? "loading" : "none";
    const stuckPoolMs = opts.stuckPoolMs ?? 2 * opts.leaseMs;
    let stuckSince: number | undefined;
    const health = (): { status: "SERVING" | "NOT_SERVING"; reason: DecodeHealthReason } => {
      const reason = decodeHealth();
      return { status: reason === "serving" ? "SERVING" : "NOT_SERVING", reason };
    };
    /**
     * The health decision, first reason wins. "pool stuck": no slot could be given to a new request
     * (none free beyond reservations, none evictable) continuously for `stuckPoolMs`. A busy pool that
     * frees slots as requests finish never gets there; one held by stuck requests or quarantine does.
     */
    const decodeHealth = (): DecodeHealthReason => {
      const phase = lifecycle.phase;
      if (phase === "closing" || phase === "closed" || rx.isClosed) return "closed";
      if (phase === "draining") return "draining";
      if (engineState === "failed") return "load failed";
      if (engineState === "loading" || phase === "starting") return "loading";
      const now = Date.now();
      if (rx.canAdmitOne()) stuckSince = undefined;
      else stuckSince ??= now;
      return stuckSince !== undefined && now - stuckSince >= stuckPoolMs ? "pool stuck" : "serving";
    };

    const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
    metrics.nodeInfo.set({ node_id: nodeId, role: "decode", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
    lifecycle.defer(metrics.attachReceiver(receiverSnapshot(rx, () => health().status === "SERVING")));
    lifecycle.defer(countReceiverEvents(rx, metrics));

    const v1 = kvbridgeV1();
    const services: GrpcServiceBinding[] = [
      { name: "kvbridge.v1.KvReceiver", definition: v1.KvReceiver.service, implementation: receiverHandlers(rx) },
      {
        name: "kvbridge.v1.Inspect",
        definition: v1.Inspect.service,
        implementation: inspectHandlers(rx, { role: "decode", version: VERSION, transports, serving: () => health().status === "SERVING", models: () => models, generations: () => engineService?.activeGenerations() ?? [] }),
      },
      {
        name: "kvbridge.v1.Admin",
        definition: v1.Admin.service,
        implementation: adminHandlers(rx, { token: opts.adminToken, identities: opts.adminIdentities, logger: log }),
      },
    ];
    if (opts.engine || opts.models) {
      services.push({ name: "kvbridge.v1.Decode", definition: v1.Decode.service, implementation: decodeHandlers(() => engineService) });
      services.push({ name: "kvbridge.v1.Models", definition: v1.Models.service, implementation: deferredModelsHandlers(() => models, { nodeId, role: "decode" }) });
    }
    const admission = (): Admission => {
      const phase = lifecycle.phase;
      if (phase === "closing" || phase === "closed") return "closed";
      if (engineState === "failed") return "load failed";
      if (engineState === "loading" || phase === "starting") return "loading";
      return phase === "draining" ? "draining" : "serving";
    };
    const gate = decodeAdmission(nodeId, rx, admission);
    const server = await startGrpcServer(opts.listen, services, opts.grpcCredentials, opts.healthListen, serverInterceptors({ gate, metrics, logger: log }));
    lifecycle.defer(() => server.close(1_000));

    let reported: DecodeHealthReason | undefined;
    let status: string | undefined;
    const refreshHealth = (): void => {
      const h = health();
      // Set on change only: Watch streams (grpc.health.v1) send an update for every set.
      if (h.status !== status) server.setServing(h.status);
      status = h.status;
      if (h.reason !== reported) {
        if (reported !== undefined) {
          const level = h.reason === "serving" || h.reason === "draining" || h.reason === "closed" ? "info" : "warn";
          log[level]({ nodeId, health: h.status, reason: h.reason }, "health changed");
        }
        reported = h.reason;
      }
    };
    // Health follows the pool without anyone asking: a stuck pool turns NOT_SERVING within a tick.
    const healthTimer = setInterval(refreshHealth, Math.max(50, Math.min(1_000, Math.floor(stuckPoolMs / 4))));
    healthTimer.unref();
    lifecycle.defer(() => clearInterval(healthTimer));

    let metricsAddress: string | undefined;
    if (opts.metricsListen) {
      const ms = await startMetricsServer(opts.metricsListen, metrics.registry);
      lifecycle.defer(() => ms.close());
      metricsAddress = ms.address;
    }
    // Popped first on close: health says NOT_SERVING before anything is taken down.
    lifecycle.defer(refreshHealth);

    const engineReady = attachModels(opts, rx, lifecycle, log, nodeId, {
      attached(m, svc) {
        models = m;
        engineService = svc;
        lifecycle.defer(attachModelMetrics(metrics.registry, "decode", m.host.events, m.snapshots()));
      },
      ready(m) {
        declareModel(metrics, m.defaultModel);
        engineState = "loaded";
        refreshHealth();
      },
      failed() {
        engineState = "failed";
        refreshHealth();
      },
    });
    const role: DecodeRole = {
      receiver: rx,
      grpc: server,
      dataPlanes,
      grpcAddress: server.address,
      transports,
      metrics,
      metricsAddress,
      engineReady,
      models: () => models,
      health,
      async drain(timeoutMs) {
        const drained = lifecycle.drain(timeoutMs);
        refreshHealth();
        log.info({ nodeId, inFlight: inFlight(), timeoutMs }, "draining: new requests refused, waiting for those in flight");
        return drained;
      },
      close: () => lifecycle.close(),
    };
    const serving = (): void => {
      log.info(
        {
          nodeId,
          grpc: server.address,
          health: server.healthAddress,
          metrics: metricsAddress,
          offers: rx.getOffers().map((o) => (o.kind === "tcp" ? `tcp://${o.host}:${o.port}` : "ucx")),
          pool: { kind: memory.kind, locked: memory.locked, slots: memory.slots, slotBytes: memory.slotBytes },
        },
        "decode node serving",
      );
      refreshHealth();
    };
    return { role, serving };
  });
  // Started: health turns SERVING now, or once the engine has loaded.
  serving();
  return role;
}

/** The TCP data plane and, unless only TCP was asked for, UCX's (a failing UCX falls back to TCP with a warning). */
async function startDataPlanes(opts: DecodeRoleOptions, rx: KvReceiver, memory: PoolMemory, lifecycle: RoleLifecycle, nodeId: string, notOffered: NotOffered[]): Promise<ReceiverDataPlane[]> {
  const log = opts.logger;
  const dataPlanes: ReceiverDataPlane[] = [];
  // Each data plane not offered is recorded with why: Hello and kvctl status say it.
  if (opts.transport === "tcp") notOffered.push({ transport: "ucx", reason: "not_selected", message: "the node runs with --transport tcp" });
  else if (!opts.ucxDataPlane) notOffered.push({ transport: "ucx", reason: "ucx_unavailable", message: "this node was started without a UCX data plane" });
  if (opts.transport !== "tcp" && opts.ucxDataPlane) {
    try {
      const ucx = await opts.ucxDataPlane(memory, log, rx);
      dataPlanes.push(ucx);
      lifecycle.defer(() => ucx.close());
    } catch (err) {
      if (opts.transport === "ucx") throw err;
      const e = toKvbridgeError(err);
      notOffered.push({ transport: "ucx", reason: e.details.reason === "ucx_not_direct" ? "ucx_not_direct" : "ucx_unavailable", message: e.message });
      log.warn({ nodeId, reason: e.message }, "UCX data plane unavailable; serving over TCP only");
    }
  }
  if (opts.transport === "ucx") notOffered.push({ transport: "tcp", reason: "not_selected", message: "the node runs with --transport ucx" });
  if (opts.transport !== "ucx") {
    const tcp = await TcpReceiverDataPlane.listen({
      host: opts.dataListen.host,
      port: opts.dataListen.port,
      advertiseHost: opts.advertiseHost ?? advertisable(opts.dataListen.host, opts.listen.host, opts.podIp),
      memory,
      gate: rx,
      maxFrameBytes: Math.max(opts.slotBytes, 1),
      logger: log,
      tls: opts.dataTls,
    });
    dataPlanes.push(tcp);
    lifecycle.defer(() => tcp.close());
  }
  return dataPlanes;
}

/**
 * The one way models join a decode role: given as models (kvbridge decode, kvbridge up) or as one
 * engine, loaded already or still loading. The receiver accepts the fingerprints of the loaded models
 * (kept up to date on every state change) and the Decode service starts answering; the node serves
 * once its default model has loaded. A model whose chunks do not fit the slots fails its load.
 */
function attachModels(
  opts: DecodeRoleOptions,
  rx: KvReceiver,
  lifecycle: RoleLifecycle,
  log: Logger,
  nodeId: string,
  on: { attached(m: NodeModels, svc: DecodeEngineService): void; ready(m: NodeModels): void; failed(): void },
): Promise<void> {
  if (!opts.engine && !opts.models) return Promise.resolve();
  if (opts.engine && opts.models) return Promise.reject(new KvbridgeError("INVALID_ARGUMENT", "a decode role takes an engine or models, not both"));
  const fits = (e: LlamaEngine): void => {
    if (e.maxChunkBytes > opts.slotBytes) {
      throw new KvbridgeError(
        "INVALID_ARGUMENT",
        `a ${e.chunkTokens}-token KV chunk of model ${e.modelId} is ${e.maxChunkBytes} bytes but the pool's slots are ${opts.slotBytes}; raise --slot-bytes to at least ${e.maxChunkBytes} or lower --chunk-tokens`,
      );
    }
  };
  const attach = (m: NodeModels): NodeModels => {
    rx.setFingerprints([]);
    m.host.events.on("state", () => rx.setFingerprints(m.servingFingerprints()));
    const svc = decodeEngineService({
      models: m,
      receiver: rx,
      policy: opts.recomputePolicy ?? "recompute",
      kvWaitMs: opts.kvWaitMs ?? DEFAULT_KV_WAIT_MS,
      logger: log,
      onGenerateEnded: () => lifecycle.workEnded(),
    });
    on.attached(m, svc);
    return m;
  };
  const attached: Promise<NodeModels> = opts.models
    ? Promise.resolve(attach(new NodeModels({ ...opts.models, check: fits })))
    : opts.engine!.then((e) => {
        // Closed while it loaded: nobody else will close it.
        if (lifecycle.phase === "closing" || lifecycle.phase === "closed") {
          void e.close();
          throw new KvbridgeError("UNAVAILABLE", `decode node ${nodeId} closed while its engine loaded`);
        }
        try {
          fits(e);
        } catch (err) {
          void e.close();
          throw err;
        }
        return attach(NodeModels.preloaded(Promise.resolve(e), e.modelId, true));
      });
  const ready = attached.then(async (m) => {
    const first = await m.host.ensureLoaded(m.defaultModel);
    on.ready(m);
    log.info({ nodeId, models: m.catalog.ids(), defaultModel: first.id, fingerprint: m.engineOf(first.id)?.fingerprint }, "engine loaded: decode node serving");
  });
  ready.catch((err: unknown) => {
    on.failed();
    if (lifecycle.phase === "closing" || lifecycle.phase === "closed") log.info({ nodeId }, "engine load ended after the node closed");
    else log.error({ nodeId, err: toKvbridgeError(err).message }, "engine failed to load: the node stays NOT_SERVING");
  });
  return ready;
}

/**
 * The admission gate of a decode node. Loading (or failed, or shutting down): Hello, Alloc, Generate and
 * MatchPrefix are refused, since the fingerprint is not final and nothing could be generated.
 * Draining: requests already on the node go on (their later Alloc batches, their Generate); new ones
 * and MatchPrefix are refused so routers send them elsewhere. Everything else is always answered.
 */
function decodeAdmission(nodeId: string, rx: KvReceiver, admission: () => Admission): AdmissionGate {
  const v1 = kvbridgeV1();
  const hello = v1.KvReceiver.service.Hello.path;
  const alloc = v1.KvReceiver.service.Alloc.path;
  const generate = v1.Decode.service.Generate.path;
  const matchPrefix = v1.Decode.service.MatchPrefix.path;
  const refuse = (message: string, reason: "loading" | "draining"): KvbridgeError => new KvbridgeError("UNAVAILABLE", message, { details: { reason } });
  return {
    refusal(method, request) {
      if (method !== hello && method !== alloc && method !== generate && method !== matchPrefix) return undefined;
      switch (admission()) {
        case "serving":
          return undefined;
        case "loading":
          return refuse(`decode node ${nodeId} is not serving yet: its engine is still loading; use another node or retry shortly`, "loading");
        case "load failed":
          return refuse(`decode node ${nodeId} is not serving: its engine failed to load; use another node`, "loading");
        case "closed":
          return refuse(`decode node ${nodeId} is shutting down; use another node`, "draining");
        case "draining": {
          if (method === hello) return undefined;
          if (method === matchPrefix) return refuse(`decode node ${nodeId} is draining and takes no new requests`, "draining");
          const id = (request as { requestId?: unknown }).requestId;
          const requestId = typeof id === "string" ? id : "";
          if (rx.hasRequest(requestId)) return undefined;
          return refuse(`node ${nodeId} is draining and takes no new requests; send ${requestId || "it"} to another node`, "draining");
        }
      }
    },
  };
}

/** A wildcard listen address is not something a peer can dial: offer the control-plane host, else the pod IP. */
function advertisable(dataHost: string, grpcHost: string, podIp: string | undefined): string {
  const wildcard = (h: string): boolean => h === "0.0.0.0" || h === "::" || h === "";
  if (!wildcard(dataHost)) return dataHost;
  if (!wildcard(grpcHost)) return grpcHost;
  return podIp || "127.0.0.1";
}
