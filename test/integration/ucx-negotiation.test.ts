// Transport negotiation between real processes: UCX (shared memory, tcp) when both ends have it,
// TCP when UCX fails for a peer, and a receiver restarted under the same address (new generation).
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { ucxAvailability, UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { atBaseline, nodeClients } from "../support/node-clients.js";
import { spawnKvbridge } from "../support/processes.js";
import { freePort } from "../support/free-port.js";

const ucx = ucxAvailability();
const running: DecodeProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.proc.stop()));
});


async function sendJson(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: Record<string, unknown>; lines: string[] }> {
  const p = spawnKvbridge(["send", ...args, "--json", "--log-level", "info"], env);
  const code = await new Promise<number | null>((r) => p.child.on("exit", (c) => r(c)));
  const line = p.lines.find((l) => l.startsWith('{"bytes"'));
  return { code, out: line ? (JSON.parse(line) as Record<string, unknown>) : {}, lines: p.lines };
}

describe.skipIf(!ucx.available)(`UCX data plane between processes (libucp ${ucx.available ? ucx.version : "missing"})`, () => {
  for (const [name, tls, expected] of [
    ["shared memory", "posix,cma,self", "ucx"],
    // UCX's tcp would emulate puts: the node does not offer UCX, kvbridge's TCP data plane is used.
    ["tcp", "tcp,self", "tcp"],
  ] as const) {
    it(`moves shared-prefix requests byte-exact over UCX_TLS=${tls} (${name}: ${expected} data plane) and returns the pool to baseline`, async () => {
      const env = { UCX_TLS: tls };
      const d = await startDecodeProcess(["--pool-slots", "128"], env);
      running.push(d);
      const r = await sendJson(["--to", d.grpc, "--transport", "auto", "--requests", "40", "--chunks", "8", "--chunk-bytes", "200KiB", "--concurrency", "6", "--shared-prefix", "0.5"], env);
      expect(r.code).toBe(0);
      expect(r.out.transport).toBe(expected);
      expect(r.out.requests_ok).toBe(40);
      expect(r.out.chunks_verified).toBe(320);
      expect(r.out.dedup_hits as number).toBeGreaterThan(0);
      const c = nodeClients(d.grpc);
      expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
      c.close();
    });
  }

  it("falls back to TCP for a peer whose UCX cannot be reached, and the requests still succeed", async () => {
    // The receiver offers UCX over shared memory, the sender's UCX speaks only tcp: no common UCX transport.
    const d = await startDecodeProcess([], { UCX_TLS: "posix,cma,self" });
    running.push(d);
    const r = await sendJson(["--to", d.grpc, "--transport", "auto", "--requests", "6", "--chunks", "4", "--chunk-bytes", "64KiB"], { UCX_TLS: "tcp,self" });
    expect(r.code).toBe(0);
    expect(r.out.transport).toBe("tcp");
    expect(r.out.chunks_verified).toBe(24);
    expect(r.lines.some((l) => /falling back to TCP/.test(l))).toBe(true);
  });

  it("notices a receiver restarted on the same address (new generation), handshakes again and succeeds; in-flight requests to the dead one fail clearly", async () => {
    const [grpcPort, dataPort] = [await freePort(), await freePort()];
    const args = ["--listen", `127.0.0.1:${grpcPort}`, "--data-listen", `127.0.0.1:${dataPort}`];
    const first = await startDecodeProcess(args);
    const tcp = new TcpSenderTransport();
    const ucxT = UcxSenderTransport.create();
    const sender = new KvSender({ fingerprint: "", transports: { ucx: ucxT, tcp } });
    const slow = new KvSender({ fingerprint: "", transports: { ucx: ucxT, tcp }, faultDelayBeforeWriteMs: 3_000 });
    const target = `127.0.0.1:${grpcPort}`;
    const chunk = (k: string) => [{ key: k, data: Buffer.alloc(100_000, 5) }];
    try {
      const a = await sender.push(target, "gen-a", chunk("gen-a-0"));
      expect(a.transport).toBe("ucx");
      const inflight = slow.push(target, "gen-inflight", chunk("gen-inflight-0"));
      inflight.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
      await first.proc.kill9();
      const t0 = Date.now();
      const err = await inflight.then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(KvbridgeError);
      expect(["UNAVAILABLE", "DEADLINE_EXCEEDED", "NOT_FOUND", "FAILED_PRECONDITION"]).toContain((err as KvbridgeError).code);
      expect(Date.now() - t0).toBeLessThan(20_000);
      const second = await startDecodeProcess(args);
      running.push(second);
      const b = await sender.push(target, "gen-b", chunk("gen-b-0"));
      expect(b.generation).not.toBe(a.generation);
      expect(b.commit.ready).toBe(1);
      const c = nodeClients(second.grpc);
      await c.receiver.release({ requestId: "gen-b" }, { timeoutMs: c.timeoutMs });
      expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
      c.close();
    } finally {
      await sender.close();
      await slow.close();
      await ucxT.close();
      await tcp.close();
    }
  });
});

describe.skipIf(ucx.available)("UCX data plane: libucp is not installed on this machine", () => {
  it("reports UCX unavailable with a reason instead of crashing", () => {
    expect(ucx.available).toBe(false);
    expect((ucx as { reason: string }).reason.length).toBeGreaterThan(0);
  });
});
