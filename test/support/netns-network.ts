// A switched test network of Linux network namespaces: one namespace per host, each joined by a veth
// pair to a bridge in a switch namespace, links shaped with tc, and partitions by taking a host's
// switch port down. Addresses (10.77.0.0/24) exist only inside the namespaces made here.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** The private range every test host gets an address in; nothing outside these namespaces uses it. */
export const NETNS_SUBNET = "10.77.0";

/** What tc can do to a link on this kernel. netem gives delay, jitter, loss and rate in one qdisc. */
export interface ShapingSupport {
  netem: boolean;
  /** tbf: a rate limit without netem. */
  tbf: boolean;
  /** A classic-BPF classifier in direct-action mode that drops a random share of packets (loss without netem). */
  bpfLoss: boolean;
}

export type NetnsProbe = { available: true; shaping: ShapingSupport } | { available: false; reason: string };

/** The conditions put on every link, in both directions. */
export interface LinkConditions {
  delayMs: number;
  jitterMs: number;
  lossPercent: number;
  rate: string;
}

/** What was actually applied to the links, and what this kernel could not do (said in test names and the report). */
export interface AppliedShaping {
  delay: boolean;
  loss: boolean;
  rate: boolean;
  summary: string;
}

const IP = "ip";
const TC = "tc";
/** Every namespace made here starts with this, then the pid of the test process that owns it and a dash. */
export const NETNS_PREFIX = "kvbridge-";
const PREFIX = NETNS_PREFIX;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
}

function tryRun(cmd: string, args: string[]): { ok: true } | { ok: false; error: string } {
  try {
    run(cmd, args);
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, error: (e.stderr || e.message).trim().split("\n")[0] ?? "unknown error" };
  }
}

/** 1 - loss as a threshold on a random u32: packets whose random draw is at or above it are dropped. */
function lossThreshold(lossPercent: number): number {
  return Math.min(0xffffffff, Math.floor(0x100000000 * (1 - lossPercent / 100)));
}

/**
 * Classic BPF for a tc direct-action classifier: A = random u32 (SKF_AD_OFF + SKF_AD_RANDOM);
 * A >= threshold ? TC_ACT_SHOT : TC_ACT_OK. cls_bpf and cBPF are in kernels that lack sch_netem.
 */
function lossBytecode(lossPercent: number): string {
  const SKF_AD_RANDOM = (0x100000000 - 0x1000 + 56) >>> 0;
  return `4,32 0 0 ${SKF_AD_RANDOM},53 0 1 ${lossThreshold(lossPercent)},6 0 0 2,6 0 0 0`;
}

/**
 * Whether this process can build the test network here: root (or CAP_NET_ADMIN), `ip` and `tc`, and a
 * namespace with a veth pair actually created (then removed). Also which link shaping the kernel has.
 * Synchronous, so a test file can name its skip reason at collection time.
 */
export function probeNetns(): NetnsProbe {
  if (process.platform !== "linux") return { available: false, reason: `network namespaces are Linux only (this is ${process.platform})` };
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(safeRead("/proc/self/status"))?.[1];
  const CAP_NET_ADMIN = 12n;
  if (capEff === undefined || ((BigInt(`0x${capEff}`) >> CAP_NET_ADMIN) & 1n) === 0n) {
    return { available: false, reason: "needs root (CAP_NET_ADMIN) to create network namespaces" };
  }
  for (const tool of [IP, TC]) {
    const found = tryRun(tool, ["-V"]);
    if (!found.ok) return { available: false, reason: `needs the '${tool}' command (iproute2): ${found.error}` };
  }
  // Each host also gets its own IPC namespace (see netns-cluster.ts): needs util-linux's unshare.
  const ipc = tryRun("unshare", ["--ipc", "true"]);
  if (!ipc.ok) return { available: false, reason: `needs 'unshare --ipc' (util-linux, CAP_SYS_ADMIN): ${ipc.error}` };
  const a = `${PREFIX}${process.pid}-probe`;
  const made = tryRun(IP, ["netns", "add", a]);
  if (!made.ok) return { available: false, reason: `'ip netns add' failed: ${made.error}` };
  try {
    const veth = tryRun(IP, ["-n", a, "link", "add", "pa", "type", "veth", "peer", "name", "pb"]);
    if (!veth.ok) return { available: false, reason: `cannot create a veth pair: ${veth.error}` };
    const qdisc = (spec: string[]): boolean => {
      const r = tryRun(TC, ["-n", a, "qdisc", "add", "dev", "pa", "root", ...spec]);
      if (r.ok) run(TC, ["-n", a, "qdisc", "del", "dev", "pa", "root"]);
      return r.ok;
    };
    const netem = qdisc(["netem", "delay", "1ms", "0.2ms", "loss", "0.1%", "rate", "1gbit"]);
    const tbf = qdisc(["tbf", "rate", "1gbit", "burst", "256kb", "latency", "50ms"]);
    const bpfLoss =
      tryRun(TC, ["-n", a, "qdisc", "add", "dev", "pa", "clsact"]).ok &&
      tryRun(TC, ["-n", a, "filter", "add", "dev", "pa", "egress", "bpf", "da", "bytecode", lossBytecode(0.1)]).ok;
    return { available: true, shaping: { netem, tbf, bpfLoss } };
  } finally {
    tryRun(IP, ["netns", "del", a]);
  }
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

/**
 * Removes namespaces left by test processes that died before their cleanup ran (their pid is gone),
 * killing first whatever still runs in them (kvbridge nodes orphaned with their test process).
 * Namespaces of live processes (another test file running now) are left alone.
 */
export function removeStaleNamespaces(): string[] {
  if (!existsSync("/run/netns")) return [];
  const removed: string[] = [];
  for (const name of readdirSync("/run/netns")) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processAlive(pid)) continue;
    killProcessesIn(name);
    if (tryRun(IP, ["netns", "del", name]).ok) removed.push(name);
  }
  return removed;
}

