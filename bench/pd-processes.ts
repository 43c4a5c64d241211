// The processes of the PD benches: kvbridge prefill, decode and router nodes started from the CLI
// (node --import tsx src/cli/kvbridge.ts), each optionally pinned to CPU cores with `taskset -c`, and
// the two deployments the benches compare on the same cores:
//   - PD: a prefill node on its cores, a decode node on its own, a router in front (on the decode
//     node's cores: relaying tokens is part of the decode path);
//   - colocated: one decode node on all the cores, serving prompts it receives no KV for by
//     evaluating them itself (its recompute path), which is how one process serves both phases.
// Also the two ways of driving a generation that the benches time: through a router's OpenAI API
// (SSE), or straight on a decode node's Generate stream (DecodeClient).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { packageRoot } from "../src/config/package-root.js";
import { DecodeClient } from "../src/wire/decode-client.js";
import type { GenerateEvent__Output } from "../src/wire/generated/kvbridge/v1/GenerateEvent.js";

// The package root, found upward from this module: bench/ under tsx, dist/bench/ when built (npm run bench).
let root = packageRoot();

/**
 * Where the kvbridge processes are started from (a checkout whose src/cli/kvbridge.ts is run with
 * tsx): this repository by default, or a pinned copy (e.g. `git archive HEAD` unpacked) so that the
 * figures belong to one known commit.
 */
export function setKvbridgeRoot(dir: string): void {
  root = path.resolve(dir);
}

