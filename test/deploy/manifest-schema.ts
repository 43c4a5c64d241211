// Offline validation of rendered objects against the Kubernetes OpenAPI schemas, through the
// JSON-schema validators that the kubernetes-models packages generate from the upstream
// specification (and from the prometheus-operator CRDs for ServiceMonitor). Those schemas, like
// the API server's own OpenAPI, allow unknown fields; a typo such as `protocl:` would pass. So
// the validator runs on a proxy that records every field it looks at: a field the schema never
// looked at is unknown to Kubernetes, as `kubectl apply --validate=strict` would report.
import type { Json, JsonObject, KubeObject } from "./kustomize-render.js";

type ValidateMethod = (this: unknown) => void;
interface ModelClass {
  prototype: { validate: ValidateMethod };
}
type ModelModule = Record<string, unknown>;

const MODULES: Record<string, () => Promise<ModelModule>> = {
  v1: () => import("kubernetes-models/v1"),
  "apps/v1": () => import("kubernetes-models/apps/v1"),
  "policy/v1": () => import("kubernetes-models/policy/v1"),
  "networking.k8s.io/v1": () => import("kubernetes-models/networking.k8s.io/v1"),
  "monitoring.coreos.com/v1": () => import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"),
};

function isModelClass(value: unknown): value is ModelClass {
  return typeof value === "function" && typeof (value as { prototype?: { validate?: unknown } }).prototype?.validate === "function";
}

/** The generated validator for an apiVersion and kind; throws when no schema is known for it. */
async function validatorFor(apiVersion: string, kind: string): Promise<ValidateMethod> {
  const load = MODULES[apiVersion];
  if (!load) throw new Error(`no schema for apiVersion ${apiVersion} (add its kubernetes-models module to test/deploy/manifest-schema.ts)`);
  const cls = (await load())[kind];
  if (!isModelClass(cls)) throw new Error(`no schema for ${apiVersion} ${kind}`);
  return cls.prototype.validate;
}

/** Wraps `root` so that every property read through it is recorded. */
function trackReads(root: JsonObject): { proxy: JsonObject; unread: () => string[] } {
  const reads = new WeakMap<object, Set<string>>();
  const proxies = new WeakMap<object, object>();
  const wrap = (value: unknown): unknown => {
    if (typeof value !== "object" || value === null) return value;
    const known = proxies.get(value);
    if (known) return known;
    const seen = new Set<string>();
    reads.set(value, seen);
    const proxy = new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key === "string") seen.add(key);
        return wrap(Reflect.get(target, key, receiver));
      },
    });
    proxies.set(value, proxy);
    return proxy;
  };
  const proxy = wrap(root) as JsonObject;
  const unread = (): string[] => {
    const out: string[] = [];
    const walk = (value: Json | undefined, at: string): void => {
      if (typeof value !== "object" || value === null) return;
      const seen = reads.get(value);
      for (const [key, child] of Object.entries(value)) {
        if (!Array.isArray(value) && !seen?.has(key)) out.push(`${at}/${key}`);
        walk(child, `${at}/${key}`);
      }
    };
    walk(root, "");
    return out;
  };
  return { proxy, unread };
}

/** Problems with one object: schema violations, then fields the schema does not define. */
export async function validateAgainstSchema(obj: KubeObject): Promise<string[]> {
  const validate = await validatorFor(obj.apiVersion, obj.kind);
  // The validator must not see (or mutate) the caller's object through any other path.
  const { proxy, unread } = trackReads(structuredClone(obj));
  try {
    validate.call(proxy);
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
  return unread().map((field) => `${field} is not a field of ${obj.apiVersion} ${obj.kind}`);
}
