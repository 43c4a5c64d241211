// What schemas cannot see: that the rendered objects fit together and with the processes they
// run (ports, probes, selectors, policies, drain timing, memory), for every shipped overlay.
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { IIoK8sApimachineryPkgApisMetaV1LabelSelector as LabelSelector } from "@kubernetes-models/apimachinery/apis/meta/v1/LabelSelector";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { INamespace } from "kubernetes-models/v1/Namespace";
import type { IProbe } from "kubernetes-models/v1/Probe";
import type { IService } from "kubernetes-models/v1/Service";
import { KUSTOMIZATIONS, rendered, type ShippedKustomization } from "./kustomizations.js";
import { ingressAllowed, type Destination, type Source } from "./network-reach.js";
import { flagValue, ofKind, portOf, quantity, resolveContainerPort, selects, workload, workloads, type Role, type Workload } from "./workloads.js";

const ROLES: Role[] = ["prefill", "decode", "router"];

function probePort(container: IContainer, probe: IProbe): number | undefined {
  if (probe.grpc) return probe.grpc.port;
  if (probe.httpGet) return resolveContainerPort(container, probe.httpGet.port);
  if (probe.tcpSocket) return resolveContainerPort(container, probe.tcpSocket.port);
  return undefined;
}

function listenPort(w: Workload): number {
  const listen = flagValue(w.main.args ?? [], "--listen");
  if (listen === undefined) throw new Error(`${w.role}: no --listen in args`);
  return portOf(listen);
}

function preStopSleepSeconds(w: Workload): number {
  const command = w.main.lifecycle?.preStop?.exec?.command ?? [];
  if (command.length === 0) return 0;
  expect(command[0], `${w.role} preStop`).toBe("sleep");
  return Number(command[1]);
}

function drainTimeoutMs(w: Workload): number {
  const v = w.env.get("KVBRIDGE_DRAIN_TIMEOUT");
  if (v === undefined) throw new Error(`${w.role}: KVBRIDGE_DRAIN_TIMEOUT is not set; the grace period check needs it explicit`);
  return Number(v);
}

function rolesSelectedBy(all: Workload[], selector: LabelSelector | undefined, namespace: string): Role[] {
  return all.filter((w) => w.namespace === namespace && selects(selector, w.podLabels)).map((w) => w.role);
}

function ucxRange(w: Workload): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(w.env.get("UCX_TCP_PORT_RANGE") ?? "");
  if (!m) throw new Error(`${w.role}: UCX_TCP_PORT_RANGE is not a range`);
  return [Number(m[1]), Number(m[2])];
}

