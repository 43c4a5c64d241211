// The router's HTTP edge, on a real router in front of real stub nodes (router-stub-nodes.ts): every
// status it answers by itself (200/503 health, /version, 401, 403, 204 preflight, 404 naming the
// path, 405 with Allow, 413 after reading the upload, 415), CORS headers, and error messages that
// never name a node's address. Raw sockets where fetch would normalize what is sent.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_BODY_BYTES } from "../../src/config/defaults.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startRouter, type Router, type RouterOptions } from "../../src/roles/router/router-role.js";
import { VERSION } from "../../src/roles/version.js";
import { startStubDecode, startStubPrefill, type StubNode } from "../support/router-stub-nodes.js";

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function routerFor(prefill: StubNode[], decode: StubNode[], o: Partial<RouterOptions> = {}): Promise<Router> {
  for (const n of [...prefill, ...decode]) cleanup.push(() => n.close());
  const router = await startRouter({
    listen: { host: "127.0.0.1", port: 0 },
    prefill: { kind: "static", targets: prefill.map((n) => n.target) },
    decode: { kind: "static", targets: decode.map((n) => n.target) },
    logger: silentLogger(),
    healthIntervalMs: 50,
    healthTimeoutMs: 300,
    ...o,
  });
  cleanup.push(() => router.close());
  return router;
}

