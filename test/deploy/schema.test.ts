// Every rendered object against the Kubernetes OpenAPI schemas (offline, kubernetes-models),
// with unknown fields reported as errors.
import { describe, expect, it } from "vitest";
import { KUSTOMIZATIONS, rendered } from "./kustomizations.js";
import { isJsonObject, type KubeObject } from "./kustomize-render.js";
import { validateAgainstSchema } from "./manifest-schema.js";

function decodeDeployment(): KubeObject {
  const obj = rendered(KUSTOMIZATIONS[0]!).find((o) => o.kind === "Deployment" && o.metadata.name === "kvbridge-decode");
  if (!obj) throw new Error("base renders no kvbridge-decode Deployment");
  return obj;
}

function mainContainer(obj: KubeObject): Record<string, unknown> {
  const spec = obj["spec"];
  const template = isJsonObject(spec) ? spec["template"] : undefined;
  const podSpec = isJsonObject(template) ? template["spec"] : undefined;
  const containers = isJsonObject(podSpec) ? podSpec["containers"] : undefined;
  const first = Array.isArray(containers) ? containers[0] : undefined;
  if (!isJsonObject(first)) throw new Error("no container");
  return first;
}

describe("Kubernetes schemas", () => {
  for (const k of KUSTOMIZATIONS) {
    it(`every object of ${k.name} is valid and has no unknown fields`, async () => {
      const problems: string[] = [];
      for (const obj of rendered(k)) {
        for (const p of await validateAgainstSchema(obj)) problems.push(`${obj.kind} ${obj.metadata.name}: ${p}`);
      }
      expect(problems).toEqual([]);
    });
  }

  it("reports a value of the wrong type", async () => {
    const obj = decodeDeployment();
    (obj["spec"] as Record<string, unknown>)["replicas"] = "3";
    expect((await validateAgainstSchema(obj)).join("\n")).toMatch(/replicas must be integer/);
  });

  it("reports a misspelt field the schema does not define", async () => {
    const obj = decodeDeployment();
    const container = mainContainer(obj);
    container["readinesProbe"] = container["readinessProbe"];
    expect(await validateAgainstSchema(obj)).toEqual([
      "/spec/template/spec/containers/0/readinesProbe is not a field of apps/v1 Deployment",
    ]);
  });

  it("reports a gRPC probe given a named port (gRPC probes take numbers only)", async () => {
    const obj = decodeDeployment();
    mainContainer(obj)["readinessProbe"] = { grpc: { port: "grpc" } };
    expect((await validateAgainstSchema(obj)).join("\n")).toMatch(/grpc\/port must be integer/);
  });

  it("refuses an object whose kind has no schema", async () => {
    await expect(validateAgainstSchema({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } })).rejects.toThrow(/no schema/);
  });
});
