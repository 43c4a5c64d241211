// grpc.health.v1 of a decode node follows reality, checked over real gRPC: NOT_SERVING while its
// engine loads (and for good if loading fails), NOT_SERVING while its pool is stuck (and SERVING
// again once slots come back), NOT_SERVING once closed. kvctl status reports it with exit code 7.
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import path from "node:path";
import { service as healthService } from "grpc-health-check";
import { afterEach, describe, expect, it } from "vitest";
import { startDecodeNode, type DecodeNode, type DecodeNodeOptions } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { silentLogger } from "../../src/observability/logger.js";
import type { HelloResponse__Output } from "../../src/wire/generated/kvbridge/v1/HelloResponse.js";
import { callUnary } from "../../src/wire/unary.js";
import { nodeClients, type NodeClients } from "../support/node-clients.js";
import { repoRoot } from "../support/processes.js";

const HealthClient = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, "grpc.health.v1.Health");

const opened: Array<{ node: DecodeNode; clients: NodeClients; health: grpc.Client }> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    o.clients.close();
    o.health.close();
    await o.node.close();
  }
});

async function open(over: Partial<DecodeNodeOptions> = {}): Promise<{ node: DecodeNode; clients: NodeClients; health: () => Promise<string> }> {
  const node = await startDecodeNode({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: 4,
    slotBytes: 4096,
    leaseMs: 60_000,
    quarantineMs: 200,
    transport: "tcp",
    lockMemory: false,
    logger: silentLogger(),
    ...over,
  });
  const clients = nodeClients(node.grpcAddress);
  const health = new HealthClient(node.grpcAddress, grpc.credentials.createInsecure());
  opened.push({ node, clients, health });
  return {
    node,
    clients,
    health: async () => (await callUnary<object, { status: string }>(health, "Check", { service: "" }, { timeoutMs: 3_000 })).status,
  };
}

async function waitForHealth(probe: () => Promise<string>, want: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (last !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    last = await probe();
  }
  expect(last).toBe(want);
}

function alloc(clients: NodeClients, requestId: string, keys: string[], generation: number): Promise<unknown> {
  return clients.call(clients.receiver, "Alloc", { requestId, keys, sizes: keys.map(() => 100), batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation });
}

function kvctlStatus(addr: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "src/cli/kvctl.ts"), "status", addr, "--sample-ms", "0"], { cwd: repoRoot, stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

describe("decode node health", () => {
  it("is NOT_SERVING and refuses Allocs while the engine loads, then SERVING", async () => {
    let loaded!: () => void;
    const loading = new Promise<void>((r) => (loaded = r));
    const { node, clients, health } = await open({ loading });
    expect(await health()).toBe("NOT_SERVING");
    expect(node.health()).toEqual({ status: "NOT_SERVING", reason: "loading" });
    expect((await clients.stats()).serving).toBe(false);
    // While loading, the fingerprint is not final: Hello and Alloc are both refused as unavailable.
    await expect(clients.call(clients.receiver, "Hello", { protocolVersion: 1, fingerprint: "" })).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/not serving \(starting or draining\)/) });
    await expect(alloc(clients, "early", ["e-0"], 0)).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringMatching(/not serving \(starting or draining\)/) });
    loaded();
    await waitForHealth(health, "SERVING");
    const hello = await clients.call<HelloResponse__Output>(clients.receiver, "Hello", { protocolVersion: 1, fingerprint: "" });
    await alloc(clients, "on-time", ["e-0"], hello.generation);
    expect(node.health().reason).toBe("serving");
  });

  it("stays NOT_SERVING when the engine fails to load", async () => {
    let failed!: (e: Error) => void;
    const loading = new Promise<void>((_, reject) => (failed = reject));
    const { node, health } = await open({ loading });
    failed(new Error("model file is truncated"));
    await new Promise((r) => setTimeout(r, 100));
    expect(node.health()).toEqual({ status: "NOT_SERVING", reason: "load failed" });
    expect(await health()).toBe("NOT_SERVING");
  });

  it("turns NOT_SERVING when no slot can be had for stuckPoolMs, and SERVING again when slots come back", async () => {
    const { node, clients, health } = await open({ poolSlots: 2, stuckPoolMs: 300 });
    const hello = await clients.call<HelloResponse__Output>(clients.receiver, "Hello", { protocolVersion: 1, fingerprint: "" });
    await alloc(clients, "hog", ["h-0", "h-1"], hello.generation);
    // Full but not yet for long: still serving (a busy pool is not a broken one).
    expect(await health()).toBe("SERVING");
    await waitForHealth(health, "NOT_SERVING");
    expect(node.health().reason).toBe("pool stuck");
    const status = await kvctlStatus(node.grpcAddress);
    expect(status.code).toBe(7);
    expect(status.stdout).toMatch(/ NOT_SERVING  tcp\n/);
    expect(status.stdout).toContain("free 0  reserved 0  writing 2");
    // Aborting the hog quarantines its slots (200 ms), then they are free again.
    await clients.call(clients.receiver, "Abort", { requestId: "hog", reason: "test" });
    await waitForHealth(health, "SERVING");
    expect(node.health().reason).toBe("serving");
  });

  it("counts unpinned READY entries as room: a pool full of prefix cache stays SERVING", async () => {
    const { clients, health } = await open({ poolSlots: 2, stuckPoolMs: 100 });
    const hello = await clients.call<HelloResponse__Output>(clients.receiver, "Hello", { protocolVersion: 1, fingerprint: "" });
    await alloc(clients, "cache", ["c-0", "c-1"], hello.generation);
    await clients.call(clients.receiver, "Commit", { requestId: "cache" });
    await clients.call(clients.receiver, "Release", { requestId: "cache" });
    expect((await clients.stats()).slotsReady).toBe(2);
    await new Promise((r) => setTimeout(r, 400));
    expect(await health()).toBe("SERVING");
  });

  it("is NOT_SERVING once closing, and close is idempotent", async () => {
    const { node } = await open();
    await Promise.all([node.close(), node.close()]);
    expect(node.health()).toEqual({ status: "NOT_SERVING", reason: "closed" });
  });
});
