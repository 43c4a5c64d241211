// Which nodes are in the router's rotation, from their own grpc.health.v1: every node is watched
// (Watch: a change the node announces is applied the moment it arrives) and asked (Check) on a short
// interval with a short deadline, which finds what Watch cannot (a frozen node sends nothing).
// SERVING puts a node in rotation;
// NOT_SERVING (loading, draining, pool stuck), an unreachable node or one that does not answer two
// Checks in a row in time (frozen, partitioned) takes it out. The verdict is written into the routing policy's node
// states, which is all the policy reads; requests already running on a node that leaves rotation
// are told through rotationSignal(), so their calls end or move on at once. A Check that times out
// is followed by a fresh probe channel: a partition leaves TCP open but stalled (and a connect
// attempt hanging), which would hold every later Check until the kernel's next retransmission,
// seconds after the link heals. A timeout that the router's own stalled event loop explains (its
// deadline fired far too late) is not counted against the node.
import type { Logger } from "pino";
import { toKvbridgeError } from "../../errors/kvbridge-error.js";
import type { HealthStatus } from "../../wire/health-client.js";
import type { CallOptions } from "../../wire/unary-call.js";
import { nodeState, type NodeStates } from "./routing-policy.js";

/** What the router needs of a node's health service (HealthClient). */
export interface HealthProbe {
  check(service: string, opts: CallOptions): Promise<HealthStatus>;
  /** Every status the node announces until the signal fires or the stream fails. */
  watch(service: string, signal: AbortSignal): AsyncIterable<HealthStatus>;
  close(): void;
}

/** Why a node is (or is not) in rotation: its last answer, or how asking failed. */
export type HealthVerdict = HealthStatus | "unreachable" | "timeout" | "unknown";

export interface NodeHealthOptions {
  nodes: NodeStates;
  /** Every node to follow (prefill and decode), re-read each interval (DNS discovery may change it). */
  targets(): readonly string[];
  probe(target: string): HealthProbe;
  intervalMs: number;
  timeoutMs: number;
  log: Logger;
  /** Told when a node comes into rotation (the router lists its models again: it may have restarted with others). */
  onServing?(target: string): void;
}

interface Followed {
  probe: HealthProbe;
  /** Ends this probe's Watch when the probe is replaced. */
  probeAbort: AbortController;
  probing: Promise<void> | undefined;
  /** The Watch stream's loop, while one is open or being retried. */
  watching: boolean;
  /** Checks in a row that ran past the deadline: two take the node out (one may be a busy moment). */
  timeouts: number;
  verdict: HealthVerdict;
  /** Aborted when the node leaves rotation; a fresh one is made when it comes back. */
  rotation: AbortController;
  /** performance.now() of the last change of verdict. */
  since: number;
}

export interface NodeHealthReport {
  target: string;
  inRotation: boolean;
  health: HealthVerdict;
}

/** Consecutive Checks past their deadline that take a SERVING node out of rotation. */
export const TIMEOUTS_TO_LEAVE = 2;

/** A Check whose deadline fired this many times its length after it was sent was late on the router's side. */
const STALLED_FACTOR = 1.5;

