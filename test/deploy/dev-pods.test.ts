// The dev overlay's three pods run as real kvbridge processes on loopback, each started exactly
// as its container would be (args, ConfigMap environment, init container first), with only
// ports and paths mapped (local-pod.ts). The kubelet's view is reproduced: gRPC health Check on
// the probe port, HTTP GET on the router's probe paths, metrics on the annotated port, SIGTERM
// answered within the grace period. No Kubernetes or container runtime runs here.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import type { IService } from "kubernetes-models/v1/Service";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnKvbridge, type RunningProcess } from "../support/processes.js";
import { KUSTOMIZATIONS, rendered } from "./kustomizations.js";
import { localCluster, localCommand, type LocalCluster } from "./local-pod.js";
import { ofKind, workload, workloads, type Role, type Workload } from "./workloads.js";

type HealthClient = grpc.Client & {
  Check(req: { service: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: { status: string | number }) => void): void;
};
const HealthClientCtor = grpc.makeGenericClientConstructor(healthService, "Health") as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
) => HealthClient;

/** What the kubelet's gRPC probe does: Check("") with a deadline; true when SERVING. */
async function grpcProbe(port: number): Promise<boolean> {
  const client = new HealthClientCtor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<boolean>((resolve) => {
      client.Check({ service: "" }, { deadline: Date.now() + 2_000 }, (err, res) => resolve(!err && (res?.status === "SERVING" || res?.status === 1)));
    });
  } finally {
    client.close();
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} not within ${timeoutMs} ms`);
}

async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return 0;
  }
}

describe("dev overlay pods as local processes", () => {
  const scratch = mkdtempSync(path.join(tmpdir(), "kvbridge-dev-pods-"));
  const running: RunningProcess[] = [];
  const procs = new Map<Role, RunningProcess>();
  const roles: Role[] = ["decode", "prefill", "router"];
  let all: Workload[] = [];
  let cluster: LocalCluster;

  const output = (role: Role): string => procs.get(role)?.lines.slice(-20).join("\n") ?? "";
  /** The loopback port standing in for the port the role's readiness probe targets. */
  const probePort = (role: Role): number => {
    const w = workload(all, role);
    const probe = w.main.readinessProbe;
    const containerPort = probe?.grpc?.port ?? w.main.ports?.find((p) => p.name === probe?.httpGet?.port)?.containerPort;
    if (containerPort === undefined) throw new Error(`${role}: readiness probe port unresolved`);
    return cluster.port(role, containerPort);
  };
  const routerUrl = (): string => `http://127.0.0.1:${probePort("router")}`;

  beforeAll(async () => {
    const dev = KUSTOMIZATIONS.find((k) => k.name === "dev");
    if (!dev) throw new Error("no dev overlay");
    const objects = rendered(dev);
    all = workloads(objects);
    const services = ofKind<IService>(objects, "Service");
    cluster = await localCluster(all, scratch);

    for (const role of roles) {
      const w = workload(all, role);
      for (const m of [...(w.podSpec.initContainers ?? []), w.main].flatMap((c) => c.volumeMounts ?? [])) {
        mkdirSync(cluster.dir(w.role, m.mountPath), { recursive: true });
      }
      // Init containers run to completion first, as in the pod.
      for (const init of w.podSpec.initContainers ?? []) {
        const cmd = localCommand(w, init, cluster, services, all);
        const p = spawnKvbridge(cmd.args, cmd.env);
        const code = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => void p.kill9().then(() => resolve(null)), 120_000);
          const done = (c: number | null): void => {
            clearTimeout(timer);
            resolve(c);
          };
          if (p.child.exitCode !== null) done(p.child.exitCode);
          else p.child.once("exit", (c) => done(c));
        });
        expect(code, `${w.role}/${init.name}: ${p.lines.join("\n")}`).toBe(0);
      }
      const cmd = localCommand(w, w.main, cluster, services, all);
      const proc = spawnKvbridge(cmd.args, cmd.env);
      running.push(proc);
      procs.set(role, proc);
    }
  });

  afterAll(async () => {
    for (const p of running.reverse()) await p.stop(5_000);
    rmSync(scratch, { recursive: true, force: true });
  });

  it("turn ready: gRPC health SERVING on the node probe ports, router /readyz and /healthz 200", async () => {
    for (const role of ["decode", "prefill"] as const) {
      await until(`${role} gRPC health SERVING\n${output(role)}`, 90_000, () => grpcProbe(probePort(role)));
    }
    const router = workload(all, "router");
    await until(`router readiness\n${output("router")}`, 60_000, async () => (await httpStatus(`${routerUrl()}${router.main.readinessProbe?.httpGet?.path}`)) === 200);
    expect(await httpStatus(`${routerUrl()}${router.main.livenessProbe?.httpGet?.path}`)).toBe(200);
  });

  it("serve a completion through router, prefill and decode", async () => {
    const models = (await (await fetch(`${routerUrl()}/v1/models`)).json()) as { data: Array<{ id: string }> };
    const model = models.data[0]?.id;
    expect(model).toBeDefined();
    const completion = await fetch(`${routerUrl()}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, prompt: "The deployment works if this prompt", max_tokens: 4 }),
      signal: AbortSignal.timeout(60_000),
    });
    const body = await completion.text();
    expect(completion.status, body).toBe(200);
    expect((JSON.parse(body) as { choices: Array<{ text: string }> }).choices[0]?.text).toEqual(expect.any(String));
  });

  it("serve Prometheus metrics on the annotated port and path", async () => {
    const problems: string[] = [];
    for (const role of roles) {
      const annotations = workload(all, role).deployment.spec?.template.metadata?.annotations ?? {};
      const url = `http://127.0.0.1:${cluster.port(role, Number(annotations["prometheus.io/port"]))}${annotations["prometheus.io/path"]}`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
      const text = res ? await res.text() : "";
      if (res?.status !== 200 || !/^kvbridge_/m.test(text)) problems.push(`${role}: GET ${url} gave ${res?.status ?? "no connection"}`);
    }
    expect(problems).toEqual([]);
  });

  it("exit cleanly on SIGTERM within the grace period left after preStop", async () => {
    for (const role of roles) {
      const w = workload(all, role);
      const preStop = Number(w.main.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
      const budgetMs = ((w.podSpec.terminationGracePeriodSeconds ?? 30) - preStop) * 1000;
      const t0 = Date.now();
      const exit = await procs.get(role)?.stop(budgetMs);
      expect(exit?.signal, `${role} was killed instead of exiting\n${output(role)}`).toBeNull();
      expect(exit?.code, `${role}\n${output(role)}`).toBe(0);
      expect(Date.now() - t0).toBeLessThan(budgetMs);
    }
  });
});
