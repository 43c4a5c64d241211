// The pure parts of mTLS: loading and checking PEM files (openssl-made), the names read out of a
// certificate, the UCX policy under TLS, and the admin guard's decision with certificates.
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { certificateNames } from "../../src/security/certificate-names.js";
import { loadTlsMaterial, type TlsFiles } from "../../src/security/tls-material.js";
import { transportUnderTls } from "../../src/security/transport-policy.js";
import { checkAdminAccess } from "../../src/services/admin-service.js";
import { makeTestPki, type TestPki } from "../support/tls-pki.js";

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});
afterAll(() => pki.close());

function refusal(fn: () => unknown, code = "INVALID_ARGUMENT"): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KvbridgeError);
    expect((e as KvbridgeError).code).toBe(code);
    return (e as KvbridgeError).message;
  }
  throw new Error(`expected ${code}`);
}

describe("loading TLS material", () => {
  it("loads a certificate, its key and the CA, with the certificate's names and expiry", () => {
    const m = loadTlsMaterial({ ...pki.node, serverName: "kvbridge.internal" })!;
    expect(m.names).toEqual(["kvbridge-node", "localhost"]);
    expect(m.serverName).toBe("kvbridge.internal");
    expect(m.cert.toString()).toContain("BEGIN CERTIFICATE");
    expect(m.notAfter.getTime()).toBeGreaterThan(Date.now());
  });

  it("no files is plaintext; --tls-server-name alone is a mistake", () => {
    expect(loadTlsMaterial({})).toBeUndefined();
    expect(refusal(() => loadTlsMaterial({ serverName: "x" }))).toMatch(/--tls-server-name only applies with mutual TLS/);
  });

  it("names every missing flag with its variable", () => {
    expect(refusal(() => loadTlsMaterial({ cert: pki.node.cert }))).toBe(
      "mutual TLS needs --tls-cert, --tls-key and --tls-ca together; missing --tls-key (KVBRIDGE_TLS_KEY) and --tls-ca (KVBRIDGE_TLS_CA)",
    );
  });

  it("refuses unreadable, non-PEM and certificate-less files, a key of another certificate, and a certificate outside its validity", () => {
    const files = (over: Partial<TlsFiles>): TlsFiles => ({ ...pki.node, ...over });
    expect(refusal(() => loadTlsMaterial(files({ key: path.join(pki.dir, "absent.key") })))).toMatch(/cannot read --tls-key file .*absent\.key \(ENOENT\)/);
    const der = path.join(pki.dir, "not-pem.der");
    writeFileSync(der, Buffer.from([0x30, 0x82, 0x01, 0x0a]));
    expect(refusal(() => loadTlsMaterial(files({ ca: der })))).toMatch(/--tls-ca file .*not-pem\.der is not PEM/);
    // A key where a certificate should be: PEM, but no certificate in it.
    expect(refusal(() => loadTlsMaterial(files({ cert: pki.node.key })))).toMatch(/--tls-cert file .* holds no certificate/);
    expect(refusal(() => loadTlsMaterial(files({ key: pki.admin.key })))).toMatch(/is not the key of the certificate in .*kvbridge-node\.pem/);
    const later = new Date(Date.now() + 30 * 86_400_000);
    expect(refusal(() => loadTlsMaterial(pki.node, later))).toMatch(/certificate .*kvbridge-node\.pem expired on .*; renew it/);
    const earlier = new Date(Date.now() - 30 * 86_400_000);
    expect(refusal(() => loadTlsMaterial(pki.node, earlier))).toMatch(/is not valid before/);
  });
});

