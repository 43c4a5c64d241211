// The prefill role over real gRPC on loopback, with the real engine on the project's model and a real
// decode role to push to: a 1 MiB prompt refused by Plan and Prefill (INVALID_ARGUMENT, reason
// prompt_too_long, the token limit) while a small Plan + Prefill sent with it completes, nothing of
// the big one reaching the decode node; the character limit named in characters; a drain that refuses
// new Prefill calls (reason "draining", counted and logged by the interceptors with the request id),
// still answers Plan, and ends when the running Prefill ends; a metrics port already taken fails the
// start and releases the gRPC server and the sender.
import { createServer, type AddressInfo, type Server } from "node:net";
import pino, { type Logger } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { startDecodeRole, type DecodeRole } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { startPrefillRole, type PrefillRole } from "../../src/roles/prefill-role.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { HealthClient } from "../../src/wire/health-client.js";
import { PrefillClient } from "../../src/wire/prefill-client.js";
import { freePort } from "../support/free-port.js";
import { openTestEngine, sampleText } from "../support/model-fixture.js";

const T = { timeoutMs: 60_000 };
const ONE_MIB = 1 << 20;

let prefillEngine: LlamaEngine;
let decode: DecodeRole;
let tcp: TcpSenderTransport;
const toClose: Array<() => unknown> = [];

function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: "debug" }, { write: (s: string) => void lines.push(s) }), lines };
}

async function startPrefill(over: Partial<Parameters<typeof startPrefillRole>[0]> = {}): Promise<{ role: PrefillRole; client: PrefillClient; lines: string[] }> {
  const { logger, lines } = capture();
  const role = await startPrefillRole({ listen: parseHostPort("127.0.0.1:0", "listen"), engine: prefillEngine, transports: { tcp }, transport: "tcp", logger, ...over });
  const client = new PrefillClient(role.grpcAddress);
  toClose.push(() => client.close(), () => role.close());
  return { role, client, lines };
}

async function refusal(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof KvbridgeError)) throw new Error(`expected a KvbridgeError, got ${String(err)}`);
  return err;
}

beforeAll(async () => {
  prefillEngine = await openTestEngine({ maxSequences: 2 });
  decode = await startDecodeRole({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: 64,
    slotBytes: 1 << 20,
    leaseMs: 60_000,
    quarantineMs: 200,
    transport: "tcp",
    lockMemory: false,
    logger: pino({ level: "silent" }),
    engine: openTestEngine({ maxSequences: 1 }),
  });
  await decode.engineReady;
  tcp = new TcpSenderTransport({ connections: 1 });
}, 180_000);

afterAll(async () => {
  for (const c of toClose.splice(0).reverse()) await c();
  await decode?.close();
  await tcp?.close();
  await prefillEngine?.close();
});

