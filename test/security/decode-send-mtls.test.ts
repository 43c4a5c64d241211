// A real `kvbridge decode` with mutual TLS and real `kvbridge send` processes: byte-exact verified
// transfers over mTLS (gRPC and the TCP data plane), and every way of getting it wrong refused fast
// with a message that says which side is wrong and what to do, and nothing written to the pool.
import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { ucxAvailability } from "../../src/transport/ucx/ucx-availability.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { spawnKvbridge } from "../support/processes.js";
import { runCli, tlsNodeClients, type TlsInspect } from "../support/tls-cli.js";
import { makeTestPki, type TestPki } from "../support/tls-pki.js";

const UCX_HERE = ucxAvailability().available;

let pki: TestPki;
let tlsNode: DecodeProcess;
let plainNode: DecodeProcess;
let inspect: TlsInspect;

beforeAll(async () => {
  pki = makeTestPki();
  [tlsNode, plainNode] = await Promise.all([startDecodeProcess(pki.args(pki.node)), startDecodeProcess(["--transport", "tcp"])]);
  inspect = tlsNodeClients(tlsNode.grpc, pki.node);
});

afterAll(async () => {
  inspect?.close();
  await Promise.all([tlsNode?.proc.stop(), plainNode?.proc.stop()]);
  pki?.close();
});

/** `kvbridge send` to `target` with a small load; extra args last. */
function send(target: string, extra: string[]) {
  return runCli("kvbridge.ts", ["send", "--to", target, "--requests", "4", "--chunks", "3", "--chunk-bytes", "100KiB", "--concurrency", "2", "--json", ...extra]);
}

/** Nothing of a refused client reached the pool. */
async function expectPoolUntouched(before: { bytesReceived: number; requestsCommitted: number }): Promise<void> {
  const s = await inspect.stats();
  expect(s.bytesReceived).toBe(before.bytesReceived);
  expect(s.requestsCommitted).toBe(before.requestsCommitted);
  expect(s.activeRequests).toBe(0);
  expect(s.slotsWriting).toBe(0);
}

