// A node's gRPC server: the services it is given plus grpc.health.v1, bound to one address, with the
// node's interceptors (server-interceptors.ts) in front of every handler.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { formatHostPort, type HostPort } from "../roles/host-port.js";

export interface GrpcServiceBinding {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
  /** The name health reports under (e.g. "kvbridge.v1.KvReceiver"). */
  name: string;
}

export interface NodeGrpcServer {
  server: grpc.Server;
  port: number;
  address: string;
  /** The plaintext health-only endpoint, when one was asked for. */
  healthAddress: string | undefined;
  setServing(status: ServingStatus): void;
  /** Waits for in-flight calls up to graceMs, then forces. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The options of every node's gRPC server (interceptors aside). Exported for bench/alloc-bench.ts, whose
 * bare grpc-js baseline must run with the same ones to be a fair comparison.
 */
export const NODE_SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": 16 * 1024 * 1024,
  "grpc.keepalive_time_ms": 30_000,
  // channelz bookkeeping on every call, which nothing here reads.
  "grpc.enable_channelz": 0,
};

function bind(server: grpc.Server, listen: HostPort, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(formatHostPort(listen), credentials, (err, p) => {
      if (err) reject(new KvbridgeError("UNAVAILABLE", `cannot listen on ${formatHostPort(listen)}: ${err.message}`, { cause: err }));
      else resolve(p);
    });
  });
}

/**
 * `healthListen`: a second, plaintext endpoint serving only grpc.health.v1 (same statuses). Kubelet's
 * gRPC probes cannot present a client certificate, so a node on mTLS offers its health there.
 * `interceptors`: see serverInterceptors(); the health-only endpoint has none.
 */
export async function startGrpcServer(
  listen: HostPort,
  services: GrpcServiceBinding[],
  credentials?: grpc.ServerCredentials,
  healthListen?: HostPort,
  interceptors: grpc.ServerInterceptor[] = [],
): Promise<NodeGrpcServer> {
  const server = new grpc.Server({ ...NODE_SERVER_OPTIONS, interceptors });
  const statusMap: Record<string, ServingStatus> = { "": "NOT_SERVING" };
  for (const s of services) statusMap[s.name] = "NOT_SERVING";
  const health = new HealthImplementation(statusMap);
  health.addToServer(server);
  for (const s of services) server.addService(s.definition, s.implementation);
  const port = await bind(server, listen, credentials ?? grpc.ServerCredentials.createInsecure());
  let healthServer: grpc.Server | undefined;
  let healthAddress: string | undefined;
  if (healthListen) {
    healthServer = new grpc.Server();
    health.addToServer(healthServer);
    try {
      const hp = await bind(healthServer, healthListen, grpc.ServerCredentials.createInsecure());
      healthAddress = formatHostPort({ host: healthListen.host, port: hp });
    } catch (err) {
      server.forceShutdown();
      healthServer.forceShutdown();
      throw err;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    address: formatHostPort({ host: listen.host, port }),
    healthAddress,
    setServing(status) {
      health.setStatus("", status);
      for (const s of services) health.setStatus(s.name, status);
    },
    close(graceMs = 5_000) {
      healthServer?.forceShutdown();
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}