describe("prefill role", () => {
  it("refuses a 1 MiB prompt at once (Plan and Prefill: prompt_too_long, the token limit) while a small Plan + Prefill sent with it completes", async () => {
    const { client } = await startPrefill();
    const big = "kv cache ".repeat(ONE_MIB / 9 + 1).slice(0, ONE_MIB);
    const small = sampleText(200, 4);
    const [bigPlan, bigPrefill, smallOutcome] = await Promise.all([
      refusal(client.plan({ prompt: big }, T)),
      refusal(client.prefill({ requestId: "big-1", prompt: big, decodeTarget: decode.grpcAddress }, T)),
      (async () => {
        const plan = await client.plan({ prompt: small }, T);
        const pre = await client.prefill({ requestId: "small-1", prompt: small, decodeTarget: decode.grpcAddress }, T);
        return { plan, pre };
      })(),
    ]);
    for (const e of [bigPlan, bigPrefill]) {
      expect(e.code).toBe("INVALID_ARGUMENT");
      expect(e.remote).toBe(true);
      expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: prefillEngine.contextSize - 1 });
      expect(e.message).toMatch(/cannot fit/);
    }
    const tokens = prefillEngine.tokenize(small);
    expect(smallOutcome.plan.promptTokens).toBe(tokens.length);
    expect(smallOutcome.plan.keys).toEqual(prefillEngine.chunkKeys(tokens));
    expect(smallOutcome.pre.promptTokens).toBe(tokens.length);
    expect(smallOutcome.pre.chunks).toBe(smallOutcome.plan.keys.length);
    expect(decode.receiver.hasRequest("small-1")).toBe(true);
    expect(decode.receiver.hasRequest("big-1")).toBe(false);
  }, 120_000);

  it("names the character limit in characters when a prompt is over it", async () => {
    const engine = await openTestEngine({ maxSequences: 1, maxPromptChars: 1000 });
    toClose.push(() => engine.close());
    const { client } = await startPrefill({ engine });
    const e = await refusal(client.plan({ prompt: "a".repeat(1001) }, T));
    expect(e.details).toEqual({ reason: "prompt_too_long", param: "prompt", limit: 1000 });
    expect(e.message).toMatch(/1001 characters/);
    expect((await client.plan({ prompt: "a".repeat(1000) }, T)).promptTokens).toBe(engine.tokenize("a".repeat(1000)).length);
    expect((await refusal(client.plan({ prompt: "" }, T))).details.param).toBe("prompt");
  }, 60_000);

  it("drain: refuses new Prefill calls (draining), answers Plan, and ends when the running Prefill ends", async () => {
    // The running Prefill pauses between its Alloc and its writes.
    const { role, client, lines } = await startPrefill({ faultDelayBeforeWriteMs: 1_500 });
    const health = new HealthClient(role.grpcAddress);
    toClose.push(() => health.close());
    expect(await health.check("", T)).toBe("SERVING");
    const running = client.prefill({ requestId: "drain-running", prompt: sampleText(100, 6), decodeTarget: decode.grpcAddress }, T);
    const deadline = Date.now() + 30_000;
    while (role.activeRequests() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(role.activeRequests()).toBe(1);

    let drainedAt = 0;
    const drained = role.drain(60_000).then((left) => {
      drainedAt = Date.now();
      return left;
    });
    const e = await refusal(client.prefill({ requestId: "drain-new", prompt: sampleText(20, 7), decodeTarget: decode.grpcAddress }, T));
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.details.reason).toBe("draining");
    expect((await client.plan({ prompt: "still planned" }, T)).promptTokens).toBeGreaterThan(0);
    expect(drainedAt).toBe(0);

    const res = await running;
    const ended = Date.now();
    expect(res.chunks).toBeGreaterThan(0);
    expect(await drained).toBe(0);
    expect(drainedAt - ended).toBeLessThan(1_000);
    // The gate's refusal went through the interceptors: counted, and logged with its request id.
    const failures = await role.metrics.registry.getSingleMetricAsString("kvbridge_failures_total");
    expect(failures).toMatch(/op="prefill",reason="unavailable"\} 1/);
    expect(lines.some((l) => l.includes('"rpc refused"') && l.includes('"requestId":"drain-new"'))).toBe(true);
    expect(lines.some((l) => l.includes("prefill node: drained, nothing in flight"))).toBe(true);
  }, 120_000);

  it("a metrics port already taken fails the start and releases the gRPC server and the sender", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    toClose.push(() => new Promise((r) => taken.close(r)));
    const metricsPort = (taken.address() as AddressInfo).port;
    const grpcPort = await freePort();
    const { logger, lines } = capture();
    const err = await refusal(
      startPrefillRole({
        listen: parseHostPort(`127.0.0.1:${grpcPort}`, "listen"),
        metricsListen: parseHostPort(`127.0.0.1:${metricsPort}`, "metrics"),
        engine: prefillEngine,
        transports: { tcp },
        transport: "tcp",
        logger,
      }),
    );
    expect(err.message).toMatch(new RegExp(String(metricsPort)));
    // The gRPC port is free again: the server that had bound it was shut down.
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.listen(grpcPort, "127.0.0.1", resolve);
    });
    await new Promise((r) => again.close(r));
    // The whole cleanup stack ran, the sender's release included (the closing line is released last).
    expect(lines.some((l) => l.includes('"prefill node closed"'))).toBe(true);
    expect(lines.some((l) => l.includes('"prefill node serving"'))).toBe(false);
  }, 60_000);
});
