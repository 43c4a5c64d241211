// The decode node: a KV receiver (pool, store, data planes, gRPC control plane, inspection, admin,
// health, metrics) and, when a model is loaded, the engine that turns received KV chunks into tokens.

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { allocatePoolMemory } from "../memory/mapped-pool.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import { nodeMetrics, type NodeMetrics } from "../observability/metrics.js";
import { countReceiverAborts, instrumentReceiverHandlers, receiverSnapshot } from "../observability/metrics-receiver.js";
import { startMetricsServer } from "../observability/metrics-server.js";
import { toServiceError } from "../wire/error-status.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../wire/proto.js";
import { adminHandlers } from "../services/admin-service.js";
import { KvReceiver } from "../transfer/receiver.js";
import { inspectHandlers, receiverHandlers } from "../services/receiver-service.js";
import { TcpReceiverDataPlane } from "../transport/tcp/tcp-receiver.js";
import type { TcpTlsOptions } from "../transport/tcp/tcp-tls.js";
import type { ReceiverDataPlane, TransportKind } from "../transport/transport.js";
import { startGrpcServer, type GrpcServiceBinding, type NodeGrpcServer } from "../services/grpc-server.js";
import type { HostPort } from "./host-port.js";
import { VERSION } from "./version.js";

export interface DecodeNodeOptions {
  listen: HostPort;
  dataListen: HostPort;
  /** Address put into data-plane offers (the pod IP in Kubernetes); default: the listen host. */
  advertiseHost?: string;
  poolSlots: number;
  slotBytes: number;
  leaseMs: number;
  quarantineMs: number;
  holdMs?: number;
  transport: "auto" | TransportKind;
  lockMemory: boolean | "auto";
  nodeId?: string;
  /** Model compatibility fingerprint; "" when no engine is loaded (raw transfers). */
  fingerprint?: string;
  logger: Logger;
  /** Extra gRPC services (the engine's Generate service), wired by the caller. */
  extraServices?: (rx: KvReceiver) => GrpcServiceBinding[];
  /** Optional UCX data plane factory (absent or failing: TCP only, with one log line). */
  ucxDataPlane?: (memory: PoolMemory, logger: Logger) => Promise<ReceiverDataPlane>;
  grpcCredentials?: grpc.ServerCredentials;
  /** Mutual TLS on the TCP data plane (give it with TLS grpcCredentials); plaintext when absent. */
  dataTls?: TcpTlsOptions;
  /**
   * With mutual TLS: client certificate names admitted to the Admin service (see
   * AdminServiceOptions.identities); default any certificate from the node's CA.
   */
  adminIdentities?: readonly string[];
  /** HTTP address for /metrics (Prometheus); none when absent. */
  metricsListen?: HostPort;
  /** A plaintext gRPC endpoint serving only grpc.health.v1 (for kubelet probes under mTLS). */
  healthListen?: HostPort;
  /** The node's metric set (share it to add the engine's own metrics); default: a fresh registry. */
  metrics?: NodeMetrics;
  /**
   * Token guarding the Admin service (kvctl evict/abort); default: env KVBRIDGE_ADMIN_TOKEN. Without
   * one, admin calls are accepted from loopback callers only.
   */
  adminToken?: string;
  /**
   * Settles when the engine has loaded. Until it resolves, health is NOT_SERVING and Allocs are
   * refused; if it rejects, the node stays NOT_SERVING (and says why in the log).
   */
  loading?: Promise<unknown>;
  /**
   * Health turns NOT_SERVING when no slot could be given to a new request (none free, none
   * evictable) for this long: the pool is stuck, not just busy. Default: twice the lease.
   */
  stuckPoolMs?: number;
}

export type DecodeHealthReason = "serving" | "loading" | "load failed" | "draining" | "closed" | "pool stuck";

export interface DecodeNode {
  receiver: KvReceiver;
  grpc: NodeGrpcServer;
  dataPlanes: ReceiverDataPlane[];
  grpcAddress: string;
  transports: TransportKind[];
  metrics: NodeMetrics;
  /** host:port of /metrics when metricsListen was given. */
  metricsAddress?: string;
  /** What grpc.health.v1 reports now, and why. */
  health(): { status: "SERVING" | "NOT_SERVING"; reason: DecodeHealthReason };
  /** Health NOT_SERVING, refuse new Allocs, wait for in-flight requests (bounded), then close. */
  drain(timeoutMs: number): Promise<void>;
  /** Idempotent. Releases everything: servers, data planes, sweeper, pool memory. */
  close(): Promise<void>;
}

