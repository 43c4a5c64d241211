// The engine's compatibility fingerprint: what must be equal on a prefill and a decode node for KV
// bytes to move between them. It feeds the chunk keys, so engines that could not share KV never
// even produce the same keys.

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import type { KvStateLayout } from "./kv-state-layout.js";

/** The inputs of the fingerprint, kept readable so a mismatch can be explained field by field. */
export interface EngineCompatibility {
  /** sha256 of the model file. */
  modelSha256: string;
  architecture: string;
  layers: number;
  embedding: number;
  /** Query heads (per layer when the model varies them). */
  heads: number | readonly number[];
  /** Key/value heads (per layer when the model varies them). */
  kvHeads: number | readonly number[];
  /** KV cache element types, by ggml name (e.g. "F16"). */
  kvKeyType: string;
  kvValueType: string;
  /** The per-layer KV state layout llama.cpp writes for this model and context settings. */
  kvLayout: KvStateLayout;
  chunkTokens: number;
  chunkFormat: number;
}

export function computeFingerprint(c: EngineCompatibility): string {
  return createHash("sha256").update("kvbridge.fingerprint.v1\n").update(canonicalJson(c)).digest("hex");
}

/** Fields that differ between two compatibility records, for error messages and handshakes. */
export function describeMismatch(ours: EngineCompatibility, theirs: EngineCompatibility): string[] {
  const out: string[] = [];
  for (const k of Object.keys(ours) as Array<keyof EngineCompatibility>) {
    const a = canonicalJson(ours[k]);
    const b = canonicalJson(theirs[k]);
    if (a !== b) out.push(`${k}: ours ${short(a)}, theirs ${short(b)}`);
  }
  return out;
}

const fileHashes = new Map<string, Promise<string>>();

/** sha256 of a file, streamed; remembered per (path, size, mtime) so reopening a model is free. */
export async function hashModelFile(filePath: string): Promise<string> {
  const st = await stat(filePath).catch((err: unknown) => {
    throw new KvbridgeError("NOT_FOUND", `model file ${filePath} cannot be read (${(err as Error).message}); pass an existing GGUF with --model`, { cause: err });
  });
  const cacheKey = `${filePath}\0${st.size}\0${st.mtimeMs}`;
  let p = fileHashes.get(cacheKey);
  if (!p) {
    p = new Promise<string>((resolve, reject) => {
      const h = createHash("sha256");
      createReadStream(filePath, { highWaterMark: 1 << 20 })
        .on("data", (d) => h.update(d))
        .on("error", (err) => reject(new KvbridgeError("NOT_FOUND", `reading model file ${filePath}: ${err.message}`, { cause: err })))
        .on("end", () => resolve(h.digest("hex")));
    });
    fileHashes.set(cacheKey, p);
    p.catch(() => fileHashes.delete(cacheKey));
  }
  return p;
}

function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return value;
  });
}

function short(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
