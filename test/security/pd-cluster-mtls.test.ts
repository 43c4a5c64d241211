// A prefill + decode + router cluster of real processes with mutual TLS everywhere (router -> prefill
// and decode gRPC, prefill -> decode gRPC and the TCP data plane), configured the way a Kubernetes
// deployment would be: through KVBRIDGE_TLS_* variables, one certificate naming the service
// (kvbridge.internal, no IP) and peers dialed by IP with KVBRIDGE_TLS_SERVER_NAME. The completion
// must equal a single process's greedy output, token for token.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaEngine } from "../../src/engine/llama-engine.js";
import { openTestEngine } from "../support/model-fixture.js";
import { startPdCluster, type PdCluster } from "../support/pd-cluster.js";
import { runCli, tlsNodeClients } from "../support/tls-cli.js";
import { makeTestPki, type TestPki } from "../support/tls-pki.js";

let pki: TestPki;
let cluster: PdCluster;
let reference: LlamaEngine;
const TLS_VARS = ["KVBRIDGE_TLS_CERT", "KVBRIDGE_TLS_KEY", "KVBRIDGE_TLS_CA", "KVBRIDGE_TLS_SERVER_NAME"] as const;

beforeAll(async () => {
  pki = makeTestPki();
  // The cluster's processes inherit this test process's environment (this file runs in its own).
  Object.assign(process.env, pki.env(pki.named), { KVBRIDGE_TLS_SERVER_NAME: "kvbridge.internal" });
  try {
    [cluster, reference] = await Promise.all([startPdCluster(), openTestEngine({ maxSequences: 1 })]);
  } finally {
    for (const v of TLS_VARS) delete process.env[v];
  }
});

afterAll(async () => {
  await reference?.close();
  await cluster?.stop();
  pki?.close();
});

describe("prefill + decode + router over mutual TLS", () => {
  it("serves a completion equal to a single process, with the KV pushed over the TLS TCP data plane", async () => {
    const prompt = "Once upon a time, in a cluster where every hop is authenticated,";
    const res = await fetch(`${cluster.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, max_tokens: 16 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: Array<{ text: string }>; usage: { prompt_tokens: number } };
    const expected = await reference.generateLocal({ tokens: reference.tokenize(prompt), maxTokens: 16 });
    expect(body.choices[0]!.text).toBe(expected.text);
    expect(body.usage.prompt_tokens).toBe(reference.tokenize(prompt).length);

    const pushed = JSON.parse(await cluster.prefill.waitForLine(/prefill pushed/, 5_000)) as { transport: string; bytes: number; chunks: number };
    // libucp may be on this machine and "auto" would take UCX: under TLS only TCP (with TLS) is used.
    expect(pushed.transport).toBe("tcp");
    expect(pushed.bytes).toBeGreaterThan(0);
    for (const [proc, what] of [
      [cluster.decode, /mutual TLS on gRPC and the TCP data plane/],
      [cluster.prefill, /mutual TLS on gRPC \(served and to decode nodes\)/],
      [cluster.router, /"serverName":"kvbridge\.internal".*mutual TLS to prefill and decode nodes/],
    ] as const) {
      await proc.waitForLine(what, 1_000);
    }
  });

  it("its nodes refuse a plaintext client and a certificate from another CA, and accept the fleet's certificate", async () => {
    const outcome = async (target: string, creds: Parameters<typeof tlsNodeClients>[1]): Promise<string> => {
      const c = tlsNodeClients(target, creds);
      try {
        await c.stats();
        return "OK";
      } catch (err) {
        const e = err as { code: string; message: string };
        return `${e.code}: ${e.message}`;
      } finally {
        c.close();
      }
    };
    const fleet = { ...pki.named, serverName: "kvbridge.internal" };
    // rogue trusts our CA and expects the right name, so only the node's refusal can stop it.
    const rogue = { ...pki.rogue, ca: pki.ca, serverName: "kvbridge.internal" };
    expect(await outcome(cluster.decodeGrpc, fleet)).toBe("OK");
    // Connected and authenticated: the prefill node serves Inspect too (kvctl status works on it).
    expect(await outcome(cluster.prefillGrpc, fleet)).toBe("OK");
    for (const target of [cluster.decodeGrpc, cluster.prefillGrpc]) {
      expect(await outcome(target, grpc.credentials.createInsecure()), `plaintext to ${target}`).toMatch(/^UNAVAILABLE: /);
      expect(await outcome(target, rogue), `foreign CA to ${target}`).toMatch(/^UNAVAILABLE: /);
    }
  });

  it("a client dialing by IP without --tls-server-name refuses the service-named certificate, and kvctl says what to pass", async () => {
    const without = await runCli("kvctl.ts", ["status", cluster.decodeGrpc, "--sample-ms", "0", ...pki.args(pki.named)]);
    expect(without.code).toBe(3);
    expect(without.stderr).toMatch(/is not trusted: its certificate does not name 127\.0\.0\.1; .*--tls-server-name/);
    const withName = await runCli("kvctl.ts", ["status", cluster.decodeGrpc, "--sample-ms", "0", ...pki.args(pki.named, ["--tls-server-name", "kvbridge.internal"])]);
    expect(withName.code, withName.stderr).toBe(0);
  });
});