export async function startDecodeNode(opts: DecodeNodeOptions): Promise<DecodeNode> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `decode-${hostname()}-${process.pid}`;
  // TCP only: plain mmap; otherwise "auto" lets UCX allocate the pool (same-host peers then write it directly).
  const { memory, warning } = allocatePoolMemory({ slots: opts.poolSlots, slotBytes: opts.slotBytes, lock: opts.lockMemory, allocator: opts.transport === "tcp" ? "mmap" : "auto" });
  if (warning) log.warn({ nodeId }, warning);
  const cleanups: Array<() => Promise<void> | void> = [() => memory.close()];
  const runCleanups = async (): Promise<void> => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log.error({ err: toKvbridgeError(err).message }, "cleanup failed");
      }
    }
    cleanups.length = 0;
  };

  try {
    const receiver = new KvReceiver({
      memory,
      leaseMs: opts.leaseMs,
      quarantineMs: opts.quarantineMs,
      holdMs: opts.holdMs,
      fingerprint: opts.fingerprint ?? "",
      nodeId,
      logger: log,
    });
    cleanups.push(() => receiver.close());

    const dataPlanes: ReceiverDataPlane[] = [];
    if (opts.transport !== "tcp" && opts.ucxDataPlane) {
      try {
        const ucx = await opts.ucxDataPlane(memory, log);
        dataPlanes.push(ucx);
        cleanups.push(() => ucx.close());
      } catch (err) {
        const msg = toKvbridgeError(err).message;
        if (opts.transport === "ucx") throw err;
        log.warn({ nodeId, reason: msg }, "UCX data plane unavailable; serving over TCP only");
      }
    }
    if (opts.transport !== "ucx") {
      const tcp = await TcpReceiverDataPlane.listen({
        host: opts.dataListen.host,
        port: opts.dataListen.port,
        advertiseHost: opts.advertiseHost ?? advertisable(opts.dataListen.host, opts.listen.host),
        memory,
        gate: receiver,
        maxFrameBytes: Math.max(opts.slotBytes, 1),
        logger: log,
        tls: opts.dataTls,
      });
      dataPlanes.push(tcp);
      cleanups.push(() => tcp.close());
    }
    receiver.setOffers(dataPlanes.map((d) => d.offer()));
    const transports = dataPlanes.map((d) => d.kind);

    // Health is one decision over these flags and the pool (decodeHealth); `draining` refuses new
    // requests only: Allocs of requests already on the node go on, so a drain loses none of them.
    const state = { started: false, loading: opts.loading !== undefined, loadFailed: false, draining: false, closed: false, stuckSince: undefined as number | undefined };
    const stuckPoolMs = opts.stuckPoolMs ?? 2 * opts.leaseMs;
    const health = (): { status: "SERVING" | "NOT_SERVING"; reason: DecodeHealthReason } => {
      const reason = decodeHealth(state, receiver, stuckPoolMs);
      return { status: reason === "serving" ? "SERVING" : "NOT_SERVING", reason };
    };
    const acceptsRequests = (): boolean => state.started && !state.loading && !state.loadFailed && !state.closed;
    const identity = { role: "decode", version: VERSION, serving: acceptsRequests };
    const inspectIdentity = { ...identity, serving: () => health().status === "SERVING" };

    const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
    const v1 = kvbridgeV1();
    const plain = receiverHandlers(receiver, identity);
    const rxHandlers = instrumentReceiverHandlers(plain, receiver, metrics);
    const alloc = rxHandlers.Alloc;
    rxHandlers.Alloc = (call, callback) => {
      if (state.draining && !receiver.store.hasRequest(call.request.requestId)) {
        metrics.failures.inc({ op: "alloc", reason: "unavailable" });
        callback(toServiceError(new KvbridgeError("UNAVAILABLE", `node ${nodeId} is draining and takes no new requests; send ${call.request.requestId} to another node`)));
        return;
      }
      alloc(call, callback);
    };
    const services: GrpcServiceBinding[] = [
      {
        name: "kvbridge.v1.KvReceiver",
        definition: v1.KvReceiver.service,
        implementation: rxHandlers as unknown as grpc.UntypedServiceImplementation,
      },
      {
        name: "kvbridge.v1.Inspect",
        definition: v1.Inspect.service,
        implementation: inspectHandlers(receiver, inspectIdentity, () => transports) as unknown as grpc.UntypedServiceImplementation,
      },
      {
        name: "kvbridge.v1.Admin",
        definition: v1.Admin.service,
        implementation: adminHandlers(receiver, { token: opts.adminToken ?? process.env.KVBRIDGE_ADMIN_TOKEN, identities: opts.adminIdentities, logger: log }) as unknown as grpc.UntypedServiceImplementation,
      },
      ...(opts.extraServices?.(receiver) ?? []),
    ];
    // After extraServices: the engine may set its own receiver hooks; the abort counter chains onto them.
    countReceiverAborts(receiver, metrics);
    metrics.nodeInfo.set({ node_id: nodeId, role: "decode", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
    cleanups.push(metrics.attachReceiver(receiverSnapshot(receiver, () => health().status === "SERVING")));

    const server = await startGrpcServer(opts.listen, services, opts.grpcCredentials, opts.healthListen);
    cleanups.push(() => server.close(1_000));
    let reported: string | undefined;
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
    cleanups.push(() => clearInterval(healthTimer));

    let metricsAddress: string | undefined;
    if (opts.metricsListen) {
      const ms = await startMetricsServer(opts.metricsListen, metrics.registry);
      cleanups.push(() => ms.close());
      metricsAddress = ms.address;
    }
    state.started = true;
    refreshHealth();
    opts.loading?.then(
      () => {
        state.loading = false;
        refreshHealth();
      },
      (err: unknown) => {
        state.loading = false;
        state.loadFailed = true;
        log.error({ nodeId, err: toKvbridgeError(err).message }, "engine failed to load: the node stays NOT_SERVING");
        refreshHealth();
      },
    );
    log.info(
      {
        nodeId,
        grpc: server.address,
        health: server.healthAddress,
        metrics: metricsAddress,
        offers: receiver.getOffers().map((o) => (o.kind === "tcp" ? `tcp://${o.host}:${o.port}` : "ucx")),
        pool: { kind: memory.kind, locked: memory.locked, slots: memory.slots, slotBytes: memory.slotBytes },
      },
      "decode node serving",
    );

    let closed: Promise<void> | undefined;
    const node: DecodeNode = {
      receiver,
      grpc: server,
      dataPlanes,
      grpcAddress: server.address,
      transports,
      metrics,
      metricsAddress,
      health,
      async drain(timeoutMs) {
        state.draining = true;
        refreshHealth();
        const active = (): number => receiver.store.stats().activeRequests;
        log.info({ nodeId, active: active(), timeoutMs }, "draining: new requests refused, waiting for those in flight");
        const deadline = Date.now() + timeoutMs;
        while (active() > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        const left = active();
        if (left > 0) log.warn({ nodeId, left }, "drain timeout: releasing requests still in flight");
        else log.info({ nodeId }, "drained: no request in flight");
        await node.close();
      },
      close() {
        closed ??= (async () => {
          state.closed = true;
          refreshHealth();
          await runCleanups();
          log.info({ nodeId }, "decode node closed");
        })();
        return closed;
      },
    };
    return node;
  } catch (err) {
    await runCleanups();
    throw err;
  }
}


/**
 * The health decision, first reason wins. "pool stuck": no slot could be given to a new request
 * (none free beyond reservations, none evictable) continuously for `stuckPoolMs`. A busy pool that
 * frees slots as requests finish never gets there; one held by stuck requests or quarantine does.
 */
function decodeHealth(
  s: { started: boolean; loading: boolean; loadFailed: boolean; draining: boolean; closed: boolean; stuckSince: number | undefined },
  rx: KvReceiver,
  stuckPoolMs: number,
): DecodeHealthReason {
  if (s.closed || rx.isClosed) return "closed";
  if (s.draining) return "draining";
  if (s.loadFailed) return "load failed";
  if (s.loading || !s.started) return "loading";
  const now = Date.now();
  if (canAllocate(rx)) s.stuckSince = undefined;
  else s.stuckSince ??= now;
  return s.stuckSince !== undefined && now - s.stuckSince >= stuckPoolMs ? "pool stuck" : "serving";
}

/** True when a new one-chunk request could get a slot now: a free unreserved one, or an evictable entry. */
function canAllocate(rx: KvReceiver): boolean {
  const st = rx.store.stats();
  if (st.slotsFree - st.slotsReserved > 0) return true;
  // Rare (the pool is full): look for one unpinned READY entry, which Alloc would evict for room.
  for (const e of rx.store.internals().live.values()) {
    if (e.status.state === "ready" && e.pins.size === 0) return true;
  }
  return false;
}

/** A wildcard listen address is not something a peer can dial: offer the control-plane host instead. */
function advertisable(dataHost: string, grpcHost: string): string {
  const wildcard = (h: string): boolean => h === "0.0.0.0" || h === "::" || h === "";
  if (!wildcard(dataHost)) return dataHost;
  if (!wildcard(grpcHost)) return grpcHost;
  return process.env.POD_IP || "127.0.0.1";
}
