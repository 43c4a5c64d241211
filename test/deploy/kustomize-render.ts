// Renders the kustomizations under deploy/ the way `kubectl kustomize` does, for the subset of
// kustomize the manifests use, so that CI needs no kubectl binary (Debian's kubernetes-client is
// 1.20, whose kustomize predates components). Anything outside that subset is an error, never
// silently ignored; render.test.ts compares the output with the real kustomize where one exists.
import { createHash } from "node:crypto";
import { readFileSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** One rendered Kubernetes object. */
export interface KubeObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string; namespace?: string };
}

interface Resource {
  obj: KubeObject;
  /** Set for ConfigMaps made by configMapGenerator: they get a content-hash name suffix. */
  generatedName?: string;
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
const KNOWN_FIELDS: Record<"Kustomization" | "Component", Set<string>> = {
  Kustomization: new Set(["apiVersion", "kind", "resources", "components", "namespace", "configMapGenerator", "patches", "replicas", "images"]),
  Component: new Set(["apiVersion", "kind", "resources", "configMapGenerator", "patches", "replicas", "images"]),
};
const CLUSTER_SCOPED_KINDS = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
  "StorageClass", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
  "RuntimeClass", "IngressClass", "APIService", "CSIDriver", "VolumeAttachment",
]);
const REPLICATED_KINDS = new Set(["Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"]);

/** Builds the kustomization in `dir` (a directory holding kustomization.yaml). */
export function renderKustomization(dir: string): KubeObject[] {
  const resources = accumulate(path.resolve(dir), "Kustomization", []);
  hashGeneratedNames(resources);
  return resources.map((r) => r.obj);
}

export function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parses a multi-document YAML file into plain objects (empty documents are skipped). */
export function parseYamlDocuments(text: string, source: string): Json[] {
  const out: Json[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value = doc.toJS() as Json | undefined;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function fail(where: string, message: string): never {
  throw new Error(`${where}: ${message}`);
}

function loadKustomization(dir: string, expectedKind: "Kustomization" | "Component"): JsonObject {
  const file = KUSTOMIZATION_FILES.map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (file === undefined) fail(dir, "no kustomization.yaml in this directory");
  const docs = parseYamlDocuments(readFileSync(file, "utf8"), file);
  const k = docs[0];
  if (docs.length !== 1 || !isJsonObject(k)) fail(file, "expected exactly one YAML mapping");
  const kind = k["kind"] ?? "Kustomization";
  if (kind !== expectedKind) fail(file, `kind is ${String(kind)}, expected ${expectedKind} here`);
  for (const key of Object.keys(k)) {
    if (!KNOWN_FIELDS[expectedKind].has(key)) fail(file, `field "${key}" is outside the kustomize subset this renderer implements; extend test/deploy/kustomize-render.ts`);
  }
  return k;
}

function stringList(k: JsonObject, field: string, where: string): string[] {
  const v = k[field];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === "string")) fail(where, `${field} must be a list of strings`);
  return v;
}

function objectList(k: JsonObject, field: string, where: string): JsonObject[] {
  const v = k[field];
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every(isJsonObject)) fail(where, `${field} must be a list of mappings`);
  return v;
}

function asKubeObject(value: Json, where: string): KubeObject {
  if (!isJsonObject(value)) fail(where, "a resource must be a YAML mapping");
  const meta = value["metadata"];
  if (typeof value["apiVersion"] !== "string" || typeof value["kind"] !== "string" || !isJsonObject(meta) || typeof meta["name"] !== "string") {
    fail(where, "a resource needs apiVersion, kind and metadata.name");
  }
  return value as KubeObject;
}