function checkOverlay(k: ShippedKustomization): void {
  const objects = rendered(k);
  const all = workloads(objects);
  const services = ofKind<IService>(objects, "Service");

  it("has one Deployment per role whose selector picks its own pods and no other role's", () => {
    expect(all.map((w) => w.role).sort()).toEqual([...ROLES].sort());
    for (const w of all) {
      expect(rolesSelectedBy(all, w.deployment.spec?.selector, w.namespace), w.role).toEqual([w.role]);
      for (const spread of w.podSpec.topologySpreadConstraints ?? []) {
        expect(rolesSelectedBy(all, spread.labelSelector, w.namespace), `${w.role} topology spread`).toEqual([w.role]);
      }
    }
  });

  it("has Services that select exactly one role and target ports its container declares", () => {
    for (const svc of services) {
      const roles = rolesSelectedBy(all, { matchLabels: svc.spec?.selector ?? {} }, svc.metadata?.namespace ?? "");
      expect(roles, `Service ${svc.metadata?.name}`).toHaveLength(1);
      const target = workload(all, roles[0]!);
      for (const port of svc.spec?.ports ?? []) {
        const resolved = resolveContainerPort(target.main, port.targetPort ?? port.port);
        expect(resolved, `Service ${svc.metadata?.name} port ${port.name}`).toBe(port.port);
      }
    }
  });

  it("lets the router discover prefill and decode pods through headless Services on their gRPC ports", () => {
    const router = workload(all, "router");
    for (const [flag, role] of [["--prefill-dns", "prefill"], ["--decode-dns", "decode"]] as const) {
      const value = flagValue(router.main.args ?? [], flag);
      expect(value, flag).toBeDefined();
      const [host = "", port] = (value ?? "").split(":");
      const svc = services.find((s) => s.metadata?.name === host && (s.metadata?.namespace ?? "") === router.namespace);
      expect(svc, `${flag} names Service ${host}`).toBeDefined();
      // Headless: DNS answers with every ready pod, not one virtual IP.
      expect(svc?.spec?.clusterIP).toBe("None");
      expect(rolesSelectedBy(all, { matchLabels: svc?.spec?.selector ?? {} }, router.namespace)).toEqual([role]);
      expect(Number(port)).toBe(listenPort(workload(all, role)));
      expect(svc?.spec?.ports?.map((p) => p.port)).toContain(Number(port));
    }
  });

  it("probes the ports the processes listen on: gRPC health for nodes, /healthz and /readyz for the router", () => {
    for (const w of all) {
      const { startupProbe, readinessProbe, livenessProbe } = w.main;
      expect(readinessProbe, `${w.role} readiness`).toBeDefined();
      expect(livenessProbe, `${w.role} liveness`).toBeDefined();
      const probes = [readinessProbe, livenessProbe, startupProbe].filter((p): p is IProbe => p !== undefined);
      for (const probe of probes) expect(probePort(w.main, probe), `${w.role} probe port`).toBe(listenPort(w));
      if (w.role === "router") {
        // Readiness follows the nodes (a prefill + decode pair in rotation, not draining); liveness
        // only the process. Both paths stay open without an API key unless every path is protected.
        expect(readinessProbe?.httpGet?.path).toBe("/readyz");
        expect(livenessProbe?.httpGet?.path).toBe("/healthz");
        expect(w.main.args ?? [], "router probes need no API key").not.toContain("--api-key-protect-all");
        expect(w.env.has("KVBRIDGE_API_KEY_PROTECT_ALL"), "router probes need no API key").toBe(false);
      } else {
        for (const probe of probes) expect(probe.grpc, `${w.role} uses native gRPC probes`).toBeDefined();
        // Model loading reports NOT_SERVING: a startup probe holds liveness off until it is done.
        expect(startupProbe?.grpc, `${w.role} startup probe`).toBeDefined();
      }
      // Every listening flag names a declared container port.
      for (const flag of ["--listen", "--data-listen", "--metrics-listen"]) {
        const value = flagValue(w.main.args ?? [], flag);
        if (value !== undefined) expect(resolveContainerPort(w.main, portOf(value)), `${w.role} ${flag}`).toBe(portOf(value));
      }
    }
  });

  it("annotates pods for Prometheus with the port that serves /metrics", () => {
    for (const w of all) {
      const annotations = w.deployment.spec?.template.metadata?.annotations ?? {};
      expect(annotations["prometheus.io/scrape"], w.role).toBe("true");
      expect(annotations["prometheus.io/path"], w.role).toBe("/metrics");
      const metrics = flagValue(w.main.args ?? [], "--metrics-listen");
      // The router serves /metrics on its HTTP port.
      const expected = w.role === "router" ? listenPort(w) : portOf(metrics ?? "");
      expect(Number(annotations["prometheus.io/port"]), w.role).toBe(expected);
    }
  });

  it("gives every pod a grace period longer than preStop sleep plus drain timeout, and a liveness probe that outlasts the drain", () => {
    for (const w of all) {
      const drainMs = drainTimeoutMs(w);
      const preStopMs = preStopSleepSeconds(w) * 1000;
      expect(preStopMs, `${w.role} preStop sleep`).toBeGreaterThan(0);
      const graceMs = (w.podSpec.terminationGracePeriodSeconds ?? 30) * 1000;
      expect(graceMs, `${w.role} grace`).toBeGreaterThan(preStopMs + drainMs);
      const live = w.main.livenessProbe;
      const livenessToleranceMs = (live?.periodSeconds ?? 10) * (live?.failureThreshold ?? 3) * 1000;
      expect(livenessToleranceMs, `${w.role} liveness tolerance`).toBeGreaterThan(preStopMs + drainMs);
    }
  });

  it("lets only router and prefill pods reach decode control and data ports, and only the router reach prefill", () => {
    const policies = ofKind<INetworkPolicy>(objects, "NetworkPolicy");
    const [prefill, decode, router] = (["prefill", "decode", "router"] as const).map((r) => workload(all, r)) as [Workload, Workload, Workload];
    const end = (w: Workload): Source => ({ namespace: w.namespace, labels: w.podLabels });
    const dest = (w: Workload): Destination => ({ namespace: w.namespace, labels: w.podLabels, containers: w.podSpec.containers });
    const reach = (from: Source, to: Workload, port: number): boolean => ingressAllowed(policies, from, dest(to), port);

    const decodeGrpc = listenPort(decode);
    const decodeData = portOf(flagValue(decode.main.args ?? [], "--data-listen") ?? "");
    const metrics = portOf(flagValue(decode.main.args ?? [], "--metrics-listen") ?? "");
    const [ucxLow, ucxHigh] = ucxRange(decode);
    expect(ucxRange(prefill)).toEqual([ucxLow, ucxHigh]);

    expect(reach(end(router), decode, decodeGrpc)).toBe(true);
    expect(reach(end(router), decode, decodeData)).toBe(false);
    for (const port of [decodeGrpc, decodeData, ucxLow, ucxHigh]) expect(reach(end(prefill), decode, port), `prefill -> decode:${port}`).toBe(true);
    expect(reach(end(prefill), decode, ucxHigh + 1)).toBe(false);
    expect(reach(end(decode), decode, decodeGrpc)).toBe(false);
    expect(reach("outside", decode, decodeGrpc)).toBe(false);
    expect(reach("outside", decode, decodeData)).toBe(false);
    expect(reach("outside", decode, metrics)).toBe(true);
    // A pod of the same namespace that is not part of kvbridge.
    expect(reach({ namespace: decode.namespace, labels: { app: "other" } }, decode, decodeData)).toBe(false);

    const prefillGrpc = listenPort(prefill);
    expect(reach(end(router), prefill, prefillGrpc)).toBe(true);
    expect(reach(end(decode), prefill, prefillGrpc)).toBe(false);
    expect(reach(end(decode), prefill, ucxLow)).toBe(true);
    expect(reach("outside", prefill, prefillGrpc)).toBe(false);
    // The router is the public entry point.
    expect(reach("outside", router, listenPort(router))).toBe(true);
  });

  it("has a PodDisruptionBudget per role that covers exactly that role", () => {
    const pdbs = ofKind<IPodDisruptionBudget>(objects, "PodDisruptionBudget");
    const covered = pdbs.map((p) => {
      const roles = rolesSelectedBy(all, p.spec?.selector, p.metadata?.namespace ?? "");
      expect(roles, `PDB ${p.metadata?.name}`).toHaveLength(1);
      expect(p.spec?.maxUnavailable ?? p.spec?.minAvailable, `PDB ${p.metadata?.name}`).toBeDefined();
      return roles[0];
    });
    expect(covered.sort()).toEqual([...ROLES].sort());
  });

  it("sets cpu and memory requests and limits on every container, within what the settings need", () => {
    for (const w of all) {
      for (const c of [...(w.podSpec.initContainers ?? []), ...w.podSpec.containers]) {
        for (const r of ["cpu", "memory"]) {
          const request = quantity(c.resources?.requests?.[r]);
          const limit = quantity(c.resources?.limits?.[r]);
          expect(request, `${w.role}/${c.name} ${r} request`).toBeGreaterThan(0);
          expect(limit, `${w.role}/${c.name} ${r} limit`).toBeGreaterThanOrEqual(request);
        }
      }
      if (w.role !== "router") {
        const threads = Number(w.env.get("KVBRIDGE_THREADS"));
        expect(threads, `${w.role} threads`).toBeLessThanOrEqual(quantity(w.main.resources?.limits?.["cpu"]));
      }
    }
    const decode = workload(all, "decode");
    const poolBytes = Number(decode.env.get("KVBRIDGE_POOL_SLOTS")) * Number(decode.env.get("KVBRIDGE_SLOT_BYTES"));
    expect(poolBytes).toBeGreaterThan(0);
    const shm = decode.podSpec.volumes?.find((v) => v.name === decode.main.volumeMounts?.find((m) => m.mountPath === "/dev/shm")?.name);
    const shmBytes = quantity(shm?.emptyDir?.sizeLimit);
    // The pinned pool and the tmpfs pages of /dev/shm are both charged to the container.
    expect(quantity(decode.main.resources?.limits?.["memory"])).toBeGreaterThan(poolBytes + shmBytes);
  });

  it("gives prefill and decode the same model and chunk size, the model read-only, and /dev/shm in memory", () => {
    const [prefill, decode] = [workload(all, "prefill"), workload(all, "decode")];
    for (const key of ["KVBRIDGE_MODEL", "KVBRIDGE_CHUNK_TOKENS", "KVBRIDGE_TRANSPORT"]) {
      expect(prefill.env.get(key), key).toBeDefined();
      expect(decode.env.get(key), key).toBe(prefill.env.get(key));
    }
    for (const w of [prefill, decode]) {
      const model = w.env.get("KVBRIDGE_MODEL") ?? "";
      const mount = w.main.volumeMounts?.find((m) => path.posix.dirname(model) === m.mountPath);
      expect(mount, `${w.role} mounts ${path.posix.dirname(model)}`).toBeDefined();
      expect(mount?.readOnly, `${w.role} model mount is read-only`).toBe(true);
      const shmMount = w.main.volumeMounts?.find((m) => m.mountPath === "/dev/shm");
      const shm = w.podSpec.volumes?.find((v) => v.name === shmMount?.name);
      expect(shm?.emptyDir?.medium, `${w.role} /dev/shm`).toBe("Memory");
      expect(quantity(shm?.emptyDir?.sizeLimit), `${w.role} /dev/shm size`).toBeGreaterThan(64 * 2 ** 20);
    }
  });

  it("runs every pod as a non-root user without privilege escalation, service links or an API token", () => {
    const rdma = k.name.includes("rdma");
    for (const w of all) {
      expect(w.podSpec.enableServiceLinks, w.role).toBe(false);
      expect(w.podSpec.automountServiceAccountToken, w.role).toBe(false);
      expect(w.podSpec.securityContext?.runAsNonRoot, w.role).toBe(true);
      expect(w.podSpec.securityContext?.runAsUser ?? 0, w.role).toBeGreaterThan(0);
      expect(w.podSpec.securityContext?.seccompProfile?.type, w.role).toBe("RuntimeDefault");
      for (const c of [...(w.podSpec.initContainers ?? []), ...w.podSpec.containers]) {
        expect(c.securityContext?.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.securityContext?.readOnlyRootFilesystem, c.name).toBe(true);
        expect(c.securityContext?.capabilities?.drop, c.name).toEqual(["ALL"]);
        const added = c.securityContext?.capabilities?.add ?? [];
        expect(added, c.name).toEqual(rdma && c.name !== "router" && w.role !== "router" ? ["IPC_LOCK"] : []);
      }
    }
  });

  it("puts every namespaced object in the overlay's namespace", () => {
    const namespaces = ofKind<INamespace>(objects, "Namespace");
    if (k.name === "base") {
      expect(namespaces).toHaveLength(0);
      return;
    }
    expect(namespaces).toHaveLength(1);
    const ns = namespaces[0]?.metadata?.name;
    for (const o of objects) if (o.kind !== "Namespace") expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe(ns);
  });
}