export class NodeHealth {
  private readonly followed = new Map<string, Followed>();
  private timer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly o: NodeHealthOptions) {}

  /** Asks every node once (each bounded by the timeout), then keeps asking every interval. */
  async start(): Promise<void> {
    this.tick();
    await Promise.all([...this.followed.values()].map((f) => f.probing));
    if (this.stopping.signal.aborted) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Idempotent: no probe is started after it, and every health channel is closed. */
  stop(): void {
    this.stopping.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const f of this.followed.values()) f.probe.close();
    this.followed.clear();
  }

  /**
   * Fires when `target` leaves rotation (undefined for a node not followed), its reason the verdict
   * (HealthVerdict). Taken when a call is sent, so a call on a node already out of rotation is
   * cancelled at once.
   */
  rotationSignal(target: string): AbortSignal | undefined {
    return this.followed.get(target)?.rotation.signal;
  }

  report(targets: readonly string[]): NodeHealthReport[] {
    return targets.map((target) => ({ target, inRotation: nodeState(this.o.nodes, target).reachable, health: this.followed.get(target)?.verdict ?? "unknown" }));
  }

  private tick(): void {
    if (this.stopping.signal.aborted) return;
    const want = new Set(this.o.targets());
    for (const [t, f] of this.followed) {
      if (want.has(t)) continue;
      f.probe.close();
      this.followed.delete(t);
      // Gone from discovery: its routing state goes too (reservations in flight keep their own object).
      this.o.nodes.delete(t);
    }
    for (const t of want) {
      let f = this.followed.get(t);
      if (!f) {
        const rotation = new AbortController();
        // Not in rotation until it says SERVING.
        rotation.abort();
        nodeState(this.o.nodes, t).reachable = false;
        this.followed.set(t, (f = { probe: this.o.probe(t), probeAbort: new AbortController(), probing: undefined, watching: false, timeouts: 0, verdict: "unknown", rotation, since: performance.now() }));
      }
      if (!f.probing) f.probing = this.ask(t, f);
      if (!f.watching) void this.watch(t, f);
    }
  }

  /** Applies every status the node announces; when the stream ends or fails, the next tick opens another. */
  private async watch(target: string, f: Followed): Promise<void> {
    f.watching = true;
    const probeAbort = f.probeAbort;
    const current = (): boolean => !this.stopping.signal.aborted && this.followed.get(target) === f && f.probeAbort === probeAbort;
    try {
      for await (const status of f.probe.watch("", AbortSignal.any([this.stopping.signal, probeAbort.signal]))) {
        if (!current()) return;
        this.apply(target, f, status);
      }
    } catch {
      // Unreachable or reset: Check says so on its own schedule; the next tick watches again.
    } finally {
      f.watching = false;
    }
  }

  private async ask(target: string, f: Followed): Promise<void> {
    let verdict: HealthVerdict;
    const t0 = performance.now();
    try {
      verdict = await f.probe.check("", { timeoutMs: this.o.timeoutMs, signal: this.stopping.signal });
    } catch (err) {
      const e = toKvbridgeError(err);
      verdict = e.code === "DEADLINE_EXCEEDED" ? "timeout" : "unreachable";
    }
    f.probing = undefined;
    if (this.stopping.signal.aborted || this.followed.get(target) !== f) return;
    if (verdict === "timeout") {
      this.replaceProbe(target, f);
      // The deadline fired far past its time: the router's own event loop was stalled (a loaded
      // host), and the answer may be sitting unread. Not the node's fault; the next Check decides.
      if (performance.now() - t0 > this.o.timeoutMs * STALLED_FACTOR) return;
    }
    f.timeouts = verdict === "timeout" ? f.timeouts + 1 : 0;
    if (verdict === "timeout" && f.timeouts < TIMEOUTS_TO_LEAVE && f.verdict === "SERVING") return;
    this.apply(target, f, verdict);
  }

  /** A fresh probe channel (its Watch reopened on the next tick); the old one's connection may be stalled. */
  private replaceProbe(target: string, f: Followed): void {
    f.probeAbort.abort();
    f.probe.close();
    f.probe = this.o.probe(target);
    f.probeAbort = new AbortController();
  }

  /** One synchronous step: the verdict, the policy's state and the rotation signal change together. */
  private apply(target: string, f: Followed, verdict: HealthVerdict): void {
    const serving = verdict === "SERVING";
    const was = f.verdict;
    f.verdict = verdict;
    const state = nodeState(this.o.nodes, target);
    state.reachable = serving;
    // A refused connection (a process restarting) is worth a try when nothing else is up; a frozen or NOT_SERVING node is not.
    state.lastResort = verdict === "unreachable";
    // The signal's reason is the verdict: a caller can tell a frozen or partitioned node ("timeout") from one that is gone.
    if (!serving) f.rotation.abort(verdict);
    else if (f.rotation.signal.aborted) f.rotation = new AbortController();
    if (was === verdict) return;
    const now = performance.now();
    const changed = { node: target, health: verdict, was, afterMs: Math.round(now - f.since) };
    f.since = now;
    if (serving) {
      this.o.log.info(changed, "node in rotation");
      this.o.onServing?.(target);
    }
    else if (was === "SERVING" || was === "unknown") this.o.log.warn(changed, "node out of rotation");
    else this.o.log.info(changed, "node still out of rotation");
  }
}
