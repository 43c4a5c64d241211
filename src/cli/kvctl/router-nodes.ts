// The nodes behind a router, read from its GET /health (every prefill and decode node it follows, in
// rotation or not, with its last health answer): for `kvctl nodes --router URL` and `kvctl status
// --router URL`. A protected router (--api-key-protect-all) needs the key as a Bearer token.
import { KvbridgeError } from "../../errors/kvbridge-error.js";

export type NodeRole = "prefill" | "decode";

export interface RouterNode {
  role: NodeRole;
  address: string;
  in_rotation: boolean;
  /** The router's last verdict: SERVING, NOT_SERVING, unreachable, timeout, unknown. */
  health: string;
}

export interface RouterView {
  router: string;
  /** /health's status: "ready" (a prefill + decode pair in rotation) or "not ready". */
  status: string;
  draining: boolean;
  nodes: RouterNode[];
}

export interface RouterQuery {
  apiKey?: string;
  timeoutMs: number;
}

/** http(s)://host:port[/prefix]; anything else is a usage error. */
export function routerUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw new KvbridgeError("INVALID_ARGUMENT", `--router ${JSON.stringify(raw)} is not a URL; use http://host:port`, { details: { param: "router" } });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new KvbridgeError("INVALID_ARGUMENT", `--router must be an http:// or https:// URL, got ${u.protocol}`, { details: { param: "router" } });
  }
  return u;
}

function nodesOf(list: unknown, role: NodeRole): RouterNode[] {
  if (!Array.isArray(list)) return [];
  return list.flatMap((n: unknown): RouterNode[] => {
    if (typeof n !== "object" || n === null) return [];
    const o = n as Record<string, unknown>;
    if (typeof o.target !== "string") return [];
    return [{ role, address: o.target, in_rotation: o.inRotation === true, health: typeof o.health === "string" ? o.health : "unknown" }];
  });
}

/** Why fetch failed, said as the node errors say it: refused, unresolved, or no answer in time. */
function unreachable(url: string, err: unknown, timeoutMs: number): KvbridgeError {
  const e = err as { name?: string; cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } };
  if (e.name === "TimeoutError") return new KvbridgeError("DEADLINE_EXCEEDED", `router ${url} did not answer GET /health within ${timeoutMs} ms; raise --timeout`, { cause: err });
  // A name with several addresses fails with an AggregateError of each attempt.
  const code = e.cause?.code ?? e.cause?.errors?.[0]?.code ?? "";
  if (code === "ECONNREFUSED") return new KvbridgeError("UNAVAILABLE", `router ${url}: connection refused (nothing listens there); check the URL and that the router is running`, { cause: err });
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new KvbridgeError("UNAVAILABLE", `router ${url}: the host name does not resolve (${code}); check the URL`, { cause: err });
  return new KvbridgeError("UNAVAILABLE", `router ${url} could not be reached (${code || e.cause?.message || (err as Error).message}); check the URL and that the router is running`, { cause: err });
}

/** GET /health of the router; 200 and 503 both list the nodes. */
export async function routerNodes(raw: string, q: RouterQuery): Promise<RouterView> {
  const base = routerUrl(raw);
  const url = new URL(base.pathname.replace(/\/+$/, "") + "/health", base);
  const shown = base.origin + base.pathname.replace(/\/+$/, "");
  let res: Response;
  try {
    res = await fetch(url, { headers: q.apiKey ? { authorization: `Bearer ${q.apiKey}` } : {}, signal: AbortSignal.timeout(q.timeoutMs), redirect: "error" });
  } catch (err) {
    throw unreachable(shown, err, q.timeoutMs);
  }
  const text = await res.text().catch(() => "");
  if (res.status === 401 || res.status === 403) {
    throw new KvbridgeError("PERMISSION_DENIED", `router ${shown} refused GET /health (${res.status}): ${q.apiKey ? "the API key was not accepted" : "it requires an API key; pass --api-key or set KVBRIDGE_API_KEY"}`);
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = {};
  }
  if ((res.status !== 200 && res.status !== 503) || !("prefill" in body || "decode" in body)) {
    throw new KvbridgeError("UNAVAILABLE", `${shown} answered GET /health with ${res.status} and no node list; is it a kvbridge router?`);
  }
  return {
    router: shown,
    status: typeof body.status === "string" ? body.status : res.status === 200 ? "ready" : "not ready",
    draining: body.draining === true,
    nodes: [...nodesOf(body.prefill, "prefill"), ...nodesOf(body.decode, "decode")],
  };
}