describe("certificate names", () => {
  it("reads subject CN, DNS and URI SANs (not IPs), from openssl-made certificates", () => {
    const x = new X509Certificate(loadTlsMaterial(pki.node)!.cert);
    expect(certificateNames({ subject: x.subject, subjectAltName: x.subjectAltName })).toEqual(["kvbridge-node", "localhost"]);
  });

  it("parses node's SAN string, quoted values included, and a PeerCertificate-style subject", () => {
    expect(
      certificateNames({
        subject: { CN: "svc", O: "acme" },
        subjectAltName: 'DNS:a.example, IP Address:10.0.0.1, URI:spiffe://cluster/ns/kv/sa/kvctl, DNS:"b,c.example", email:x@y',
      }),
    ).toEqual(["svc", "a.example", "spiffe://cluster/ns/kv/sa/kvctl", "b,c.example"]);
    expect(certificateNames({})).toEqual([]);
  });
});

describe("UCX under TLS", () => {
  it("plaintext nodes keep their choice; TLS nodes drop UCX from auto, refuse an explicit ucx, and keep it when allowed", () => {
    expect(transportUnderTls("auto", false, false)).toEqual({ transport: "auto" });
    expect(transportUnderTls("ucx", false, false)).toEqual({ transport: "ucx" });
    const auto = transportUnderTls("auto", true, false);
    expect(auto.transport).toBe("tcp");
    expect(auto.note).toMatch(/UCX carries no TLS/);
    expect(transportUnderTls("tcp", true, false)).toEqual({ transport: "tcp" });
    expect(refusal(() => transportUnderTls("ucx", true, false))).toMatch(/--allow-plaintext-ucx/);
    expect(transportUnderTls("ucx", true, true)).toEqual({ transport: "ucx" });
    expect(transportUnderTls("auto", true, true)).toEqual({ transport: "auto" });
  });
});

describe("admin guard with certificates", () => {
  const denied = (fn: () => void): string => refusal(fn, "PERMISSION_DENIED");
  const remote = "10.0.0.9:5";

  it("no token, no identities: a verified certificate admits from anywhere; no certificate falls back to loopback-only", () => {
    expect(() => checkAdminAccess("n", {}, { peer: remote, certificateNames: ["anyone"] })).not.toThrow();
    expect(() => checkAdminAccess("n", {}, { peer: remote, certificateNames: [] })).not.toThrow();
    expect(() => checkAdminAccess("n", {}, { peer: "127.0.0.1:5" })).not.toThrow();
    expect(denied(() => checkAdminAccess("n", {}, { peer: remote }))).toMatch(/loopback only/);
  });

  it("identities: only a certificate carrying one of the names admits, or the token", () => {
    const policy = { identities: ["kvctl-admin"], token: "s3cret" };
    expect(() => checkAdminAccess("n", policy, { peer: remote, certificateNames: ["x", "kvctl-admin"] })).not.toThrow();
    expect(() => checkAdminAccess("n", policy, { peer: remote, certificateNames: ["prefill-0"], token: "s3cret" })).not.toThrow();
    expect(denied(() => checkAdminAccess("n", policy, { peer: "127.0.0.1:5", certificateNames: ["prefill-0"] }))).toBe(
      "admin action refused: node n takes admin calls from certificates named kvctl-admin or with its admin token, and this caller's certificate is prefill-0; run kvctl with an admin certificate (--tls-cert/--tls-key) or pass --admin-token",
    );
    expect(denied(() => checkAdminAccess("n", { identities: ["kvctl-admin"] }, { peer: remote, certificateNames: ["kvctl-admin-2"] }))).toMatch(/is kvctl-admin-2/);
  });

  it("token and no identities: a certificate is not enough, the token is required", () => {
    expect(denied(() => checkAdminAccess("n", { token: "s3cret" }, { peer: remote, certificateNames: ["kvctl-admin"] }))).toMatch(/requires an admin token/);
    expect(denied(() => checkAdminAccess("n", { token: "s3cret" }, { peer: remote, certificateNames: ["kvctl-admin"], token: "wrong" }))).toMatch(/does not match/);
    expect(() => checkAdminAccess("n", { token: "s3cret" }, { peer: remote, certificateNames: ["kvctl-admin"], token: "s3cret" })).not.toThrow();
  });
});
