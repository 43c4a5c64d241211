// kill -9 of either end of a raw transfer, over TCP and over UCX, between real processes: a sender
// process dying mid-transfer strands nothing on the decode node; a decode node dying mid-transfer
// fails the sender's pushes clearly and fast, and a decode node restarted on the same address starts
// clean (new generation) and serves the same sender again.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import type { SenderTransport, TransportKind } from "../../src/transport/transport.js";
import { ucxAvailability, UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { codeOf, settle, type Outcome } from "../support/fault-outcome.js";
import { startFaultSender, type FaultSenderConfig, type FaultSenderProcess } from "../support/fault-sender.js";
import { atBaseline, nodeClients, type NodeClients } from "../support/node-clients.js";
import { freePort } from "../support/free-port.js";

const ucx = ucxAvailability();
const TRANSPORTS: TransportKind[] = ucx.available ? ["tcp", "ucx"] : ["tcp"];
const LEASE_MS = 1_500;
const HOLD_MS = 2_000;
const QUARANTINE_MS = 300;
const NODE_ARGS = ["--lease-ms", String(LEASE_MS), "--quarantine-ms", String(QUARANTINE_MS), "--hold-ms", String(HOLD_MS), "--pool-slots", "96"];

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function decodeNode(extra: string[] = []): Promise<{ d: DecodeProcess; c: NodeClients }> {
  const d = await startDecodeProcess([...NODE_ARGS, ...extra]);
  const c = nodeClients(d.grpc);
  cleanups.push(async () => {
    c.close();
    await d.proc.stop();
  });
  return { d, c };
}

async function sender(kind: TransportKind, run: string, target: string, extra: Partial<FaultSenderConfig> = {}): Promise<FaultSenderProcess> {
  const s = await startFaultSender({ target, run, idPrefix: `${run}-${kind}`, transport: kind, concurrency: 4, chunksMin: 8, chunksMax: 8, chunkBytes: 256 * 1024, prefixes: 2, prefixChunks: 2, ...extra });
  cleanups.push(() => s.proc.kill9());
  return s;
}


function inProcessSender(kind: TransportKind): KvSender {
  const transports: Partial<Record<TransportKind, SenderTransport>> = { tcp: new TcpSenderTransport() };
  if (kind === "ucx") transports.ucx = UcxSenderTransport.create();
  const s = new KvSender({ fingerprint: "", transports, preference: kind });
  cleanups.push(async () => {
    await s.close();
    for (const t of Object.values(transports)) await t.close();
  });
  return s;
}

const chunks = (prefix: string, n: number, bytes: number): PushChunk[] => Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, data: randomBytes(bytes) }));

describe("a sender process killed with SIGKILL", () => {
  for (const kind of TRANSPORTS) {
    it(`mid-transfer over ${kind}: its allocations are aborted or expire, its pins go, the pool returns to baseline and the node keeps serving`, async () => {
      const { d, c } = await decodeNode();
      const before = await c.stats();
      // A 400 ms pause between each Alloc and its writes: whenever the kill lands, some of the four
      // pushes in flight hold allocations (UCX pushes are otherwise over in a few milliseconds), even
      // on a loaded machine where reading the stats and delivering the kill take a while.
      const s = await sender(kind, `kill-mid-${kind}`, d.grpc, { faultDelayMs: 400 });
      await s.waitFor((x) => x.ok >= 3 && x.transports.includes(kind));
      // Pushes in flight: WRITING slots on the node.
      await c.waitForStats((st) => st.slotsWriting > 0, 10_000);
      await s.proc.kill9();
      const st = await c.waitForStats(atBaseline, LEASE_MS + HOLD_MS + QUARANTINE_MS + 10_000);
      expect(atBaseline(st)).toBe(true);
      // Released by the fault paths (a lost data connection, the lease), not by the dead sender.
      expect(Number(st.requestsAborted) + Number(st.leasesExpired)).toBeGreaterThan(Number(before.requestsAborted) + Number(before.leasesExpired));
      const r = await inProcessSender(kind).push(d.grpc, `after-kill-${kind}`, chunks(`after-kill-${kind}`, 3, 100_000));
      expect(r.commit.ready).toBe(3);
      await c.receiver.release({ requestId: `after-kill-${kind}` }, { timeoutMs: 10_000 });
      expect(atBaseline(await c.waitForStats(atBaseline))).toBe(true);
    });
  }

  it("while it holds WRITING allocations and has written nothing: the lease, and only the lease, frees them", async () => {
    const { d, c } = await decodeNode();
    const before = await c.stats();
    const s = await sender("tcp", "kill-allocated", d.grpc, { requests: 1, concurrency: 1, faultDelayMs: 60_000 });
    const busy = await c.waitForStats((st) => st.slotsWriting > 0, 10_000);
    expect(busy.slotsWriting).toBe(8);
    await s.proc.kill9();
    const killedAt = performance.now();
    const st = await c.waitForStats(atBaseline, LEASE_MS + 10_000);
    expect(atBaseline(st)).toBe(true);
    // The sender renewed the lease while alive; after its death the lease runs out in LEASE_MS.
    expect(performance.now() - killedAt).toBeGreaterThanOrEqual(LEASE_MS / 2);
    expect(Number(st.leasesExpired)).toBe(Number(before.leasesExpired) + 1);
    expect(Number(st.requestsAborted)).toBe(Number(before.requestsAborted));
  });
});

