// Starts test/support/ucx-receiver-process.ts and talks to it: its offer, slot digests, stats, kill -9.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import type { DataPlaneOffer } from "../../src/transport/transport.js";
import { repoRoot } from "./processes.js";

export interface UcxReceiverProcess {
  child: ChildProcess;
  offer: Extract<DataPlaneOffer, { kind: "ucx" }>;
  pid: number;
  /** True when the pool was allocated by UCX (same-host peers write through a mapping). */
  ucxAllocatedPool: boolean;
  /** The data plane's warning (see UcxReceiverDataPlane.warning). */
  warning: string | null;
  lines: string[];
  sha256(slots: Array<{ slot: number; length: number }>): Promise<string[]>;
  /** Progress wakeups and events, and the process's CPU time so far. */
  stats(): Promise<{ wakeups: number; events: number; cpuMs: number }>;
  kill9(): Promise<void>;
  /** Graceful close (plane, then pool), then exit. Idempotent. */
  stop(): Promise<void>;
}

export interface UcxReceiverProcessOptions {
  slots: number;
  slotBytes: number;
  allocator: "ucx" | "mmap";
  ucxConfig?: Record<string, string>;
  /** Serve UCX where puts are emulated (UcxReceiverOptions.allowEmulatedPuts): a receiver from before the directness check. */
  allowEmulatedPuts?: boolean;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

export async function startUcxReceiverProcess(opts: UcxReceiverProcessOptions): Promise<UcxReceiverProcess> {
  const args = [String(opts.slots), String(opts.slotBytes), opts.allocator];
  if (opts.ucxConfig || opts.allowEmulatedPuts) args.push(JSON.stringify(opts.ucxConfig ?? {}));
  if (opts.allowEmulatedPuts) args.push("allowEmulatedPuts");
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "test/support/ucx-receiver-process.ts"), ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = once(child, "exit");
  const lines: string[] = [];
  const pending = new Map<number, (body: Record<string, unknown>) => void>();
  let offerLine: ((l: string) => void) | null = null;
  const onLine = (line: string): void => {
    lines.push(line);
    if (line.startsWith("UCX_OFFER ")) offerLine?.(line.slice("UCX_OFFER ".length));
    if (line.startsWith("UCX_REPLY ")) {
      const body = JSON.parse(line.slice("UCX_REPLY ".length)) as Record<string, unknown> & { id: number };
      pending.get(body.id)?.(body);
      pending.delete(body.id);
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);

  const timeoutMs = opts.timeoutMs ?? 60_000;
  // A receiver that crashed inside UCX may hang in UCX's fault handler instead of exiting: never
  // leave one behind when it gave no offer.
  const raw = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`UCX receiver sent no offer within ${timeoutMs} ms:\n${lines.join("\n")}`));
    }, timeoutMs);
    offerLine = (l) => {
      clearTimeout(timer);
      resolve(l);
    };
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`UCX receiver exited before its offer:\n${lines.join("\n")}`));
    });
  });
  const o = JSON.parse(raw) as { workerAddress: string; rkey: string; baseAddress: string; pid: number; ucxAllocatedPool: boolean; warning: string | null };

  let nextId = 1;
  const ask = (cmd: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`UCX receiver did not answer ${String(cmd.cmd)} within ${timeoutMs} ms; its output:\n${lines.slice(-20).join("\n")}`));
      }, timeoutMs);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`UCX receiver exited (code ${child.exitCode}, signal ${child.signalCode}) before answering ${String(cmd.cmd)}:\n${lines.slice(-20).join("\n")}`));
      });
      pending.set(id, (body) => {
        clearTimeout(timer);
        resolve(body);
      });
      child.stdin!.write(JSON.stringify({ id, ...cmd }) + "\n");
    });
  };
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;

  return {
    child,
    offer: { kind: "ucx", workerAddress: Buffer.from(o.workerAddress, "base64"), rkey: Buffer.from(o.rkey, "base64"), baseAddress: BigInt(o.baseAddress) },
    pid: o.pid,
    ucxAllocatedPool: o.ucxAllocatedPool,
    warning: o.warning,
    lines,
    async sha256(slots) {
      const body = await ask({ cmd: "sha256", slots });
      return body.digests as string[];
    },
    async stats() {
      const body = await ask({ cmd: "stats" });
      return { wakeups: body.wakeups as number, events: body.events as number, cpuMs: body.cpuMs as number };
    },
    async kill9() {
      if (!alive()) return;
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (!alive()) return;
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      child.stdin!.end(JSON.stringify({ id: 0, cmd: "close" }) + "\n");
      await exited;
      clearTimeout(timer);
    },
  };
}
