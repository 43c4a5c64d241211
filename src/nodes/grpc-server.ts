// A node's gRPC server: the services it is given plus grpc.health.v1, bound to one address.
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { formatHostPort, type HostPort } from "./host-port.js";

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
  setServing(status: ServingStatus): void;
  /** Waits for in-flight calls up to graceMs, then forces. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(listen: HostPort, services: GrpcServiceBinding[], credentials?: grpc.ServerCredentials): Promise<NodeGrpcServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    "grpc.keepalive_time_ms": 30_000,
  });
  const statusMap: Record<string, ServingStatus> = { "": "NOT_SERVING" };
  for (const s of services) statusMap[s.name] = "NOT_SERVING";
  const health = new HealthImplementation(statusMap);
  health.addToServer(server);
  for (const s of services) server.addService(s.definition, s.implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(formatHostPort(listen), credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => {
      if (err) reject(new KvbridgeError("UNAVAILABLE", `cannot listen on ${formatHostPort(listen)}: ${err.message}`, { cause: err }));
      else resolve(p);
    });
  });
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    address: formatHostPort({ host: listen.host, port }),
    setServing(status) {
      health.setStatus("", status);
      for (const s of services) health.setStatus(s.name, status);
    },
    close(graceMs = 5_000) {
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
