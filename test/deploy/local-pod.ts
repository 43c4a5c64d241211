// Runs a rendered container as a local process the way the kubelet would start it: the image's
// entry point (the kvbridge CLI, here from sources) with the container's args, $(VAR) references
// expanded, and the container's environment. What differs on one machine is mapped explicitly:
// each pod's container ports get free loopback ports, Service names resolve to 127.0.0.1, the
// downward API gives loopback and a pod name, and volume mount paths become local directories.
import path from "node:path";
import type { IService } from "kubernetes-models/v1/Service";
import type { IContainer } from "kubernetes-models/v1/Container";
import { selects, type Role, type Workload } from "./workloads.js";
import { freePort } from "../support/free-port.js";

export interface LocalCluster {
  /** Loopback port standing in for `containerPort` of `role`'s pod. */
  port(role: Role, containerPort: number): number;
  /** The local directory standing in for a pod's volume mount path. */
  dir(role: Role, mountPath: string): string;
}

/** Picks a free loopback port for every container port of every workload. */
export async function localCluster(all: Workload[], scratch: string): Promise<LocalCluster> {
  const ports = new Map<string, number>();
  for (const w of all) {
    for (const c of [...(w.podSpec.initContainers ?? []), ...w.podSpec.containers]) {
      for (const p of c.ports ?? []) ports.set(`${w.role}:${p.containerPort}`, await freePort());
    }
  }
  return {
    port(role, containerPort) {
      const p = ports.get(`${role}:${containerPort}`);
      if (p === undefined) throw new Error(`${role} declares no container port ${containerPort}`);
      return p;
    },
    dir(role, mountPath) {
      return path.join(scratch, role, mountPath.replace(/\//g, "_"));
    },
  };
}


export interface LocalCommand {
  args: string[];
  env: Record<string, string>;
}

/** The local command line and environment for one container of workload `w`. */
export function localCommand(w: Workload, container: IContainer, cluster: LocalCluster, services: IService[], all: Workload[]): LocalCommand {
  const env: Record<string, string> = {};
  const source = container === w.main ? w.env : new Map((container.env ?? []).map((e) => [e.name, e.value ?? ""]));
  for (const [key, value] of source) {
    if (value === "fieldRef:status.podIP") env[key] = "127.0.0.1";
    else if (value === "fieldRef:metadata.name") env[key] = `${w.role}-local`;
    else if (value.startsWith("fieldRef:")) throw new Error(`${w.role}: downward API field ${value} is not mapped`);
    else env[key] = mapPaths(value, w, container, cluster);
  }
  const expanded = (container.args ?? []).map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string) => env[name] ?? m));
  const args = expanded.map((a) => mapPaths(mapHostPort(a, w, cluster, services, all), w, container, cluster));
  return { args, env };
}

function mapPaths(value: string, w: Workload, container: IContainer, cluster: LocalCluster): string {
  for (const m of container.volumeMounts ?? []) {
    if (value === m.mountPath || value.startsWith(`${m.mountPath}/`)) return cluster.dir(w.role, m.mountPath) + value.slice(m.mountPath.length);
  }
  return value;
}

function mapHostPort(arg: string, w: Workload, cluster: LocalCluster, services: IService[], all: Workload[]): string {
  const m = /^([A-Za-z0-9.-]+):(\d+)$/.exec(arg);
  if (!m) return arg;
  const [, host = "", portText = ""] = m;
  const port = Number(portText);
  if (host === "0.0.0.0" || host === "127.0.0.1") return `127.0.0.1:${cluster.port(w.role, port)}`;
  // A Service name: the pods it selects, on the container port its service port targets.
  const svc = services.find((s) => s.metadata?.name === host);
  if (!svc) throw new Error(`${w.role}: ${arg} names neither a local address nor a rendered Service`);
  const target = all.find((x) => selects({ matchLabels: svc.spec?.selector ?? {} }, x.podLabels));
  const svcPort = svc.spec?.ports?.find((p) => p.port === port);
  if (!target || !svcPort) throw new Error(`${w.role}: Service ${host} has no pods or no port ${port}`);
  const targetPort = svcPort.targetPort ?? port;
  const containerPort = typeof targetPort === "number" ? targetPort : target.main.ports?.find((p) => p.name === targetPort)?.containerPort;
  if (containerPort === undefined) throw new Error(`Service ${host} port ${port} targets nothing`);
  return `127.0.0.1:${cluster.port(target.role, containerPort)}`;
}