describe("a decode node killed with SIGKILL mid-transfer", () => {
  for (const kind of TRANSPORTS) {
    it(`over ${kind}: every push in flight fails clearly within a bound; restarted on the same address it starts clean and the same sender succeeds`, async () => {
      const [grpcPort, dataPort] = [await freePort(), await freePort()];
      const addr = ["--listen", `127.0.0.1:${grpcPort}`, "--data-listen", `127.0.0.1:${dataPort}`];
      const first = await startDecodeProcess([...NODE_ARGS, ...addr]);
      cleanups.push(() => first.proc.kill9());
      const c1 = nodeClients(first.grpc);
      cleanups.push(() => c1.close());
      const s = inProcessSender(kind);
      const target = `127.0.0.1:${grpcPort}`;
      const warm = await s.push(target, `warm-${kind}`, chunks(`warm-${kind}`, 2, 10_000));
      expect(warm.transport).toBe(kind);

      // Three workers push back to back until one of their pushes fails.
      const failures: Array<Outcome<unknown> & { settledAt: number }> = [];
      let stop = false;
      const worker = async (w: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const id = `dk-${kind}-${w}-${i}`;
          // Pushed and consumed (Release), as a decode node would: the pool never fills up.
          const o = await settle(s.push(target, id, chunks(id, 8, 256 * 1024)).then(() => c1.receiver.release({ requestId: id }, { timeoutMs: 10_000 })));
          if (!o.ok) {
            failures.push({ ...o, settledAt: performance.now() });
            return;
          }
        }
      };
      const workers = [0, 1, 2].map(worker);
      await c1.waitForStats((st) => st.slotsWriting > 0 && Number(st.requestsCommitted) >= 3, 20_000);
      await first.proc.kill9();
      const killedAt = performance.now();
      stop = true;
      await Promise.all(workers);
      expect(failures.length).toBeGreaterThanOrEqual(1);
      for (const f of failures) {
        expect(["UNAVAILABLE", "DEADLINE_EXCEEDED"]).toContain(codeOf(f));
        // Fast (tens of ms here): the dead node's sockets are closed by its kernel, so the gRPC
        // calls and TCP data connections fail at once and the sender's one retry meets a refused
        // connect. UCX puts into a node's UCX-allocated pool complete into the dead segment; the
        // Commit after them is what fails. Never the 10 s RPC deadline, never a hang.
        expect(f.settledAt - killedAt).toBeLessThan(5_000);
      }

      const second = await startDecodeProcess([...NODE_ARGS, ...addr]);
      cleanups.push(() => second.proc.stop());
      const c2 = nodeClients(second.grpc);
      cleanups.push(() => c2.close());
      const clean = await c2.stats();
      expect(clean.generation).not.toBe(warm.generation);
      expect(atBaseline(clean)).toBe(true);
      expect(clean.entries).toBe(0);
      expect(Number(clean.requestsCommitted)).toBe(0);

      const again = await s.push(target, `restarted-${kind}`, chunks(`restarted-${kind}`, 3, 100_000));
      expect(again.generation).not.toBe(warm.generation);
      expect(again.commit.ready).toBe(3);
      expect(again.transport).toBe(kind);
      await c2.receiver.release({ requestId: `restarted-${kind}` }, { timeoutMs: 10_000 });
      expect(atBaseline(await c2.waitForStats(atBaseline))).toBe(true);
    });
  }
});
