// The TCP data plane over mutual TLS, on real loopback sockets with certificates made by openssl:
// byte-exact placement, and no byte from a peer without a certificate from the receiver's CA.
import { randomBytes } from "node:crypto";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { allocateHeapPool, type PoolMemory } from "../../src/memory/pool-memory.js";
import { loadTlsMaterial, type TlsMaterial } from "../../src/security/tls-material.js";
import { encodeRequestId, encodeWriteHeader } from "../../src/transport/tcp/tcp-frame.js";
import { TcpReceiverDataPlane } from "../../src/transport/tcp/tcp-receiver.js";
import { TcpSenderTransport, type TcpSenderOptions } from "../../src/transport/tcp/tcp-sender.js";
import type { TcpTlsOptions } from "../../src/transport/tcp/tcp-tls.js";
import type { SlotWrite } from "../../src/transport/transport.js";
import { TableWriteGate } from "../support/tcp-gate.js";
import { makeTestPki, type CertFiles, type TestPki } from "../support/tls-pki.js";

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.close());

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()!();
});

function material(files: CertFiles, serverName?: string): TlsMaterial {
  return loadTlsMaterial({ ...files, serverName })!;
}

async function receiver(tlsOpts: TcpTlsOptions | undefined, slots = 8, slotBytes = 1 << 20) {
  const memory = allocateHeapPool({ slots, slotBytes });
  closers.push(() => memory.close());
  const gate = new TableWriteGate(memory);
  const plane = await TcpReceiverDataPlane.listen({ host: "127.0.0.1", port: 0, memory, gate, tls: tlsOpts });
  closers.push(() => plane.close());
  return { memory, gate, plane };
}

function sender(opts: TcpSenderOptions): TcpSenderTransport {
  const t = new TcpSenderTransport(opts);
  closers.push(() => t.close());
  return t;
}

function slotWrite(gate: TableWriteGate, memory: PoolMemory, requestId: string, slot: number, data: Buffer): SlotWrite {
  return { slot, poolOffset: slot * memory.slotBytes, token: gate.allocate(requestId, slot, data.length), data };
}

function poolUntouched(memory: PoolMemory): boolean {
  for (let s = 0; s < memory.slots; s++) if (!memory.slotView(s).every((b) => b === 0)) return false;
  return true;
}

async function rejection(p: Promise<unknown>): Promise<KvbridgeError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvbridgeError);
  return err as KvbridgeError;
}

