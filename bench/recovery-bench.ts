// Router recovery: how long after a restarted node says it serves does the router serve completions
// again, for outages of several lengths, and how fast a frozen node (SIGSTOP) leaves rotation and
// returns (SIGCONT). Real prefill and decode processes on the project's model; two routers in this
// process in front of them, measured in the same outage: kvbridge's (bounded reconnect backoff,
// health followed) and, as the baseline, one whose channels keep gRPC's own backoff (1 s growing to
// 120 s). Run alone: node --import tsx bench/recovery-bench.ts [--outages 1,10,30]
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ensureDefaultModel } from "../src/engine/index.js";
import { silentLogger } from "../src/observability/logger.js";
import { startRouter, type Router } from "../src/roles/router/router-role.js";
import type { BenchFigure } from "./bench-figure.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface NodeProcess {
  child: ChildProcess;
  /** Resolves with performance.now() when a line matches. */
  at(pattern: RegExp, timeoutMs: number): Promise<number>;
  kill9(): Promise<void>;
}

function spawnNode(args: string[]): NodeProcess {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "src/cli/kvbridge.ts"), ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const seen: Array<{ line: string; t: number }> = [];
  const waiters: Array<{ re: RegExp; resolve(t: number): void }> = [];
  const onLine = (line: string): void => {
    const t = performance.now();
    seen.push({ line, t });
    for (const w of [...waiters]) if (w.re.test(line)) waiters.splice(waiters.indexOf(w), 1), w.resolve(t);
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  const exited = once(child, "exit");
  return {
    child,
    at(re, timeoutMs) {
      const hit = seen.find((s) => re.test(s.line));
      if (hit) return Promise.resolve(hit.t);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} within ${timeoutMs} ms:\n${seen.slice(-10).map((s) => s.line).join("\n")}`)), timeoutMs);
        waiters.push({ re, resolve: (t) => (clearTimeout(timer), resolve(t)) });
      });
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function completes(router: Router, prompt: string): Promise<boolean> {
  const res = await fetch(`${router.url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt, max_tokens: 1 }) }).catch(() => undefined);
  await res?.arrayBuffer();
  return res?.status === 200;
}

/** Milliseconds from `since` to the send time of the first request that completed (polled every 25 ms). */
async function firstSuccessAfter(router: Router, since: number, prompt: string, capMs: number): Promise<number> {
  for (;;) {
    const sent = performance.now();
    if (await completes(router, prompt)) return Math.max(0, sent - since);
    if (sent - since > capMs) return Number.POSITIVE_INFINITY;
    await sleep(25);
  }
}

async function readyzAfter(router: Router, since: number, want: number, capMs: number): Promise<number> {
  for (;;) {
    const status = (await fetch(`${router.url}/readyz`).catch(() => undefined))?.status;
    const now = performance.now();
    if (status === want) return now - since;
    if (now - since > capMs) return Number.POSITIVE_INFINITY;
    await sleep(10);
  }
}

export interface RecoveryBenchOptions {
  /** Outage lengths in seconds (default 1, 10, 30). */
  outagesS?: number[];
  log(line: string): void;
}

export async function runRecoveryBench(o: RecoveryBenchOptions): Promise<BenchFigure[]> {
  await ensureDefaultModel();
  const [decodePort, dataPort, prefillPort] = [await freePort(), await freePort(), await freePort()];
  const decodeGrpc = `127.0.0.1:${decodePort}`;
  const prefillGrpc = `127.0.0.1:${prefillPort}`;
  const args = {
    decode: ["decode", "--listen", decodeGrpc, "--data-listen", `127.0.0.1:${dataPort}`, "--pool-slots", "128", "--slot-bytes", "512KiB"],
    prefill: ["prefill", "--listen", prefillGrpc],
  };
  const ready = { decode: /engine loaded: decode node serving/, prefill: /prefill node serving/ };
  const procs: Record<"decode" | "prefill", NodeProcess> = { decode: spawnNode(args.decode), prefill: spawnNode(args.prefill) };
  const routers: Router[] = [];
  const figures: BenchFigure[] = [];
  try {
    await Promise.all([procs.decode.at(ready.decode, 120_000), procs.prefill.at(ready.prefill, 120_000)]);
    const common = { listen: { host: "127.0.0.1", port: 0 }, prefill: { kind: "static" as const, targets: [prefillGrpc] }, decode: { kind: "static" as const, targets: [decodeGrpc] }, logger: silentLogger() };
    const ours = await startRouter(common);
    // gRPC's own reconnect backoff (1 s initial, 120 s max), the channels of a router that does not bound it.
    const grpcDefault = await startRouter({ ...common, reconnectBackoff: { initialMs: 1_000, maxMs: 120_000 } });
    routers.push(ours, grpcDefault);
    let n = 0;
    for (const role of ["prefill", "decode"] as const) {
      for (const s of o.outagesS ?? [1, 10, 30]) {
        o.log(`recovery: ${role} down ${s} s`);
        const prompt = `recovery bench ${role} ${s} ${n++}`;
        await procs[role].kill9();
        // Both routers keep trying through the outage, as clients would.
        const downUntil = performance.now() + s * 1000;
        const traffic = async (r: Router): Promise<void> => {
          while (performance.now() < downUntil) {
            await completes(r, prompt);
            await sleep(200);
          }
        };
        await Promise.all(routers.map(traffic));
        procs[role] = spawnNode(args[role]);
        const serving = await procs[role].at(ready[role], 120_000);
        const [mine, base] = await Promise.all([firstSuccessAfter(ours, serving, prompt, 180_000), firstSuccessAfter(grpcDefault, serving, prompt, 180_000)]);
        o.log(`recovery: ${role} after ${s} s down: ${mine.toFixed(0)} ms (gRPC default backoff: ${base.toFixed(0)} ms)`);
        figures.push({ bench: `router.recovery.${role}.down_${s}s`, value: mine, unit: "ms", baseline: base, baselineName: "router with gRPC's default reconnect backoff", ratio: base > 0 && Number.isFinite(base) ? mine / base : null });
      }
    }
    for (const role of ["prefill", "decode"] as const) {
      o.log(`recovery: ${role} frozen (SIGSTOP) 5 s`);
      const child = procs[role].child;
      child.kill("SIGSTOP");
      const stopped = performance.now();
      const out = await readyzAfter(ours, stopped, 503, 10_000);
      await sleep(Math.max(0, 5_000 - (performance.now() - stopped)));
      child.kill("SIGCONT");
      const resumed = performance.now();
      const back = await readyzAfter(ours, resumed, 200, 10_000);
      o.log(`recovery: ${role} frozen: out of rotation after ${out.toFixed(0)} ms, back ${back.toFixed(0)} ms after SIGCONT`);
      figures.push(
        { bench: `router.frozen.${role}.out_of_rotation`, value: out, unit: "ms", baseline: null, ratio: null },
        { bench: `router.frozen.${role}.back_in_rotation`, value: back, unit: "ms", baseline: null, ratio: null },
      );
    }
  } finally {
    for (const r of routers) await r.close();
    for (const p of Object.values(procs)) {
      p.child.kill("SIGCONT");
      await p.kill9();
    }
  }
  return figures;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--outages");
  const outagesS = i > 0 ? process.argv[i + 1]!.split(",").map(Number) : undefined;
  const figures = await runRecoveryBench({ outagesS, log: (l) => process.stderr.write(`bench: ${l}\n`) });
  for (const f of figures) process.stdout.write(JSON.stringify(f) + "\n");
}
