// API keys on the router's HTTP API (--api-key): a request to a protected path must carry
// `Authorization: Bearer <key>` naming one of them. Keys are kept as SHA-256 digests and compared
// with crypto.timingSafeEqual, digest against digest (equal lengths whatever was sent), against
// every key without stopping at a match, so the time taken says nothing about any key.
import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { invalidApiKey } from "./http-errors.js";

/** Paths open without a key unless every path is protected: probes, version and metrics. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/health", "/healthz", "/readyz", "/version", "/metrics"]);

export interface ApiKeyOptions {
  keys: readonly string[];
  /** Also protect the open paths (/health, /healthz, /readyz, /version, /metrics). */
  protectAll?: boolean;
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

export class ApiKeys {
  private readonly digests: Buffer[];
  private readonly protectAll: boolean;

  constructor(o: ApiKeyOptions) {
    const keys = o.keys.map((k) => k.trim());
    if (keys.some((k) => k.length === 0)) throw new KvbridgeError("INVALID_ARGUMENT", "an API key is empty", { details: { param: "api-key" } });
    this.digests = keys.map(digest);
    this.protectAll = o.protectAll ?? false;
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** Whether `path` needs a key: every path under /v1/ (and any other API path), the open ones only with protectAll. */
  protects(path: string): boolean {
    return this.enabled && (this.protectAll || !OPEN_PATHS.has(path));
  }

  /** Throws the 401 when the request does not carry one of the keys. */
  check(req: http.IncomingMessage): void {
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer[ \t]+(.+)$/i.exec(header.trim());
    if (!m) throw invalidApiKey(header !== undefined);
    const given = digest(m[1]!.trim());
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(given, d) || ok;
    if (!ok) throw invalidApiKey(true);
  }
}