describe("TCP data plane over mutual TLS", () => {
  it("places concurrent requests byte-exact over several TLS connections, frames cut across TLS records", async () => {
    const { memory, gate, plane } = await receiver(material(pki.node), 8, 1 << 20);
    // 300_001-byte frames: every frame spans many 16 KiB TLS records, and frames of one chunk interleave.
    const channel = await sender({ tls: material(pki.node), connections: 3, frameBytes: 300_001 }).connect(plane.offer(), AbortSignal.timeout(10_000));
    // TLS 1.3: the sender is done with its handshake a moment before the receiver is.
    for (let i = 0; i < 100 && plane.connectionCount < 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect(plane.connectionCount).toBe(3);
    const sizes = [1, 65_537, 300_001, 1 << 20, 999_983, 16_385, 4_099, 777_777];
    const expected = sizes.map((n) => randomBytes(n));
    await Promise.all(
      [0, 1, 2, 3].map((r) =>
        channel.writeAll(`req-${r}`, [2 * r, 2 * r + 1].map((slot) => slotWrite(gate, memory, `req-${r}`, slot, expected[slot]!)), AbortSignal.timeout(20_000)),
      ),
    );
    expected.forEach((data, slot) => {
      expect(memory.slotView(slot).subarray(0, data.length).equals(data), `slot ${slot}`).toBe(true);
      expect(gate.allocation(slot)!.written).toBe(data.length);
    });
  });

  it("checks the receiver's name: a certificate without the dialed address is refused unless --tls-server-name names it", async () => {
    const { memory, gate, plane } = await receiver(material(pki.named));
    const refused = await rejection(sender({ tls: material(pki.node) }).connect(plane.offer(), AbortSignal.timeout(10_000)));
    expect(refused.code).toBe("UNAVAILABLE");
    expect(refused.message).toMatch(/tcp\+tls:\/\/127\.0\.0\.1:\d+: the TLS handshake failed \(.*(does not match|altnames).*\).*--tls-server-name/s);

    const channel = await sender({ tls: material(pki.node, "kvbridge.internal") }).connect(plane.offer(), AbortSignal.timeout(10_000));
    const data = randomBytes(50_000);
    await channel.writeAll("named", [slotWrite(gate, memory, "named", 0, data)], AbortSignal.timeout(10_000));
    expect(memory.slotView(0).subarray(0, data.length).equals(data)).toBe(true);
  });

  it("a plaintext sender gets no byte into the pool: the receiver drops it at the handshake and the write fails fast", async () => {
    const { memory, gate, plane } = await receiver(material(pki.node));
    const t0 = performance.now();
    // The TCP connect itself succeeds (the handshake is what fails), so the failure shows on the write.
    const err = await rejection(
      (async () => {
        const channel = await sender({}).connect(plane.offer(), AbortSignal.timeout(10_000));
        await channel.writeAll("plain", [slotWrite(gate, memory, "plain", 0, randomBytes(200_000))], AbortSignal.timeout(10_000));
      })(),
    );
    expect(err.code).toBe("UNAVAILABLE");
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(gate.allocation(0)!.written).toBe(0);
    expect(poolUntouched(memory)).toBe(true);
  });

  it("refuses a TLS peer without a client certificate, and one whose certificate is from another CA; nothing lands", async () => {
    const { memory, gate, plane } = await receiver(material(pki.node));
    const offer = plane.offer();
    if (offer.kind !== "tcp") throw new Error("expected a tcp offer");
    const token = gate.allocate("sneak", 0, 4);
    const frame = Buffer.concat([encodeWriteHeader(encodeRequestId("sneak"), 0, 0, 0, 4, token), Buffer.from([1, 2, 3, 4])]);
    const m = material(pki.node);
    const attempts: Array<{ label: string; opts: tls.ConnectionOptions }> = [
      { label: "no client certificate", opts: { ca: m.ca } },
      { label: "certificate from another CA", opts: { ca: m.ca, ...readPair(pki.rogue) } },
    ];
    for (const a of attempts) {
      const outcome = await new Promise<string>((resolve) => {
        const s = tls.connect({ host: offer.host, port: offer.port, ...a.opts });
        s.on("secureConnect", () => s.write(frame));
        s.on("data", () => resolve("answered"));
        s.on("error", (e) => resolve(`error: ${e.message}`));
        s.on("close", () => resolve("closed"));
        setTimeout(() => resolve("timeout"), 5_000).unref();
      });
      expect(outcome, a.label).toMatch(/^error: .*alert (certificate required|unknown ca)|^closed$/);
    }
    expect(gate.allocation(0)!.written).toBe(0);
    expect(poolUntouched(memory)).toBe(true);
    expect(plane.connectionCount).toBe(0);
  });

  it("a TLS sender at a plaintext receiver fails at connect, fast, saying the TLS handshake failed", async () => {
    const { plane } = await receiver(undefined);
    const t0 = performance.now();
    const err = await rejection(sender({ tls: material(pki.node) }).connect(plane.offer(), AbortSignal.timeout(10_000)));
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toMatch(/tcp\+tls:\/\/.*TLS handshake failed \(wrong version number\): the receiver does not speak TLS.*--tls-/);
  });

  it("a sender that does not trust the receiver's CA refuses to connect", async () => {
    const { plane } = await receiver(material(pki.node));
    const err = await rejection(sender({ tls: material(pki.wrongTrust) }).connect(plane.offer(), AbortSignal.timeout(10_000)));
    expect(err.message).toMatch(/self-signed certificate in certificate chain|unable to verify|unable to get local issuer/i);
  });
});

function readPair(files: CertFiles): { cert: Buffer; key: Buffer } {
  const m = loadTlsMaterial({ cert: files.cert, key: files.key, ca: files.ca })!;
  return { cert: m.cert, key: m.key };
}
