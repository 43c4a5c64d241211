// The names a certificate carries (subject CN, DNS and URI subject alternative names): what the
// admin guard matches a caller's verified certificate against, and what logs show for a peer.
import type { PeerCertificate } from "node:tls";

export interface CertificateFields {
  /** X509Certificate.subject ("CN=a\nO=b") or a PeerCertificate's parsed subject. */
  subject?: string | Partial<Record<string, string | string[]>>;
  /** Node's SAN string: "DNS:a.example, IP Address:10.0.0.1, URI:spiffe://x". */
  subjectAltName?: string;
}

/** Splits Node's SAN string; values with commas or quotes come JSON-quoted (node:tls escapes them). */
function sanEntries(san: string): string[] {
  const out: string[] = [];
  const re = /(DNS|URI|IP Address|email|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:,\s*|$)/g;
  for (const m of san.matchAll(re)) {
    const kind = m[1]!;
    let value = m[2]!.trim();
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if ((kind === "DNS" || kind === "URI") && value) out.push(value);
  }
  return out;
}

function commonNames(subject: CertificateFields["subject"]): string[] {
  if (subject === undefined) return [];
  if (typeof subject === "string") {
    return subject
      .split("\n")
      .filter((l) => l.startsWith("CN="))
      .map((l) => l.slice(3));
  }
  const cn = subject.CN;
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
}

/** Subject CNs first, then DNS and URI SANs; no duplicates, no empty names. */
export function certificateNames(cert: CertificateFields): string[] {
  const names = [...commonNames(cert.subject), ...(cert.subjectAltName ? sanEntries(cert.subjectAltName) : [])];
  return [...new Set(names.filter((n) => n.length > 0))];
}

/** The names of a peer certificate as node:tls (and grpc-js's auth context) report it. */
export function peerCertificateNames(cert: PeerCertificate): string[] {
  return certificateNames({ subject: cert.subject as unknown as Record<string, string | string[]>, subjectAltName: cert.subjectaltname });
}
