// Where the router finds its prefill and decode nodes: a fixed list, or a DNS name that resolves
// to many addresses (a Kubernetes headless Service), re-resolved periodically.
import { lookup } from "node:dns/promises";
import type { Logger } from "pino";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { formatHostPort, parseHostPort } from "../host-port.js";

export type PeerSource = { kind: "static"; targets: string[] } | { kind: "dns"; name: string; port: number };

export function parsePeerSource(list: string | undefined, dns: string | undefined, what: string): PeerSource {
  if (list && dns) throw new KvbridgeError("INVALID_ARGUMENT", `give --${what} or --${what}-dns, not both`);
  if (dns) {
    const hp = parseHostPort(dns, `--${what}-dns`);
    return { kind: "dns", name: hp.host, port: hp.port };
  }
  if (!list) throw new KvbridgeError("INVALID_ARGUMENT", `no ${what} nodes: give --${what} HOST:PORT[,HOST:PORT...] or --${what}-dns NAME:PORT`);
  const targets = list.split(",").map((t) => t.trim()).filter(Boolean).map((t) => formatHostPort(parseHostPort(t, `--${what}`)));
  if (targets.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", `--${what} lists no address`);
  return { kind: "static", targets };
}

export class PeerDiscovery {
  private current: string[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly source: PeerSource,
    private readonly log: Logger,
    private readonly refreshMs = 5_000,
  ) {
    if (source.kind === "static") this.current = [...source.targets];
  }

  targets(): readonly string[] {
    return this.current;
  }

  async start(): Promise<void> {
    if (this.source.kind !== "dns") return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
  }

  async refresh(): Promise<void> {
    if (this.source.kind !== "dns") return;
    const { name, port } = this.source;
    try {
      const addrs = await lookup(name, { all: true });
      const next = [...new Set(addrs.map((a) => formatHostPort({ host: a.address, port })))].sort();
      if (next.join() !== this.current.join()) this.log.info({ name, targets: next }, "peers changed");
      this.current = next;
    } catch (err) {
      // Keep the last known peers: a DNS hiccup must not empty the fleet.
      this.log.warn({ name, err: (err as Error).message }, "DNS lookup failed; keeping the last known peers");
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
