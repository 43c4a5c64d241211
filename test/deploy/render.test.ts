// Every shipped kustomization renders, and the in-repo renderer agrees with the real kustomize.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KUSTOMIZATIONS, rendered } from "./kustomizations.js";
import { configMapHash, parseYamlDocuments, renderKustomization, isJsonObject, type KubeObject } from "./kustomize-render.js";

/** kubectl with an embedded kustomize new enough for components (v4+), or undefined. */
function kubectlWithKustomize(): string | undefined {
  const probe = spawnSync("kubectl", ["version", "--client", "-o", "json"], { encoding: "utf8", timeout: 20_000 });
  if (probe.status !== 0) return undefined;
  const version = (JSON.parse(probe.stdout) as { kustomizeVersion?: string }).kustomizeVersion ?? "";
  const major = Number(/^v?(\d+)/.exec(version)?.[1] ?? 0);
  return major >= 4 ? "kubectl" : undefined;
}

const kubectl = kubectlWithKustomize();
const byId = (objects: KubeObject[]): Map<string, KubeObject> =>
  new Map(objects.map((o) => [`${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`, o]));

describe("rendering deploy/", () => {
  for (const k of KUSTOMIZATIONS) {
    it(`${k.name} renders objects with unique ids`, () => {
      const objects = rendered(k);
      expect(objects.length).toBeGreaterThan(10);
      expect(byId(objects).size).toBe(objects.length);
    });

    it.skipIf(kubectl === undefined)(`${k.name} renders exactly as kubectl kustomize does (skipped without kubectl >= 1.21 on PATH)`, () => {
      const out = execFileSync(kubectl ?? "kubectl", ["kustomize", k.dir], { encoding: "utf8", timeout: 60_000 });
      const theirs = byId(parseYamlDocuments(out, "kubectl kustomize").map((d) => d as KubeObject));
      const ours = byId(rendered(k));
      expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
      for (const [id, obj] of ours) expect(obj, id).toEqual(theirs.get(id));
    });
  }
});

describe("the in-repo kustomize renderer", () => {
  let scratch: string | undefined;
  afterEach(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    scratch = undefined;
  });
  const kustomization = (text: string): string => {
    scratch = mkdtempSync(path.join(tmpdir(), "kvbridge-kustomize-"));
    writeFileSync(path.join(scratch, "kustomization.yaml"), text);
    return scratch;
  };

  it("names generated ConfigMaps with kustomize's content hash", () => {
    // Reference value from kustomize v5.5 for this exact generator (including Go's escaping of <>&).
    expect(configMapHash({ B: "two words", A: "<x&y>" })).toBe("t5f6ftm546");
    const [cm] = renderKustomization(kustomization("configMapGenerator:\n  - name: example\n    literals: [\"B=two words\", \"A=<x&y>\"]\n"));
    expect(cm?.metadata.name).toBe("example-t5f6ftm546");
  });

  it("follows a merged generator into the pod templates that reference it", () => {
    const objects = renderKustomization(path.join(KUSTOMIZATIONS[1]!.dir));
    const node = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("kvbridge-node-"));
    expect(node).toBeDefined();
    const data = node?.["data"];
    expect(isJsonObject(data) ? data["KVBRIDGE_THREADS"] : undefined).toBe("1");
    const refs = JSON.stringify(objects.filter((o) => o.kind === "Deployment")).match(/"configMapRef":\{"name":"[^"]*"\}/g) ?? [];
    expect(refs).toContain(`"configMapRef":{"name":"${node?.metadata.name}"}`);
    expect(refs.length).toBe(6); // prefill: common, node; decode: common, node, decode; router: common
    for (const ref of refs) expect(ref).toMatch(/-[a-z0-9]{10}"\}$/);
  });

  it("refuses kustomize features it does not implement instead of ignoring them", () => {
    const dir = kustomization("commonLabels:\n  team: x\n");
    expect(() => renderKustomization(dir)).toThrow(/commonLabels.*outside the kustomize subset/);
  });

  it("refuses a patch whose path does not exist", () => {
    const dir = kustomization(
      "resources: [cm.yaml]\npatches:\n  - target: {kind: ConfigMap}\n    patch: |-\n      - op: replace\n        path: /data/missing\n        value: x\n",
    );
    writeFileSync(path.join(dir, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n");
    expect(() => renderKustomization(dir)).toThrow(/nothing to replace/);
  });
});