describe("decode + kvbridge send over mutual TLS", () => {
  it("moves every chunk byte-exact over mTLS (sha256 of each chunk checked on the node) on the TLS TCP data plane", async () => {
    const before = await inspect.stats();
    const run = await runCli("kvbridge.ts", [
      "send", "--to", tlsNode.grpc, "--requests", "12", "--chunks", "4", "--chunk-bytes", "200KiB", "--concurrency", "3", "--shared-prefix", "0.25", "--json",
      ...pki.args(pki.node),
    ]);
    expect(run.code, run.stderr).toBe(0);
    const res = JSON.parse(run.stdout) as { requests_ok: number; requests_failed: number; chunks_verified: number; transport: string; bytes: number; dedup_hits: number };
    expect(res.requests_ok).toBe(12);
    expect(res.requests_failed).toBe(0);
    expect(res.chunks_verified).toBe(48);
    // UCX is available on this machine and would win under "auto"; with TLS only TCP is used.
    expect(res.transport).toBe("tcp");
    // One shared chunk per request: sent once, deduped for the other 11.
    expect(res.dedup_hits).toBe(11);
    expect(res.bytes).toBe((48 - 11) * 200 * 1024);
    const after = await inspect.stats();
    expect(after.bytesReceived - before.bytesReceived).toBe(res.bytes);
    expect(after.activeRequests).toBe(0);
    expect(after.slotsWriting).toBe(0);
  });

  it("a TLS node offers only the TLS TCP data plane by default, and says why", async () => {
    const serving = JSON.parse(await tlsNode.proc.waitForLine(/decode node serving/)) as { offers: string[] };
    expect(serving.offers).toEqual([expect.stringMatching(/^tcp:\/\/127\.0\.0\.1:\d+$/)]);
    await tlsNode.proc.waitForLine(/data plane is TLS over TCP only \(UCX carries no TLS; --allow-plaintext-ucx/, 1_000);
    await tlsNode.proc.waitForLine(/"tls":true.*tcp data plane listening|tcp data plane listening.*"tls":true/, 1_000);
  });

  it.skipIf(!UCX_HERE)("with --allow-plaintext-ucx a TLS node offers UCX too (needs libucp on this machine)", async () => {
    const node = await startDecodeProcess([...pki.args(pki.node), "--allow-plaintext-ucx"]);
    try {
      const serving = JSON.parse(await node.proc.waitForLine(/decode node serving/)) as { offers: string[] };
      expect(serving.offers).toContain("ucx");
      await node.proc.waitForLine(/KV bytes sent over UCX are not encrypted/, 1_000);
    } finally {
      await node.proc.stop();
    }
  });

  it("--transport ucx with TLS and without --allow-plaintext-ucx refuses to start, saying what to add", async () => {
    const proc = spawnKvbridge(["decode", "--no-engine", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--transport", "ucx", ...pki.args(pki.node)]);
    const line = await proc.waitForLine(/kvbridge: /, 30_000);
    expect(line).toMatch(/--transport ucx moves KV bytes without TLS.*--allow-plaintext-ucx.*--transport tcp/);
    expect((await proc.stop()).code).toBe(1);
  });

  it("a plaintext kvbridge send is refused within seconds: it says the node requires mutual TLS; nothing lands", async () => {
    const before = await inspect.stats();
    const run = await send(tlsNode.grpc, []);
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(15_000);
    expect(run.stderr).toMatch(/kvbridge send: 127\.0\.0\.1:\d+ requires mutual TLS and this client is plaintext; pass --tls-cert, --tls-key and --tls-ca/);
    const res = JSON.parse(run.stdout) as { requests_ok: number; tls_diagnosis: string };
    expect(res.requests_ok).toBe(0);
    expect(res.tls_diagnosis).toMatch(/requires mutual TLS/);
    await expectPoolUntouched(before);
  });

  it("a client certificate from another CA is refused; the message says so; nothing lands", async () => {
    const before = await inspect.stats();
    const run = await send(tlsNode.grpc, pki.args(pki.rogue));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/refused this client's certificate.*signed by a CA in the node's --tls-ca/);
    await expectPoolUntouched(before);
  });

  it("a TLS client without any client certificate is refused by the node", async () => {
    const before = await inspect.stats();
    const noCert = tlsNodeClients(tlsNode.grpc, grpc.credentials.createSsl(readFileSync(pki.ca)));
    try {
      const err = await noCert.receiver.hello({ protocolVersion: 1, fingerprint: "", transports: ["tcp"], senderId: "no-cert" }, { timeoutMs: 5_000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KvbridgeError);
      expect((err as KvbridgeError).code).toBe("UNAVAILABLE");
      expect((err as KvbridgeError).message).toMatch(/certificate required|Failed to connect|Connection dropped/);
    } finally {
      noCert.close();
    }
    await expectPoolUntouched(before);
  });

  it("a client that does not trust the node's CA refuses the node, saying to fix --tls-ca", async () => {
    const run = await send(tlsNode.grpc, pki.args(pki.wrongTrust));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/is not trusted: its certificate does not verify against --tls-ca/);
  });

  it("a TLS kvbridge send at a plaintext node fails fast, saying the node does not speak TLS", async () => {
    const run = await send(plainNode.grpc, pki.args(pki.node));
    expect(run.code).toBe(1);
    expect(run.ms).toBeLessThan(15_000);
    expect(run.stderr).toMatch(/does not speak TLS but this client has --tls-cert\/--tls-key\/--tls-ca/);
  });

  it("half a TLS configuration, a missing file or a key of another certificate stops the process at start with what to fix", async () => {
    const partial = await send(tlsNode.grpc, ["--tls-cert", pki.node.cert, "--tls-ca", pki.ca]);
    expect(partial.code).toBe(1);
    expect(partial.stderr).toMatch(/mutual TLS needs --tls-cert, --tls-key and --tls-ca together; missing --tls-key \(KVBRIDGE_TLS_KEY\)/);
    const missing = await send(tlsNode.grpc, pki.args({ ...pki.node, ca: `${pki.dir}/nope.pem` }));
    expect(missing.stderr).toMatch(/cannot read --tls-ca file .*nope\.pem \(ENOENT\)/);
    const mismatched = await send(tlsNode.grpc, pki.args({ ...pki.node, key: pki.admin.key }));
    expect(mismatched.stderr).toMatch(/--tls-key file .*kvctl-admin\.key is not the key of the certificate in .*kvbridge-node\.pem/);
  });
});