describe("rendered manifests fit together", () => {
  for (const k of KUSTOMIZATIONS) describe(k.name, () => checkOverlay(k));
});

describe("overlay specifics", () => {
  const byName = (name: string): ShippedKustomization => {
    const k = KUSTOMIZATIONS.find((x) => x.name === name);
    if (!k) throw new Error(`no kustomization ${name}`);
    return k;
  };

  it("dev writes the small model into the model volume with an init container before prefill and decode start", () => {
    const all = workloads(rendered(byName("dev")));
    for (const role of ["prefill", "decode"] as const) {
      const w = workload(all, role);
      const model = w.env.get("KVBRIDGE_MODEL") ?? "";
      const modelMount = w.main.volumeMounts?.find((m) => m.mountPath === path.posix.dirname(model));
      const volume = w.podSpec.volumes?.find((v) => v.name === modelMount?.name);
      expect(volume?.emptyDir, `${role} model volume`).toBeDefined();
      const init = w.podSpec.initContainers?.find((c) => c.name === "write-model");
      expect(init?.image).toBe(w.main.image);
      const initMount = init?.volumeMounts?.find((m) => m.name === modelMount?.name);
      expect(initMount?.readOnly ?? false).toBe(false);
      // The image's entry point (the kvbridge CLI) writes exactly the file the node is told to load.
      expect(init?.command).toBeUndefined();
      expect(init?.args).toEqual(["make-model", "--out", path.posix.join(initMount?.mountPath ?? "?", path.posix.basename(model))]);
    }
  });

  it("xpyd runs 2 prefill, 3 decode and 2 router pods from the same base", () => {
    for (const name of ["xpyd", "xpyd-rdma"]) {
      const all = workloads(rendered(byName(name)));
      expect(Object.fromEntries(all.map((w) => [w.role, w.deployment.spec?.replicas]))).toEqual({ prefill: 2, decode: 3, router: 2 });
    }
  });

  it("xpyd-rdma gives the node containers an RDMA device, forces UCX and memory locking, and a namespace that admits IPC_LOCK", () => {
    const objects = rendered(byName("xpyd-rdma"));
    const all = workloads(objects);
    for (const role of ["prefill", "decode"] as const) {
      const res = workload(all, role).main.resources;
      // Extended resources cannot be overcommitted: request and limit must be equal.
      expect(res?.requests?.["rdma/rdma_shared_device_a"], role).toBe("1");
      expect(res?.limits?.["rdma/rdma_shared_device_a"], role).toBe("1");
      expect(workload(all, role).env.get("KVBRIDGE_TRANSPORT"), role).toBe("ucx");
    }
    expect(workload(all, "decode").env.get("KVBRIDGE_LOCK_MEMORY")).toBe("true");
    const ns = ofKind<INamespace>(objects, "Namespace")[0];
    expect(ns?.metadata?.labels?.["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(objects.filter((o) => o.kind === "ServiceMonitor").map((o) => o.metadata.name).sort()).toEqual(["kvbridge-nodes", "kvbridge-router"]);
  });

  it("xpyd-rdma ServiceMonitors select Services that expose the named metrics ports", () => {
    const objects = rendered(byName("xpyd-rdma"));
    const services = ofKind<IService>(objects, "Service");
    for (const sm of objects.filter((o) => o.kind === "ServiceMonitor")) {
      const spec = sm["spec"] as unknown as { selector: LabelSelector; endpoints: Array<{ port: string }> };
      const matched = services.filter((s) => selects(spec.selector, s.metadata?.labels ?? {}));
      expect(matched.length, sm.metadata.name).toBeGreaterThan(0);
      for (const s of matched) for (const e of spec.endpoints) expect(s.spec?.ports?.map((p) => p.name), `${s.metadata?.name}`).toContain(e.port);
    }
  });
});