export interface NodeProcess {
  name: string;
  child: ChildProcess;
  /** Resolves when a line of the process's output matches. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

let tasksetChecked: boolean | undefined;
/** Whether `taskset` can pin here (util-linux; absent on some images). */
export function canPin(): boolean {
  if (tasksetChecked === undefined) {
    try {
      execFileSync("taskset", ["-c", "0", "true"], { stdio: "ignore" });
      tasksetChecked = true;
    } catch {
      tasksetChecked = false;
    }
  }
  return tasksetChecked;
}

/** A `kvbridge <args>` process, pinned to `cpus` (a taskset list such as "0" or "0-1") when given. */
export function spawnKvbridge(name: string, args: string[], cpus?: string, onLine?: (name: string, line: string) => void): NodeProcess {
  const node = [process.execPath, "--import", "tsx", path.join(root, "src/cli/kvbridge.ts"), ...args];
  const [cmd, ...argv] = cpus && canPin() ? ["taskset", "-c", cpus, ...node] : node;
  const child = spawn(cmd!, argv, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const tail: string[] = [];
  const waiters: Array<{ re: RegExp; resolve(): void }> = [];
  const lineSeen = (line: string): void => {
    onLine?.(name, line);
    tail.push(line);
    if (tail.length > 20) tail.shift();
    for (const w of [...waiters]) if (w.re.test(line)) waiters.splice(waiters.indexOf(w), 1), w.resolve();
  };
  createInterface({ input: child.stdout! }).on("line", lineSeen);
  createInterface({ input: child.stderr! }).on("line", lineSeen);
  const exited = once(child, "exit");
  return {
    name,
    child,
    waitFor(re, timeoutMs) {
      if (tail.some((l) => re.test(l))) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const fail = (why: string): void => reject(new Error(`${name}: ${why}:\n${tail.join("\n")}`));
        const timer = setTimeout(() => fail(`no line ${re} within ${timeoutMs} ms`), timeoutMs);
        child.once("exit", (code, sig) => (clearTimeout(timer), fail(`exited (${code ?? sig}) before ${re}`)));
        waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, "127.0.0.1");
  await once(s, "listening");
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The cached medium model (make-model --preset medium), written first when missing. */
export async function mediumModelPath(): Promise<string> {
  const { presetModelPath } = await import("../src/engine/model-writer.js");
  const p = presetModelPath("medium");
  if (!existsSync(p)) {
    const maker = spawnKvbridge("make-model", ["make-model", "--preset", "medium"]);
    await maker.waitFor(/parameters/, 600_000);
    await once(maker.child, "exit");
  }
  return p;
}

export interface DeploymentOptions {
  /** GGUF path; default: the project's model. */
  model?: string;
  /** Engine threads of each node (PD: per node, one core each by default; colocated: its decode node). */
  threads: number;
  /** Sequences the decode node evaluates at once (its streams, and the prompts it loads or evaluates). */
  maxSequences: number;
  /** Bytes per pool slot: at least one chunk of the model's KV. */
  slotBytes: string;
  poolSlots: number;
  /** taskset core lists; empty strings leave a process unpinned. */
  cpus: { prefill: string; decode: string; router: string };
  /** Every output line of the nodes (debugging a run); the router logs at info when given. */
  onLine?: (name: string, line: string) => void;
}

export interface Deployment {
  name: "pd" | "colocated";
  /** Router URL (PD only). */
  routerUrl?: string;
  decodeAddress: string;
  prefillAddress?: string;
  describe: string;
  close(): Promise<void>;
}

function engineArgs(o: DeploymentOptions, threads: number): string[] {
  return [...(o.model ? ["--model", o.model] : []), "--threads", String(threads)];
}

async function startDecode(o: DeploymentOptions, threads: number, cpus: string): Promise<{ proc: NodeProcess; address: string }> {
  const [grpcPort, dataPort] = [await freePort(), await freePort()];
  const address = `127.0.0.1:${grpcPort}`;
  const proc = spawnKvbridge("decode", [
    "decode", "--listen", address, "--data-listen", `127.0.0.1:${dataPort}`, "--transport", "tcp", "--lock-memory", "false",
    "--pool-slots", String(o.poolSlots), "--slot-bytes", o.slotBytes, "--max-sequences", String(o.maxSequences),
    "--recompute-policy", "recompute", ...engineArgs(o, threads), "--log-level", "info",
  ], cpus, o.onLine);
  await proc.waitFor(/engine loaded: decode node serving/, 300_000);
  return { proc, address };
}

/** Router + prefill node + decode node, each on its cores. */
export async function startPd(o: DeploymentOptions): Promise<Deployment> {
  const procs: NodeProcess[] = [];
  try {
    const decode = await startDecode(o, o.threads, o.cpus.decode);
    procs.push(decode.proc);
    const prefillAddress = `127.0.0.1:${await freePort()}`;
    const prefill = spawnKvbridge("prefill", ["prefill", "--listen", prefillAddress, "--transport", "tcp", ...engineArgs(o, o.threads), "--log-level", "info"], o.cpus.prefill, o.onLine);
    procs.push(prefill);
    await prefill.waitFor(/prefill node serving/, 300_000);
    const routerPort = await freePort();
    const router = spawnKvbridge("router", ["router", "--listen", `127.0.0.1:${routerPort}`, "--prefill", prefillAddress, "--decode", decode.address, "--log-level", o.onLine ? "info" : "warn"], o.cpus.router, o.onLine);
    procs.push(router);
    const routerUrl = `http://127.0.0.1:${routerPort}`;
    await waitReady(routerUrl, 60_000);
    const pin = canPin() ? `prefill on cpu ${o.cpus.prefill || "any"}, decode on cpu ${o.cpus.decode || "any"}, router on cpu ${o.cpus.router || "any"}` : "unpinned (no taskset)";
    return {
      name: "pd",
      routerUrl,
      decodeAddress: decode.address,
      prefillAddress,
      describe: `PD: ${pin}, --threads ${o.threads} per node`,
      close: async () => void (await Promise.all(procs.map((p) => p.stop()))),
    };
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop()));
    throw err;
  }
}

/** One decode node on all the cores, evaluating every prompt itself. */
export async function startColocated(o: DeploymentOptions & { colocatedThreads: number; colocatedCpus: string }): Promise<Deployment> {
  const decode = await startDecode(o, o.colocatedThreads, o.colocatedCpus);
  const pin = canPin() ? `decode node on cpus ${o.colocatedCpus || "any"}` : "unpinned (no taskset)";
  return { name: "colocated", decodeAddress: decode.address, describe: `colocated: ${pin}, --threads ${o.colocatedThreads}`, close: () => decode.proc.stop() };
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const status = (await fetch(`${url}/readyz`).catch(() => undefined))?.status;
    if (status === 200) return;
    if (performance.now() > until) throw new Error(`router ${url} not ready within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What a client sees of one generation: when it was sent, and when each piece of text arrived. */
export interface StreamTiming {
  sentAt: number;
  /** performance.now() of each token (Generate event) or SSE text chunk. */
  arrivals: number[];
  ok: boolean;
  error?: string;
  completionTokens: number;
}

/** Sends a generation and records arrival times; `signal` ends it early (then ok with what came). */
export type Driver = (prompt: string, maxTokens: number, signal?: AbortSignal) => Promise<StreamTiming>;

/** Through a router's OpenAI API, streamed: each SSE event carrying text is one arrival. */
export function routerDriver(url: string): Driver {
  return async (prompt, maxTokens, signal) => {
    const t: StreamTiming = { sentAt: performance.now(), arrivals: [], ok: false, completionTokens: 0 };
    try {
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
        signal,
      });
      if (res.status !== 200 || !res.body) {
        t.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
        return t;
      }
      const decoder = new TextDecoder();
      let buf = "";
      for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
        const now = performance.now();
        buf += decoder.decode(bytes, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i).trim();
          buf = buf.slice(i + 2);
          if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
          const body = JSON.parse(ev.slice(6)) as { choices?: Array<{ text?: string }>; usage?: { completion_tokens?: number }; error?: { message?: string } };
          if (body.error) t.error = body.error.message ?? "error event";
          if (body.usage) t.completionTokens = body.usage.completion_tokens ?? 0;
          if (body.choices?.[0]?.text) t.arrivals.push(now);
        }
      }
      t.ok = !t.error;
    } catch (err) {
      if (signal?.aborted) t.ok = true;
      else t.error = (err as Error).message;
    }
    return t;
  };
}

let seq = 0;

/** Straight on a decode node's Generate: every event before the last is one token. */
export function decodeDriver(client: DecodeClient): Driver {
  return (prompt, maxTokens, signal) =>
    new Promise<StreamTiming>((resolve) => {
      const t: StreamTiming = { sentAt: performance.now(), arrivals: [], ok: false, completionTokens: 0 };
      const call = client.generate({ requestId: `bench-${process.pid}-${seq++}`, prompt, maxTokens }, 600_000);
      const onAbort = (): void => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
      call.on("data", (ev: GenerateEvent__Output) => {
        if (ev.done) t.completionTokens = ev.completionTokens;
        else t.arrivals.push(performance.now());
      });
      call.on("error", (err: Error) => {
        signal?.removeEventListener("abort", onAbort);
        if (signal?.aborted) t.ok = true;
        else t.error = err.message;
        resolve(t);
      });
      call.on("end", () => {
        signal?.removeEventListener("abort", onAbort);
        t.ok = !t.error;
        resolve(t);
      });
    });
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Gaps between consecutive arrivals of one stream. */
export function gaps(arrivals: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < arrivals.length; i++) out.push(arrivals[i]! - arrivals[i - 1]!);
  return out;
}

const WORDS = "kv cache prefill decode chunk transfer node router token layer head pool slot lease commit the a of to and in".split(" ");

/** Text of about `tokens` tokens for the project's byte-level model (one token per byte, plus BOS); distinct per seed. */
export function promptOf(tokens: number, seed: number): string {
  let x = seed * 2654435761 + 1;
  let s = `${seed} `;
  while (s.length < tokens - 1) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    s += WORDS[x % WORDS.length] + " ";
  }
  return s.slice(0, tokens - 1);
}

/** Load average and core count, printed next to every figure (a shared machine moves them). */
export function machineLoad(): string {
  try {
    return execFileSync("uptime", { encoding: "utf8" }).trim();
  } catch {
    return "uptime unavailable";
  }
}
