// The PEM files of a node's mutual TLS (its certificate, its key, the CA its peers are checked
// against), read and checked once at startup so that a wrong path, a key that belongs to another
// certificate or an expired certificate stops the process with one clear line instead of failing
// every handshake later.
import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { certificateNames } from "./certificate-names.js";

/** Paths as given on the command line (--tls-cert / --tls-key / --tls-ca or KVBRIDGE_TLS_*). */
export interface TlsFiles {
  cert?: string;
  key?: string;
  ca?: string;
  /**
   * The name a client checks a server's certificate against instead of the address it dialed
   * (--tls-server-name): peers found through DNS are dialed by IP, and a certificate shared by a
   * fleet names the service, not every pod IP.
   */
  serverName?: string;
}

/** A node's TLS identity and trust, loaded and checked. Plaintext is the absence of one. */
export interface TlsMaterial {
  /** PEM certificate chain presented to peers (leaf first). */
  cert: Buffer;
  /** PEM private key of the leaf certificate. */
  key: Buffer;
  /** PEM bundle of the CA certificates peers must chain to. */
  ca: Buffer;
  serverName?: string;
  /** The names in our own certificate (subject CN, DNS and URI SANs), for logs. */
  names: string[];
  /** When our certificate stops being valid. */
  notAfter: Date;
}

const FLAG = { cert: "--tls-cert", key: "--tls-key", ca: "--tls-ca" } as const;
const ENV = { cert: "KVBRIDGE_TLS_CERT", key: "KVBRIDGE_TLS_KEY", ca: "KVBRIDGE_TLS_CA" } as const;
type Part = keyof typeof FLAG;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readPem(part: Part, file: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new KvbridgeError("INVALID_ARGUMENT", `cannot read ${FLAG[part]} file ${file} (${reason}); check the path (a mounted Secret?) and its permissions`, {
      cause: err,
    });
  }
  if (!data.toString("latin1").includes("-----BEGIN ")) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${FLAG[part]} file ${file} is not PEM (no "-----BEGIN" line); give a PEM file, e.g. convert DER with openssl x509 -inform der`);
  }
  return data;
}

function parseCertificates(part: Part, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString("latin1").match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${FLAG[part]} file ${file} holds no certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  }
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new KvbridgeError("INVALID_ARGUMENT", `certificate ${i + 1} in ${FLAG[part]} file ${file} does not parse: ${(err as Error).message}`, { cause: err });
    }
  });
}

/**
 * Reads and checks the three files. Returns undefined when none is set (plaintext); throws
 * INVALID_ARGUMENT when only some are set, a file is unreadable or not PEM, the key does not belong
 * to the certificate, or the certificate is outside its validity period.
 */
export function loadTlsMaterial(files: TlsFiles, now: Date = new Date()): TlsMaterial | undefined {
  const given = (["cert", "key", "ca"] as const).filter((p) => files[p]);
  if (given.length === 0) {
    if (files.serverName) {
      throw new KvbridgeError("INVALID_ARGUMENT", "--tls-server-name only applies with mutual TLS; also give --tls-cert, --tls-key and --tls-ca");
    }
    return undefined;
  }
  if (given.length < 3) {
    const missing = (["cert", "key", "ca"] as const).filter((p) => !files[p]).map((p) => `${FLAG[p]} (${ENV[p]})`);
    throw new KvbridgeError("INVALID_ARGUMENT", `mutual TLS needs --tls-cert, --tls-key and --tls-ca together; missing ${missing.join(" and ")}`);
  }
  const certFile = files.cert!;
  const keyFile = files.key!;
  const caFile = files.ca!;
  const cert = readPem("cert", certFile);
  const key = readPem("key", keyFile);
  const ca = readPem("ca", caFile);

  const leaf = parseCertificates("cert", certFile, cert)[0]!;
  parseCertificates("ca", caFile, ca);
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (err) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${FLAG.key} file ${keyFile} is not a readable private key (${(err as Error).message}); give the unencrypted PEM key of ${certFile}`, {
      cause: err,
    });
  }
  if (!leaf.checkPrivateKey(keyObject)) {
    throw new KvbridgeError("INVALID_ARGUMENT", `${FLAG.key} file ${keyFile} is not the key of the certificate in ${certFile}; give the key that was issued with it`);
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore) {
    throw new KvbridgeError("INVALID_ARGUMENT", `certificate ${certFile} is not valid before ${notBefore.toISOString()}; check the clock or reissue it`);
  }
  if (now > notAfter) {
    throw new KvbridgeError("INVALID_ARGUMENT", `certificate ${certFile} expired on ${notAfter.toISOString()}; renew it (peers refuse an expired certificate)`);
  }
  const names = certificateNames({ subject: leaf.subject, subjectAltName: leaf.subjectAltName });
  return { cert, key, ca, serverName: files.serverName || undefined, names, notAfter };
}
