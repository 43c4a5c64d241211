// Parsing of HOST:PORT endpoint strings at the edge (flags, env, config).
import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface HostPort {
  host: string;
  port: number;
}

/** "127.0.0.1:50061", "[::1]:50061", ":50061" (all interfaces) or "localhost:0" (any free port). */
export function parseHostPort(value: string, what: string): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new KvbridgeError("INVALID_ARGUMENT", `${what}: "${value}" is not HOST:PORT (e.g. 127.0.0.1:50061)`);
  const port = Number(m[3]);
  if (port > 65535) throw new KvbridgeError("INVALID_ARGUMENT", `${what}: port ${port} is above 65535`);
  const host = m[1] ?? (m[2] || "0.0.0.0");
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(":") ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}
