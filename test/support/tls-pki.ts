// A throwaway PKI for mTLS tests, made with the openssl CLI in a temporary folder: a CA, a server
// certificate for 127.0.0.1/localhost, client certificates (a node's and an operator's), and a
// client certificate from another CA that nobody trusts. EC P-256 keys: a whole PKI takes ~0.2 s.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface CertFiles {
  cert: string;
  key: string;
  /** The CA bundle this party trusts. */
  ca: string;
}

export interface TestPki {
  dir: string;
  /** CA certificate every kvbridge node and tool trusts. */
  ca: string;
  /** Certificate of another CA (trusted by nobody in the fleet). */
  otherCa: string;
  /** Server and client certificate of the nodes (CN kvbridge-node, SAN IP:127.0.0.1, DNS:localhost). */
  node: CertFiles;
  /** A client certificate for the operator (CN kvctl-admin). */
  admin: CertFiles;
  /** A client-and-server certificate with SAN DNS:kvbridge.internal only (no IP): for --tls-server-name. */
  named: CertFiles;
  /** A certificate from the other CA (CN rogue), trusting our CA: a stranger with a valid-looking cert. */
  rogue: CertFiles;
  /** Our certificate files but trusting only the other CA: a client that cannot verify our servers. */
  wrongTrust: CertFiles;
  /** The --tls-* arguments for `files`. */
  args(files: CertFiles, extra?: string[]): string[];
  /** KVBRIDGE_TLS_* variables for `files`. */
  env(files: CertFiles): NodeJS.ProcessEnv;
  close(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === "ENOENT") throw new Error("the openssl CLI is needed to make test certificates: apt-get install openssl");
    throw new Error(`openssl ${args.join(" ")} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

function makeCa(dir: string, name: string): void {
  openssl(
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    dir,
  );
}

function makeLeaf(dir: string, name: string, ca: string, san: string): void {
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`], dir);
  writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(tmpdir(), "kvbridge-pki-"));
  makeCa(dir, "kvbridge-ca");
  makeCa(dir, "other-ca");
  makeLeaf(dir, "kvbridge-node", "kvbridge-ca", "IP:127.0.0.1,DNS:localhost");
  makeLeaf(dir, "kvctl-admin", "kvbridge-ca", "DNS:kvctl-admin");
  makeLeaf(dir, "kvbridge-named", "kvbridge-ca", "DNS:kvbridge.internal");
  makeLeaf(dir, "rogue", "other-ca", "IP:127.0.0.1,DNS:localhost");
  const f = (n: string): string => path.join(dir, n);
  const ca = f("kvbridge-ca.pem");
  const otherCa = f("other-ca.pem");
  const files = (name: string, trust = ca): CertFiles => ({ cert: f(`${name}.pem`), key: f(`${name}.key`), ca: trust });
  return {
    dir,
    ca,
    otherCa,
    node: files("kvbridge-node"),
    admin: files("kvctl-admin"),
    named: files("kvbridge-named"),
    rogue: files("rogue"),
    wrongTrust: files("kvbridge-node", otherCa),
    args: (c, extra = []) => ["--tls-cert", c.cert, "--tls-key", c.key, "--tls-ca", c.ca, ...extra],
    env: (c) => ({ KVBRIDGE_TLS_CERT: c.cert, KVBRIDGE_TLS_KEY: c.key, KVBRIDGE_TLS_CA: c.ca }),
    close: () => rmSync(dir, { recursive: true, force: true }),
  };
}
