// The kustomizations shipped under deploy/ that tests render, each rendered once per test file.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderKustomization, type KubeObject } from "./kustomize-render.js";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export interface ShippedKustomization {
  name: string;
  dir: string;
}

/** Every overlay a user applies, plus the base on its own. Components are covered by xpyd-rdma. */
export const KUSTOMIZATIONS: ShippedKustomization[] = [
  { name: "base", dir: path.join(repoRoot, "deploy/base") },
  { name: "dev", dir: path.join(repoRoot, "deploy/overlays/dev") },
  { name: "xpyd", dir: path.join(repoRoot, "deploy/overlays/xpyd") },
  { name: "xpyd-rdma", dir: path.join(repoRoot, "deploy/overlays/xpyd-rdma") },
];

const cache = new Map<string, KubeObject[]>();

/** The rendered objects of a kustomization (a fresh deep copy, so tests may mutate it). */
export function rendered(k: ShippedKustomization): KubeObject[] {
  let objects = cache.get(k.dir);
  if (!objects) {
    objects = renderKustomization(k.dir);
    cache.set(k.dir, objects);
  }
  return structuredClone(objects);
}