/** SIGKILLs every process whose network namespace is `ns` (as `ip netns pids` lists them). */
function killProcessesIn(ns: string): void {
  let pids: string;
  try {
    pids = run(IP, ["netns", "pids", ns]);
  } catch {
    return;
  }
  for (const p of pids.split(/\s+/).filter((x) => /^\d+$/.test(x))) {
    try {
      process.kill(Number(p), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface NetnsHost {
  /** Short name, e.g. "decode-1". */
  name: string;
  /** The namespace the host's processes run in. */
  ns: string;
  /** Its address on the test network. */
  ip: string;
  /** Its interface on the test network (inside `ns`). */
  dev: string;
}

export interface InterfaceCounters {
  rxBytes: number;
  txBytes: number;
}

export class NetnsNetwork {
  readonly hosts = new Map<string, NetnsHost>();
  readonly applied: AppliedShaping;
  private readonly switchNs: string;
  private removed = false;

  private constructor(
    private readonly prefix: string,
    private readonly conditions: LinkConditions,
    private readonly support: ShapingSupport,
    applied: AppliedShaping,
  ) {
    this.switchNs = `${prefix}-switch`;
    this.applied = applied;
  }

  /**
   * Builds the switch and one namespace per host (host i gets 10.77.0.<octets[i]>), every link shaped
   * with `conditions` as far as `support` allows. On any failure, whatever was made is removed.
   */
  static create(hosts: ReadonlyArray<{ name: string; octet: number }>, conditions: LinkConditions, support: ShapingSupport): NetnsNetwork {
    removeStaleNamespaces();
    const net = new NetnsNetwork(`${PREFIX}${process.pid}-${Date.now().toString(36).slice(-4)}`, conditions, support, describeShaping(conditions, support));
    try {
      run(IP, ["netns", "add", net.switchNs]);
      run(IP, ["-n", net.switchNs, "link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0"]);
      run(IP, ["-n", net.switchNs, "link", "set", "br0", "up"]);
      for (const h of hosts) net.addHost(h.name, h.octet);
      return net;
    } catch (err) {
      net.remove();
      throw err;
    }
  }

  private addHost(name: string, octet: number): void {
    const host: NetnsHost = { name, ns: `${this.prefix}-${name}`, ip: `${NETNS_SUBNET}.${octet}`, dev: "eth0" };
    const port = this.portOf(name);
    run(IP, ["netns", "add", host.ns]);
    this.hosts.set(name, host);
    // Both ends are created inside their namespaces: no interface of the test network ever exists in
    // the namespace the tests run in.
    run(IP, ["link", "add", "name", host.dev, "netns", host.ns, "type", "veth", "peer", "name", port, "netns", this.switchNs]);
    run(IP, ["-n", this.switchNs, "link", "set", port, "master", "br0"]);
    run(IP, ["-n", host.ns, "addr", "add", `${host.ip}/24`, "dev", host.dev]);
    run(IP, ["-n", host.ns, "link", "set", "lo", "up"]);
    run(IP, ["-n", host.ns, "link", "set", host.dev, "up"]);
    run(IP, ["-n", this.switchNs, "link", "set", port, "up"]);
    // Shaped at both ends' egress, so each direction of the link sees delay, loss and the rate limit.
    shape(host.ns, host.dev, this.conditions, this.support);
    shape(this.switchNs, port, this.conditions, this.support);
  }

  private portOf(name: string): string {
    return `p-${name}`.slice(0, 15);
  }

  host(name: string): NetnsHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in the test network`);
    return h;
  }

  /** The host's cable is pulled: its switch port goes down (the host sees its carrier drop). */
  partition(name: string): void {
    run(IP, ["-n", this.switchNs, "link", "set", this.portOf(name), "down"]);
  }

  heal(name: string): void {
    run(IP, ["-n", this.switchNs, "link", "set", this.portOf(name), "up"]);
  }

  /**
   * Changes the rate of the link into the host (its switch port's egress) and keeps delay and loss:
   * a congested link, so a transfer to the host takes long enough to be cut in the middle.
   */
  setRateTowards(name: string, rate: string): void {
    const port = this.portOf(name);
    if (this.support.netem) {
      const c = this.conditions;
      run(TC, ["-n", this.switchNs, "qdisc", "change", "dev", port, "root", "netem", "delay", `${c.delayMs}ms`, `${c.jitterMs}ms`, "loss", `${c.lossPercent}%`, "rate", rate]);
    } else if (this.support.tbf) {
      run(TC, ["-n", this.switchNs, "qdisc", "change", "dev", port, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms"]);
    } else {
      throw new Error("this kernel has neither sch_netem nor sch_tbf: no rate limit can be set");
    }
  }

  /** Bytes through an interface of the host (its test-network link, or "lo"). */
  counters(name: string, dev?: string): InterfaceCounters {
    const h = this.host(name);
    const [link] = JSON.parse(run(IP, ["-j", "-s", "-n", h.ns, "link", "show", "dev", dev ?? h.dev])) as Array<{ stats64: { rx: { bytes: number }; tx: { bytes: number } } }>;
    if (!link) throw new Error(`no interface ${dev ?? h.dev} on ${name}`);
    return { rxBytes: link.stats64.rx.bytes, txBytes: link.stats64.tx.bytes };
  }

  /** Namespaces of this network that exist now (empty once removed). */
  namespaces(): string[] {
    if (!existsSync("/run/netns")) return [];
    return readdirSync("/run/netns").filter((n) => n.startsWith(`${this.prefix}-`));
  }

  /** Deletes every namespace (and with them their links). Idempotent; never throws. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    for (const h of this.hosts.values()) tryRun(IP, ["netns", "del", h.ns]);
    tryRun(IP, ["netns", "del", this.switchNs]);
  }
}

export function describeShaping(c: LinkConditions, s: ShapingSupport): AppliedShaping {
  if (s.netem) {
    return { delay: true, loss: true, rate: true, summary: `netem delay ${c.delayMs} ms ± ${c.jitterMs} ms, loss ${c.lossPercent} %, rate ${c.rate}` };
  }
  const parts = [s.tbf ? `rate ${c.rate} (tbf)` : `no rate limit (neither sch_netem nor sch_tbf here)`];
  parts.push(s.bpfLoss ? `loss ${c.lossPercent} % (cls_bpf)` : "no loss (neither sch_netem nor cls_bpf here)");
  parts.push("no added delay (sch_netem is not in this kernel)");
  return { delay: false, loss: s.bpfLoss, rate: s.tbf, summary: parts.join(", ") };
}

function shape(ns: string, dev: string, c: LinkConditions, s: ShapingSupport): void {
  if (s.netem) {
    run(TC, ["-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", `${c.delayMs}ms`, `${c.jitterMs}ms`, "loss", `${c.lossPercent}%`, "rate", c.rate]);
    return;
  }
  // tbf's burst must hold at least one timer tick of the rate; 256 KiB covers 1 Gbit/s at HZ=1000 with room.
  if (s.tbf) run(TC, ["-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", c.rate, "burst", "256kb", "latency", "50ms"]);
  if (s.bpfLoss && c.lossPercent > 0) {
    run(TC, ["-n", ns, "qdisc", "add", "dev", dev, "clsact"]);
    run(TC, ["-n", ns, "filter", "add", "dev", dev, "egress", "bpf", "da", "bytecode", lossBytecode(c.lossPercent)]);
  }
}