function idOf(obj: KubeObject): string {
  return `${obj.kind}/${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
}

function addResource(acc: Resource[], res: Resource, where: string): void {
  if (acc.some((r) => idOf(r.obj) === idOf(res.obj))) fail(where, `${idOf(res.obj)} is defined twice`);
  acc.push(res);
}

/** kustomize's order: resources, then components (each applied to everything so far), then
 *  this kustomization's generators, then its transformers (patches, namespace, replicas, images). */
function accumulate(dir: string, kind: "Kustomization" | "Component", acc: Resource[]): Resource[] {
  const k = loadKustomization(dir, kind);
  const where = path.join(dir, "kustomization.yaml");

  for (const entry of stringList(k, "resources", where)) {
    const target = path.resolve(dir, entry);
    if (!existsSync(target)) fail(where, `resource ${entry} does not exist`);
    if (statSync(target).isDirectory()) {
      for (const r of accumulate(target, "Kustomization", [])) addResource(acc, r, where);
    } else {
      for (const doc of parseYamlDocuments(readFileSync(target, "utf8"), target)) addResource(acc, { obj: asKubeObject(doc, target) }, where);
    }
  }
  for (const entry of stringList(k, "components", where)) {
    acc = accumulate(path.resolve(dir, entry), "Component", acc);
  }
  for (const gen of objectList(k, "configMapGenerator", where)) generateConfigMap(acc, gen, dir, where);
  for (const patch of objectList(k, "patches", where)) applyPatch(acc, patch, dir, where);
  const namespace = k["namespace"];
  if (namespace !== undefined) {
    if (typeof namespace !== "string") fail(where, "namespace must be a string");
    for (const r of acc) if (!CLUSTER_SCOPED_KINDS.has(r.obj.kind)) r.obj.metadata.namespace = namespace;
  }
  for (const rep of objectList(k, "replicas", where)) setReplicas(acc, rep, where);
  for (const image of objectList(k, "images", where)) setImage(acc, image, where);
  return acc;
}

// --- configMapGenerator -------------------------------------------------------------------

function generatorData(gen: JsonObject, dir: string, where: string): Record<string, string> {
  const data: Record<string, string> = {};
  for (const key of Object.keys(gen)) {
    if (!["name", "behavior", "literals", "envs"].includes(key)) fail(where, `configMapGenerator field "${key}" is not implemented here`);
  }
  const put = (line: string, from: string): void => {
    const eq = line.indexOf("=");
    if (eq <= 0) fail(from, `"${line}" is not KEY=VALUE`);
    data[line.slice(0, eq)] = line.slice(eq + 1);
  };
  for (const literal of stringList(gen, "literals", where)) put(literal, where);
  for (const envFile of stringList(gen, "envs", where)) {
    const file = path.resolve(dir, envFile);
    for (const raw of readFileSync(file, "utf8").split("\n")) {
      const line = raw.trim();
      if (line !== "" && !line.startsWith("#")) put(line, file);
    }
  }
  return data;
}

function generateConfigMap(acc: Resource[], gen: JsonObject, dir: string, where: string): void {
  const name = gen["name"];
  if (typeof name !== "string") fail(where, "configMapGenerator entry without a name");
  const behavior = gen["behavior"] ?? "create";
  const data = generatorData(gen, dir, where);
  const existing = acc.filter((r) => r.obj.kind === "ConfigMap" && (r.generatedName ?? r.obj.metadata.name) === name);
  if (existing.length > 1) fail(where, `ConfigMap ${name} is ambiguous`);
  const found = existing[0];
  switch (behavior) {
    case "create":
      if (found) fail(where, `ConfigMap ${name} already exists; use behavior: merge or replace`);
      acc.push({ obj: { apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data }, generatedName: name });
      return;
    case "merge":
    case "replace": {
      if (!found) fail(where, `ConfigMap ${name} to ${behavior} does not exist`);
      const before = found.obj["data"];
      const merged = behavior === "merge" && isJsonObject(before) ? { ...before, ...data } : data;
      found.obj["data"] = merged;
      return;
    }
    default:
      fail(where, `unknown configMapGenerator behavior ${String(behavior)}`);
  }
}

/** kustomize's ConfigMap hash (api/hasher): sha256 of Go's json.Marshal of {data, kind, name},
 *  first 10 hex digits with 0,1,3,a,e swapped for letters. The name is always "": kustomize looks
 *  it up as the single field "metadata/name", which never exists, so names do not enter the hash. */
export function configMapHash(data: JsonObject): string {
  const sortedData: Record<string, Json> = {};
  for (const key of Object.keys(data).sort()) sortedData[key] = data[key] ?? null;
  // Go's encoder escapes <, > and & inside strings; JSON.stringify does not.
  const encoded = JSON.stringify({ data: sortedData, kind: "ConfigMap", name: "" })
    .replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
  const hex = createHash("sha256").update(encoded).digest("hex");
  const swap: Record<string, string> = { "0": "g", "1": "h", "3": "k", a: "m", e: "t" };
  return [...hex.slice(0, 10)].map((c) => swap[c] ?? c).join("");
}

/** Done once, after the whole tree is built (as kustomize does), then references follow. */
function hashGeneratedNames(acc: Resource[]): void {
  const renames = new Map<string, string>(); // "namespace/name" -> new name
  for (const r of acc) {
    if (r.generatedName === undefined) continue;
    const data = r.obj["data"];
    const newName = `${r.generatedName}-${configMapHash(isJsonObject(data) ? data : {})}`;
    renames.set(`${r.obj.metadata.namespace ?? ""}/${r.generatedName}`, newName);
    r.obj.metadata.name = newName;
  }
  for (const r of acc) {
    const podSpec = podSpecOf(r.obj);
    if (!podSpec) continue;
    const ns = r.obj.metadata.namespace ?? "";
    const rename = (holder: Json | undefined): void => {
      if (!isJsonObject(holder) || typeof holder["name"] !== "string") return;
      const to = renames.get(`${ns}/${holder["name"]}`);
      if (to !== undefined) holder["name"] = to;
    };
    for (const c of containersOf(podSpec)) {
      for (const e of asArray(c["envFrom"])) if (isJsonObject(e)) rename(e["configMapRef"]);
      for (const e of asArray(c["env"])) {
        const from = isJsonObject(e) ? e["valueFrom"] : undefined;
        if (isJsonObject(from)) rename(from["configMapKeyRef"]);
      }
    }
    for (const v of asArray(podSpec["volumes"])) {
      if (!isJsonObject(v)) continue;
      rename(v["configMap"]);
      const projected = v["projected"];
      if (isJsonObject(projected)) for (const s of asArray(projected["sources"])) if (isJsonObject(s)) rename(s["configMap"]);
    }
  }
}

function asArray(v: Json | undefined): Json[] {
  return Array.isArray(v) ? v : [];
}

/** The pod spec inside a workload's template, if the object has one. */
export function podSpecOf(obj: KubeObject): JsonObject | undefined {
  const spec = obj["spec"];
  const template = isJsonObject(spec) ? spec["template"] : undefined;
  const podSpec = isJsonObject(template) ? template["spec"] : undefined;
  return isJsonObject(podSpec) ? podSpec : undefined;
}

function containersOf(podSpec: JsonObject): JsonObject[] {
  return [...asArray(podSpec["initContainers"]), ...asArray(podSpec["containers"])].filter(isJsonObject);
}

// --- transformers -------------------------------------------------------------------------

function matchesTarget(obj: KubeObject, target: JsonObject, where: string): boolean {
  for (const key of Object.keys(target)) {
    if (!["kind", "name", "group", "version"].includes(key)) fail(where, `patch target field "${key}" is not implemented here`);
  }
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/", 2) : ["", obj.apiVersion];
  // kustomize matches target fields as anchored regular expressions.
  const test = (field: string, actual: string | undefined): boolean => {
    const want = target[field];
    return want === undefined || new RegExp(`^(?:${String(want)})$`).test(actual ?? "");
  };
  return test("kind", obj.kind) && test("name", obj.metadata.name) && test("group", group) && test("version", version);
}

function applyPatch(acc: Resource[], entry: JsonObject, dir: string, where: string): void {
  for (const key of Object.keys(entry)) {
    if (!["path", "patch", "target"].includes(key)) fail(where, `patches field "${key}" is not implemented here`);
  }
  const file = typeof entry["path"] === "string" ? path.resolve(dir, entry["path"]) : undefined;
  const text = file !== undefined ? readFileSync(file, "utf8") : entry["patch"];
  if (typeof text !== "string") fail(where, "a patch needs path or patch");
  const docs = parseYamlDocuments(text, file ?? where);
  const ops = docs[0];
  if (docs.length !== 1 || !Array.isArray(ops)) fail(file ?? where, "only JSON 6902 patches (a YAML list of operations) are implemented here");
  const target = entry["target"];
  if (!isJsonObject(target)) fail(where, "a JSON 6902 patch needs a target");
  for (const r of acc) {
    if (!matchesTarget(r.obj, target, where)) continue;
    for (const op of ops) {
      if (!isJsonObject(op)) fail(file ?? where, "a patch operation must be a mapping");
      applyOperation(r.obj, op, `${file ?? where} on ${idOf(r.obj)}`);
    }
  }
}

function pointerTokens(pointer: string, where: string): string[] {
  if (!pointer.startsWith("/")) fail(where, `"${pointer}" is not a JSON pointer`);
  return pointer.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

/** RFC 6902 add, remove, replace and test. */
export function applyOperation(doc: JsonObject, op: JsonObject, where: string): void {
  const kind = op["op"];
  const pointer = op["path"];
  if (typeof pointer !== "string") fail(where, "operation without a path");
  const tokens = pointerTokens(pointer, where);
  const last = tokens.pop();
  if (last === undefined) fail(where, "operations on the whole document are not supported");
  let parent: Json = doc;
  for (const t of tokens) {
    const next: Json | undefined = Array.isArray(parent) ? parent[Number(t)] : isJsonObject(parent) ? parent[t] : undefined;
    if (next === undefined) fail(where, `${pointer}: "${t}" does not exist`);
    parent = next;
  }
  const value = op["value"];
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) fail(where, `${pointer}: index out of range`);
    switch (kind) {
      case "add":
        if (value === undefined) fail(where, "add without a value");
        parent.splice(index, 0, structuredClone(value));
        return;
      case "replace":
        if (value === undefined || index >= parent.length) fail(where, `${pointer}: nothing to replace`);
        parent[index] = structuredClone(value);
        return;
      case "remove":
        if (index >= parent.length) fail(where, `${pointer}: nothing to remove`);
        parent.splice(index, 1);
        return;
      case "test":
        if (JSON.stringify(parent[index]) !== JSON.stringify(value)) fail(where, `${pointer}: test failed`);
        return;
    }
  } else if (isJsonObject(parent)) {
    switch (kind) {
      case "add":
        if (value === undefined) fail(where, "add without a value");
        parent[last] = structuredClone(value);
        return;
      case "replace":
        if (value === undefined || !(last in parent)) fail(where, `${pointer}: nothing to replace`);
        parent[last] = structuredClone(value);
        return;
      case "remove":
        if (!(last in parent)) fail(where, `${pointer}: nothing to remove`);
        delete parent[last];
        return;
      case "test":
        if (JSON.stringify(parent[last]) !== JSON.stringify(value)) fail(where, `${pointer}: test failed`);
        return;
    }
  } else {
    fail(where, `${pointer}: parent is not a container`);
  }
  fail(where, `operation ${String(kind)} is not implemented here`);
}

function setReplicas(acc: Resource[], entry: JsonObject, where: string): void {
  const { name, count } = entry;
  if (typeof name !== "string" || typeof count !== "number") fail(where, "replicas entries need name and count");
  const hits = acc.filter((r) => REPLICATED_KINDS.has(r.obj.kind) && r.obj.metadata.name === name);
  if (hits.length === 0) fail(where, `replicas: no workload named ${name}`);
  for (const r of hits) {
    const spec = r.obj["spec"];
    if (!isJsonObject(spec)) fail(where, `${idOf(r.obj)} has no spec`);
    spec["replicas"] = count;
  }
}

/** Splits an image reference into name, tag and digest (a registry port is not a tag). */
export function splitImage(image: string): { name: string; tag?: string; digest?: string } {
  const [rest = "", digest] = image.split("@", 2);
  const slash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > slash) return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), ...(digest ? { digest } : {}) };
  return { name: rest, ...(digest ? { digest } : {}) };
}

function setImage(acc: Resource[], entry: JsonObject, where: string): void {
  for (const key of Object.keys(entry)) {
    if (!["name", "newName", "newTag", "digest"].includes(key)) fail(where, `images field "${key}" is not implemented here`);
  }
  const name = entry["name"];
  if (typeof name !== "string") fail(where, "images entries need a name");
  for (const r of acc) {
    const podSpec = podSpecOf(r.obj);
    if (!podSpec) continue;
    for (const c of containersOf(podSpec)) {
      if (typeof c["image"] !== "string") continue;
      const current = splitImage(c["image"]);
      if (current.name !== name) continue;
      const newName = typeof entry["newName"] === "string" ? entry["newName"] : current.name;
      if (typeof entry["digest"] === "string") c["image"] = `${newName}@${entry["digest"]}`;
      else if (typeof entry["newTag"] === "string") c["image"] = `${newName}:${entry["newTag"]}`;
      else c["image"] = `${newName}${current.tag !== undefined ? `:${current.tag}` : ""}${current.digest !== undefined ? `@${current.digest}` : ""}`;
    }
  }
}