async function withPair(o: Partial<RouterOptions> = {}): Promise<Router> {
  const [prefill, decode] = await Promise.all([startStubPrefill(), startStubDecode()]);
  return routerFor([prefill], [decode], o);
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

const json = { "content-type": "application/json" };
const completion = JSON.stringify({ prompt: "hi", max_tokens: 1 });

async function errorOf(res: Response): Promise<ErrorBody["error"]> {
  expect(res.headers.get("content-type")).toBe("application/json");
  return ((await res.json()) as ErrorBody).error;
}

/** One request written as is on a socket (no client normalizes the path); the raw answer. */
async function rawRequest(router: Router, head: string): Promise<string> {
  const socket = net.connect(router.port, "127.0.0.1");
  let answer = "";
  socket.on("data", (d: Buffer) => (answer += d.toString("utf8")));
  socket.write(head);
  await new Promise<void>((resolve, reject) => {
    socket.on("end", () => resolve());
    socket.on("error", reject);
  });
  return answer;
}

describe("endpoints as vLLM's", () => {
  it("/health and /readyz 200 with a pair in rotation, 503 without; /healthz 200 either way; /version names the version", async () => {
    const prefill = await startStubPrefill();
    const decode = await startStubDecode();
    const router = await routerFor([prefill], [decode]);
    for (const path of ["/health", "/readyz", "/healthz"]) expect((await fetch(`${router.url}${path}`)).status, path).toBe(200);
    const version = await fetch(`${router.url}/version`);
    expect(version.status).toBe(200);
    expect(await version.json()).toEqual({ version: VERSION });
    decode.setServing("NOT_SERVING");
    await expect.poll(async () => (await fetch(`${router.url}/health`)).status, { timeout: 3_000 }).toBe(503);
    expect((await fetch(`${router.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
  });

  it("a router whose nodes are all absent: /health 503, /version 200", async () => {
    const router = await routerFor([], []);
    expect((await fetch(`${router.url}/health`)).status).toBe(503);
    expect((await fetch(`${router.url}/version`)).status).toBe(200);
  });
});

describe("statuses of the edge", () => {
  it("404 names the path asked for, //v1/completions included", async () => {
    const router = await withPair();
    const res = await fetch(`${router.url}/v1/nope?x=1`);
    expect(res.status).toBe(404);
    const e = await errorOf(res);
    expect(e).toMatchObject({ type: "invalid_request_error", code: "not_found", param: null });
    expect(e.message).toContain(`"/v1/nope"`);
    const raw = await rawRequest(router, `POST //v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${completion.length}\r\nconnection: close\r\n\r\n${completion}`);
    expect(raw).toMatch(/^HTTP\/1\.1 404 /);
    expect(raw).toContain(`no route POST \\"//v1/completions\\"`);
  });

  it("405 with Allow for a wrong method on a known path", async () => {
    const router = await withPair();
    const get = await fetch(`${router.url}/v1/completions`);
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(await errorOf(get)).toMatchObject({ code: "method_not_allowed", type: "invalid_request_error" });
    const post = await fetch(`${router.url}/health`, { method: "POST", headers: json, body: "{}" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    expect((await fetch(`${router.url}/version`, { method: "HEAD" })).status).toBe(200);
  });

  it("415 for a body that is not JSON (text/plain, form-encoded); JSON with a charset and no content type are read", async () => {
    const router = await withPair();
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { "content-type": type }, body: completion });
      expect(res.status, type).toBe(415);
      expect(await errorOf(res)).toMatchObject({ code: "unsupported_media_type", type: "invalid_request_error" });
    }
    const charset = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json; charset=utf-8" }, body: completion });
    expect(charset.status).toBe(200);
    const none = await rawRequest(router, `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-length: ${completion.length}\r\nconnection: close\r\n\r\n${completion}`);
    expect(none).toMatch(/^HTTP\/1\.1 200 /);
  });

  it("413 after the whole 9 MiB upload is read: the client gets the status, never a reset, and the connection serves the next request", async () => {
    const router = await withPair();
    const big = "x".repeat(9 * 1024 * 1024);
    const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: json, body: JSON.stringify({ prompt: big }) });
    expect(res.status).toBe(413);
    expect(await errorOf(res)).toMatchObject({ code: "request_too_large", type: "invalid_request_error", param: null });
    // Chunked (no Content-Length): counted as it arrives.
    const chunks = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 9; i++) c.enqueue(new Uint8Array(1024 * 1024).fill(0x20));
        c.close();
      },
    });
    const chunked = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: json, body: chunks, duplex: "half" } as RequestInit);
    expect(chunked.status).toBe(413);
    await chunked.body?.cancel();
    // One keep-alive socket: the 413, then a completion on the same connection.
    const body = `{"prompt":"${"y".repeat(MAX_BODY_BYTES)}"}`;
    const raw = await rawRequest(
      router,
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}` +
        `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${completion.length}\r\nconnection: close\r\n\r\n${completion}`,
    );
    expect(raw.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 413", "HTTP/1.1 200"]);
  });

  it("413 before the upload for a client that asks first (Expect: 100-continue)", async () => {
    const router = await withPair();
    const raw = await rawRequest(router, `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${MAX_BODY_BYTES + 1}\r\nexpect: 100-continue\r\n\r\n`);
    expect(raw).toMatch(/^HTTP\/1\.1 413 /);
    expect(raw).not.toContain("100 Continue");
  });

  it("error messages name no node address (the router's own message does)", async () => {
    const prefill = await startStubPrefill();
    const decode = await startStubDecode();
    const router = await routerFor([prefill], [decode]);
    await prefill.close();
    await expect.poll(async () => (await fetch(`${router.url}/health`)).status, { timeout: 3_000 }).toBe(503);
    const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: json, body: completion });
    expect(res.status).toBe(503);
    const e = await errorOf(res);
    const port = prefill.target.split(":").pop()!;
    expect(e.message).not.toContain(prefill.target);
    expect(e.message).not.toMatch(new RegExp(`:${port}\\b`));
    expect(e.message).toMatch(/node/);
  });
});

describe("API keys", () => {
  const key = "sk-test-0123456789";

  it("/v1/* needs Authorization: Bearer <key> (401 invalid_api_key otherwise); health, version and metrics stay open", async () => {
    const router = await withPair({ apiKeys: [key, "second-key"] });
    const none = await fetch(`${router.url}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as ErrorBody).error).toEqual({ message: expect.stringContaining("Bearer"), type: "invalid_request_error", param: null, code: "invalid_api_key" });
    for (const auth of [`Bearer ${key}x`, `Bearer ${key.slice(0, -1)}`, key, "Bearer ", `Basic ${key}`]) {
      const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { ...json, authorization: auth }, body: completion });
      expect(res.status, auth).toBe(401);
      expect((await errorOf(res)).code).toBe("invalid_api_key");
    }
    for (const k of [key, "second-key"]) {
      const ok = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { ...json, authorization: `Bearer ${k}` }, body: completion });
      expect(ok.status, k).toBe(200);
    }
    expect((await fetch(`${router.url}/v1/models`, { headers: { authorization: `bearer ${key}` } })).status).toBe(200);
    for (const path of ["/health", "/healthz", "/readyz", "/version", "/metrics"]) expect((await fetch(`${router.url}${path}`)).status, path).toBe(200);
    // An unknown path is not revealed without a key.
    expect((await fetch(`${router.url}/v1/nope`)).status).toBe(401);
    // A refused upload is read before the 401 (no reset).
    const big = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: json, body: "z".repeat(2 * 1024 * 1024) });
    expect(big.status).toBe(401);
  });

  it("with protectAll the open paths need the key too", async () => {
    const router = await withPair({ apiKeys: [key], apiKeyProtectAll: true });
    for (const path of ["/health", "/healthz", "/readyz", "/version", "/metrics"]) {
      expect((await fetch(`${router.url}${path}`)).status, path).toBe(401);
      expect((await fetch(`${router.url}${path}`, { headers: { authorization: `Bearer ${key}` } })).status, path).toBe(200);
    }
  });

  it("an empty key is refused at start", async () => {
    await expect(withPair({ apiKeys: [" "] })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("CORS", () => {
  const allowed = "https://app.example";

  it("preflight from an allowed origin: 204 with origin, methods and headers; actual answers carry the origin", async () => {
    const router = await withPair({ allowedOrigins: [allowed, "https://other.example"], apiKeys: ["k"] });
    const pre = await fetch(`${router.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: { origin: allowed, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(allowed);
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    expect(pre.headers.get("access-control-allow-headers")).toBe("Authorization, Content-Type");
    const ok = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { ...json, origin: allowed, authorization: "Bearer k" }, body: completion });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe(allowed);
    // Errors carry it too, so the page can read them.
    const denied = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { ...json, origin: allowed }, body: completion });
    expect(denied.status).toBe(401);
    expect(denied.headers.get("access-control-allow-origin")).toBe(allowed);
  });

  it("another origin: preflight 403, no CORS headers on its answers", async () => {
    const router = await withPair({ allowedOrigins: [allowed] });
    const pre = await fetch(`${router.url}/v1/completions`, { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } });
    expect(pre.status).toBe(403);
    expect(pre.headers.get("access-control-allow-origin")).toBeNull();
    expect((await errorOf(pre)).code).toBe("origin_not_allowed");
    const res = await fetch(`${router.url}/version`, { headers: { origin: "https://evil.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("* allows any origin; no --allowed-origins refuses every preflight", async () => {
    const any = await withPair({ allowedOrigins: ["*"] });
    const pre = await fetch(`${any.url}/v1/completions`, { method: "OPTIONS", headers: { origin: "https://x.example", "access-control-request-method": "POST" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    const closed = await withPair();
    const refused = await fetch(`${closed.url}/v1/completions`, { method: "OPTIONS", headers: { origin: "https://x.example", "access-control-request-method": "POST" } });
    expect(refused.status).toBe(403);
  });
});
