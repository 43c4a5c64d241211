// Where kvbridge's package is installed: the one upward search from this module (src/ under tsx,
// dist/src/ when built, node_modules/kvbridge/dist/src/ when installed) to kvbridge's package.json.
// Files shipped with the package (proto/, the default model's cache) are found from here.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { KvbridgeError } from "../errors/kvbridge-error.js";

let cached: string | undefined;

/** The directory holding kvbridge's package.json (by name: a workspace's own package.json above it does not count). */
export function packageRoot(): string {
  if (cached) return cached;
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    if (isKvbridgePackage(path.join(dir, "package.json"))) return (cached = dir);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new KvbridgeError("INTERNAL", `kvbridge's package.json was not found above ${start}; the installation is incomplete`);
}

function isKvbridgePackage(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(file, "utf8")) as { name?: unknown }).name === "kvbridge";
  } catch {
    // Absent, unreadable or not JSON: not this directory.
    return false;
  }
}
