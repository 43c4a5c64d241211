// A rendered kvbridge Deployment seen the way its pods will run: labels, main container, the
// environment the container ends up with (envFrom ConfigMaps, then env), flags and ports.
// Objects reach this view only after schema validation, which makes the casts below sound.
import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";
import type { IConfigMap } from "kubernetes-models/v1/ConfigMap";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IIoK8sApimachineryPkgApisMetaV1LabelSelector as LabelSelector } from "@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector";
import type { KubeObject } from "./kustomize-render.js";

export type Role = "prefill" | "decode" | "router";

export interface Workload {
  role: Role;
  deployment: IDeployment;
  namespace: string;
  podLabels: Record<string, string>;
  podSpec: IPodSpec;
  /** The container named after the role. */
  main: IContainer;
  /** Environment of the main container: envFrom ConfigMaps in order, then env (which wins). A
   *  value from the downward API reads `fieldRef:<path>`. */
  env: Map<string, string>;
}

export function ofKind<T>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((o) => o.kind === kind) as unknown as T[];
}

/** Kubernetes label selection: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist). */
export function selects(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (labels[key] !== value) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, req.key);
    const value = labels[req.key];
    const inValues = value !== undefined && (req.values ?? []).includes(value);
    switch (req.operator) {
      case "In": if (!inValues) return false; break;
      case "NotIn": if (inValues) return false; break;
      case "Exists": if (!has) return false; break;
      case "DoesNotExist": if (has) return false; break;
      default: throw new Error(`unknown selector operator ${req.operator}`);
    }
  }
  return true;
}

function resolveEnv(container: IContainer, configMaps: IConfigMap[], namespace: string, where: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const source of container.envFrom ?? []) {
    const name = source.configMapRef?.name;
    if (name === undefined) throw new Error(`${where}: only configMapRef envFrom sources are expected`);
    const cm = configMaps.find((c) => c.metadata?.name === name && (c.metadata?.namespace ?? "") === namespace);
    if (!cm) throw new Error(`${where}: envFrom names ConfigMap ${name}, which the render does not contain`);
    for (const [key, value] of Object.entries(cm.data ?? {})) env.set(key, value);
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env.set(e.name, e.value);
    else if (e.valueFrom?.fieldRef) env.set(e.name, `fieldRef:${e.valueFrom.fieldRef.fieldPath}`);
    else throw new Error(`${where}: env ${e.name} has a source the tests do not model`);
  }
  return env;
}

export function workloads(objects: KubeObject[]): Workload[] {
  const configMaps = ofKind<IConfigMap>(objects, "ConfigMap");
  return ofKind<IDeployment>(objects, "Deployment").map((deployment) => {
    const where = `Deployment ${deployment.metadata?.name}`;
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    const role = podLabels["app.kubernetes.io/component"];
    if (role !== "prefill" && role !== "decode" && role !== "router") throw new Error(`${where}: unknown component label ${role}`);
    const podSpec = deployment.spec?.template.spec;
    if (!podSpec) throw new Error(`${where}: no pod spec`);
    const main = podSpec.containers.find((c) => c.name === role);
    if (!main) throw new Error(`${where}: no container named ${role}`);
    const namespace = deployment.metadata?.namespace ?? "";
    return { role, deployment, namespace, podLabels, podSpec, main, env: resolveEnv(main, configMaps, namespace, where) };
  });
}

export function workload(all: Workload[], role: Role): Workload {
  const w = all.find((x) => x.role === role);
  if (!w) throw new Error(`no ${role} Deployment rendered`);
  return w;
}

/** The value following `flag` in an argument list, or undefined. */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The port of a HOST:PORT value. */
export function portOf(hostPort: string): number {
  const port = Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`"${hostPort}" has no valid port`);
  return port;
}

/** A container port given by number or by name, as probes and Services may refer to it. */
export function resolveContainerPort(container: IContainer, port: number | string): number | undefined {
  const found = (container.ports ?? []).find((p) => (typeof port === "number" ? p.containerPort === port : p.name === port));
  return found?.containerPort;
}

/** Kubernetes quantity ("4", "500m", "10Gi", "1G") as a number of base units. */
export function quantity(q: string | number | undefined): number {
  if (q === undefined) return NaN;
  if (typeof q === "number") return q;
  const m = /^([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  const scale: Record<string, number> = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? (scale[m[2]] ?? NaN) : 1);
}
