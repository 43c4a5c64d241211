// A decode node restarted on the same address while a sender's channel to it stays usable: the first
// Alloc carries the old generation, the node answers FAILED_PRECONDITION with the structured detail
// { reason: "receiver_restarted", generation }, and the sender handshakes again and succeeds, telling
// a restart apart by that detail (not by the message's words).
import { randomBytes } from "node:crypto";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { KvSender, type PushChunk } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { startDecodeProcess } from "../support/decode-process.js";
import { freePort } from "../support/free-port.js";

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const chunks = (prefix: string, n: number): PushChunk[] => Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, data: randomBytes(50_000) }));
const CALL = { timeoutMs: 10_000 };

describe("a sender whose receiver restarted on the same address", () => {
  it("is told so by a structured detail and handshakes again", async () => {
    const [grpcPort, dataPort] = [await freePort(), await freePort()];
    const args = ["--listen", `127.0.0.1:${grpcPort}`, "--data-listen", `127.0.0.1:${dataPort}`];
    const target = `127.0.0.1:${grpcPort}`;
    const logged: Array<Record<string, unknown>> = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    const tcp = new TcpSenderTransport();
    const sender = new KvSender({ fingerprint: "", transports: { tcp }, preference: "tcp", logger });
    cleanups.push(async () => {
      await sender.close();
      await tcp.close();
    });
    const rx = new ReceiverClient(target);
    cleanups.push(() => rx.close());

    const first = await startDecodeProcess(args);
    const before = await sender.push(target, "before", chunks("before", 2));
    await rx.release({ requestId: "before" }, CALL);
    await first.proc.stop();

    const second = await startDecodeProcess(args);
    cleanups.push(() => second.proc.stop());
    const { generation } = await rx.hello({ protocolVersion: 1, fingerprint: "" }, CALL);
    expect(generation).not.toBe(before.generation);

    // What the sender's cached handshake will meet: the restart named in the error's details.
    const stale = await rx
      .alloc({ requestId: "stale", keys: ["stale-0"], sizes: [1], isLastBatch: true, fingerprint: "", generation: before.generation }, CALL)
      .then(() => undefined, (e: unknown) => e);
    expect(stale).toBeInstanceOf(KvbridgeError);
    expect((stale as KvbridgeError).code).toBe("FAILED_PRECONDITION");
    expect((stale as KvbridgeError).details).toEqual({ reason: "receiver_restarted", generation });

    const after = await sender.push(target, "after", chunks("after", 3));
    expect(after.generation).toBe(generation);
    expect(after.commit.ready).toBe(3);
    // The retry was taken for the restart (its detail logged), not for an unreachable peer.
    expect(logged.filter((l) => l.msg === "receiver unreachable or restarted; handshaking again")).toEqual([
      expect.objectContaining({ requestId: "after", generation }),
    ]);
    await rx.release({ requestId: "after" }, CALL);
  });
});
