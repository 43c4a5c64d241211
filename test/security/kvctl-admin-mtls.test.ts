// kvctl's admin actions against real decode processes with mutual TLS: the client certificate is the
// credential. Without one, with one from another CA, or with one the node does not name in
// --admin-identity, evict and abort are refused (exit 4) and change nothing; with the right one they
// act. A token-guarded TLS node still wants its token; a TLS node with neither trusts its CA.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcChannelCredentials } from "../../src/security/grpc-credentials.js";
import { loadTlsMaterial } from "../../src/security/tls-material.js";
import { KvSender } from "../../src/transfer/sender.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { spawnKvbridge } from "../support/processes.js";
import { runCli, tlsNodeClients, type TlsInspect } from "../support/tls-cli.js";
import { makeTestPki, type CertFiles, type TestPki } from "../support/tls-pki.js";

let pki: TestPki;
/** --admin-identity kvctl-admin */
let named: DecodeProcess;
/** --admin-token s3cret, no identities */
let tokened: DecodeProcess;
/** neither: any certificate from the CA */
let open: DecodeProcess;
let inspect: TlsInspect;

beforeAll(async () => {
  pki = makeTestPki();
  const tls = pki.args(pki.node);
  [named, tokened, open] = await Promise.all([
    // A lease longer than the suite: the request allocated below must still be there for the abort test.
    startDecodeProcess([...tls, "--admin-identity", "kvctl-admin, ops@example", "--lease-ms", "600000"]),
    startDecodeProcess([...tls, "--admin-token", "s3cret"]),
    startDecodeProcess(tls),
  ]);
  inspect = tlsNodeClients(named.grpc, pki.node);
  // Known state on `named`, built over mTLS through the library: two released chunks (READY,
  // unpinned: evictable) and one request allocated and never written (abortable).
  const m = loadTlsMaterial(pki.node)!;
  const tcp = new TcpSenderTransport({ connections: 1, tls: m });
  const sender = new KvSender({ fingerprint: "", transports: { tcp }, credentials: grpcChannelCredentials(m) });
  try {
    await sender.push(named.grpc, "cached", [
      { key: "c-0", data: Buffer.alloc(1000, 1) },
      { key: "c-1", data: Buffer.alloc(2000, 2) },
    ]);
    await inspect.receiver.release({ requestId: "cached" }, { timeoutMs: 10_000 });
    const hello = await inspect.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
    await inspect.receiver.alloc({ requestId: "held", keys: ["h-0"], sizes: [3000], batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, { timeoutMs: 10_000 });
  } finally {
    await sender.close();
    await tcp.close();
  }
});

afterAll(async () => {
  inspect?.close();
  await Promise.all([named?.proc.stop(), tokened?.proc.stop(), open?.proc.stop()]);
  pki?.close();
});

function kvctl(args: string[], cert: CertFiles | null, extra: string[] = []) {
  return runCli("kvctl.ts", [...args, ...(cert ? pki.args(cert) : []), ...extra]);
}

describe("kvctl admin actions over mutual TLS", () => {
  it("read-only commands work with any certificate from the node's CA", async () => {
    const run = await kvctl(["status", named.grpc, "--json", "--sample-ms", "0"], pki.node);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { nodes: Array<{ address: string; health: string }> };
    expect(report.nodes[0]!.address).toBe(named.grpc);
  });

  it("evict with a certificate the node does not name in --admin-identity: refused (exit 4), nothing evicted", async () => {
    const before = await inspect.stats();
    const run = await kvctl(["evict", named.grpc, "--unpinned"], pki.node);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/admin action refused: node \S+ takes admin calls from certificates named kvctl-admin, ops@example, and this caller's certificate is kvbridge-node, localhost; run kvctl with an admin certificate/);
    expect((await inspect.stats()).entries).toBe(before.entries);
  });

  it("evict and abort without any client certificate: refused (exit 4) at the handshake, saying mutual TLS is required", async () => {
    for (const args of [["evict", named.grpc, "--unpinned"], ["abort", named.grpc, "--request", "held"]]) {
      const run = await kvctl(args, null);
      expect(run.code, args[0]).toBe(4);
      expect(run.stderr).toMatch(/requires mutual TLS and this client is plaintext; pass --tls-cert, --tls-key and --tls-ca/);
    }
  });

  it("evict with a certificate from another CA: refused (exit 4), the message says the certificate was refused", async () => {
    const run = await kvctl(["evict", named.grpc, "--unpinned"], pki.rogue);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/refused this client's certificate/);
  });

  it("abort with a non-admin certificate is refused and the request stays; with the admin certificate it is aborted", async () => {
    const denied = await kvctl(["abort", named.grpc, "--request", "held"], pki.node);
    expect(denied.code).toBe(4);
    expect((await inspect.stats()).activeRequests).toBe(1);
    const ok = await kvctl(["abort", named.grpc, "--request", "held", "--json"], pki.admin);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ request_id: "held", slots_released: 1 });
    expect((await inspect.stats()).activeRequests).toBe(0);
  });

  it("evict with the admin certificate evicts the unpinned READY entries", async () => {
    const before = await inspect.stats();
    expect(before.entries).toBeGreaterThanOrEqual(2);
    const run = await kvctl(["evict", named.grpc, "--unpinned", "--json"], pki.admin);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ evicted: 2 });
    expect((await inspect.stats()).entries).toBe(before.entries - 2);
  });

  it("a TLS node with an admin token still requires the token: a certificate alone is refused, certificate + token passes the guard", async () => {
    const noToken = await kvctl(["abort", tokened.grpc, "--request", "none"], pki.admin);
    expect(noToken.code).toBe(4);
    expect(noToken.stderr).toMatch(/requires an admin token/);
    // Past the guard, the unknown request is NOT_FOUND (exit 5): the guard let the call through.
    const withToken = await kvctl(["abort", tokened.grpc, "--request", "none"], pki.admin, ["--admin-token", "s3cret"]);
    expect(withToken.code, withToken.stderr).toBe(5);
  });

  it("a TLS node with neither token nor --admin-identity admits any certificate its CA signed", async () => {
    const run = await kvctl(["abort", open.grpc, "--request", "none"], pki.node);
    expect(run.code, run.stderr).toBe(5);
    const plain = await kvctl(["abort", open.grpc, "--request", "none"], null);
    expect(plain.code).toBe(4);
  });

  it("--admin-identity without TLS refuses to start: certificate names need mutual TLS", async () => {
    const proc = spawnKvbridge(["decode", "--no-engine", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--admin-identity", "kvctl-admin"]);
    const line = await proc.waitForLine(/kvbridge: /, 30_000);
    expect(line).toMatch(/--admin-identity names client certificates, which only mutual TLS has/);
    expect((await proc.stop()).code).toBe(1);
  });
});
