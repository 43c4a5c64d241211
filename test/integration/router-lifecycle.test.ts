// The router role on its RoleLifecycle, with real sockets: a router whose HTTP port is taken fails to
// start and leaves no discovery timer behind; a draining router refuses new requests at once and
// closes as soon as its last request ends (woken by it, long before the drain's bound). The nodes are
// real gRPC servers whose health says SERVING and whose Plan never answers.
import net from "node:net";
import { once } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ROUTER_RECONNECT_MAX_BACKOFF_MS } from "../../src/config/defaults.js";
import { silentLogger } from "../../src/observability/logger.js";
import { startRouter, type Router } from "../../src/roles/router/router-role.js";
import { NEVER, startStubDecode, startStubPrefill } from "../support/router-stub-nodes.js";

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe("router lifecycle", () => {
  it("a router whose listen fails rejects naming the address and leaves no discovery timer running", async () => {
    const taken = net.createServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    cleanup.push(() => new Promise((r) => taken.close(() => r())));
    const port = (taken.address() as net.AddressInfo).port;
    // Fake timers count every timer, unref'd ones too (which no active-resource list shows).
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval"] });
    cleanup.push(async () => void vi.useRealTimers());
    const before = vi.getTimerCount();
    await expect(
      startRouter({
        listen: { host: "127.0.0.1", port },
        // DNS sources: each starts a periodic re-resolution timer before the router listens.
        prefill: { kind: "dns", name: "localhost", port: 50051 },
        decode: { kind: "dns", name: "localhost", port: 50061 },
        logger: silentLogger(),
      }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining(`127.0.0.1:${port}`) });
    // The health probes' closed channels may still hold one reconnect backoff each (grpc-js, one-shot,
    // under ROUTER_RECONNECT_MAX_BACKOFF_MS with its jitter); a periodic timer left behind stays counted.
    await vi.advanceTimersByTimeAsync(ROUTER_RECONNECT_MAX_BACKOFF_MS * 1.25);
    expect(vi.getTimerCount()).toBe(before);
  });

  it("a draining router answers 503 to new requests and closes as soon as its last request ends", async () => {
    // Nodes in rotation whose Plan never answers: a request stays in flight (in Plan) until its client leaves.
    const [prefill, decode] = await Promise.all([startStubPrefill({ plan: () => NEVER }), startStubDecode()]);
    cleanup.push(() => prefill.close(), () => decode.close());
    const router: Router = await startRouter({
      listen: { host: "127.0.0.1", port: 0 },
      prefill: { kind: "static", targets: [prefill.target] },
      decode: { kind: "static", targets: [decode.target] },
      logger: silentLogger(),
    });
    cleanup.push(() => router.close());
    const post = (signal?: AbortSignal): Promise<Response> =>
      fetch(`${router.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "hello", max_tokens: 4 }), signal });
    const client = new AbortController();
    const stuck = post(client.signal).catch(() => undefined);
    const deadline = Date.now() + 10_000;
    while (router.inFlight() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(router.inFlight()).toBe(1);

    const t0 = performance.now();
    let drained = false;
    const draining = router.drain(60_000).then(() => (drained = true));
    const refused = await post();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    expect(drained).toBe(false);

    client.abort();
    await stuck;
    await draining;
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(router.inFlight()).toBe(0);
    await expect(fetch(`${router.url}/healthz`)).rejects.toThrow();
  });
});
