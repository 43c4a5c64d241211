// The decode node: a KV receiver (pool, store, data planes, gRPC control plane, inspection, health)
// and, when a model is loaded, the engine that turns received KV chunks into tokens.

import type * as grpc from "@grpc/grpc-js";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import { allocatePoolMemory } from "../memory/mapped-pool.js";
import type { PoolMemory } from "../memory/pool-memory.js";
import { kvbridgeV1 } from "../rpc/proto.js";
import { KvReceiver } from "../transfer/receiver.js";
import { inspectHandlers, receiverHandlers } from "../transfer/receiver-service.js";
import { TcpReceiverDataPlane } from "../transport/tcp/tcp-receiver.js";
import type { ReceiverDataPlane, TransportKind } from "../transport/transport.js";
import { startGrpcServer, type GrpcServiceBinding, type NodeGrpcServer } from "./grpc-server.js";
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
  /** HTTP address for /metrics (Prometheus); none when absent. */
  metricsListen?: HostPort;
}

export interface DecodeNode {
  receiver: KvReceiver;
  grpc: NodeGrpcServer;
  dataPlanes: ReceiverDataPlane[];
  grpcAddress: string;
  transports: TransportKind[];
  /** Health NOT_SERVING, refuse new Allocs, wait for in-flight requests (bounded), then close. */
  drain(timeoutMs: number): Promise<void>;
  /** Idempotent. Releases everything: servers, data planes, sweeper, pool memory. */
  close(): Promise<void>;
}

export async function startDecodeNode(opts: DecodeNodeOptions): Promise<DecodeNode> {
  const log = opts.logger;
  const nodeId = opts.nodeId ?? `decode-${hostname()}-${process.pid}`;
  const { memory, warning } = allocatePoolMemory({ slots: opts.poolSlots, slotBytes: opts.slotBytes, lock: opts.lockMemory });
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
      });
      dataPlanes.push(tcp);
      cleanups.push(() => tcp.close());
    }
    receiver.setOffers(dataPlanes.map((d) => d.offer()));
    const transports = dataPlanes.map((d) => d.kind);

    let serving = false;
    const identity = { role: "decode", version: VERSION, serving: () => serving };
    const v1 = kvbridgeV1();
    const services: GrpcServiceBinding[] = [
      {
        name: "kvbridge.v1.KvReceiver",
        definition: v1.KvReceiver.service,
        implementation: receiverHandlers(receiver, identity) as unknown as grpc.UntypedServiceImplementation,
      },
      {
        name: "kvbridge.v1.Inspect",
        definition: v1.Inspect.service,
        implementation: inspectHandlers(receiver, identity, () => transports) as unknown as grpc.UntypedServiceImplementation,
      },
      ...(opts.extraServices?.(receiver) ?? []),
    ];
    const server = await startGrpcServer(opts.listen, services, opts.grpcCredentials);
    cleanups.push(() => server.close(1_000));
    serving = true;
    server.setServing("SERVING");
    log.info(
      { nodeId, grpc: server.address, offers: receiver.getOffers().map((o) => (o.kind === "tcp" ? `tcp://${o.host}:${o.port}` : "ucx")), pool: { kind: memory.kind, locked: memory.locked, slots: memory.slots, slotBytes: memory.slotBytes } },
      "decode node serving",
    );

    let closed: Promise<void> | undefined;
    const node: DecodeNode = {
      receiver,
      grpc: server,
      dataPlanes,
      grpcAddress: server.address,
      transports,
      async drain(timeoutMs) {
        serving = false;
        server.setServing("NOT_SERVING");
        const deadline = Date.now() + timeoutMs;
        while (receiver.store.stats().activeRequests > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
        }
        const left = receiver.store.stats().activeRequests;
        if (left > 0) log.warn({ nodeId, left }, "drain timeout: releasing requests still in flight");
        await node.close();
      },
      close() {
        closed ??= (async () => {
          serving = false;
          server.setServing("NOT_SERVING");
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

/** A wildcard listen address is not something a peer can dial: offer the control-plane host instead. */
function advertisable(dataHost: string, grpcHost: string): string {
  const wildcard = (h: string): boolean => h === "0.0.0.0" || h === "::" || h === "";
  if (!wildcard(dataHost)) return dataHost;
  if (!wildcard(grpcHost)) return grpcHost;
  return process.env.POD_IP || "127.0.0.1";
}
