// Running a command inside a network namespace (`ip netns exec NS ...`, which execs the command in
// place, so the child's pid is the command's own and signals reach it directly), read line by line.
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { repoRoot, type RunningProcess } from "./processes.js";

/** The built CLI: namespace hosts run what users run (`npm run build` makes it). */
export const KVBRIDGE_JS = path.join(repoRoot, "dist/src/cli/kvbridge.js");

/** Starts `argv` in namespace `ns`; stdout and stderr are collected as lines. */
export function spawnInNetns(ns: string, argv: string[], env: NodeJS.ProcessEnv = {}): RunningProcess {
  const child = spawn("ip", ["netns", "exec", ns, ...argv], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (l: string) => void }>();
  const onLine = (line: string): void => {
    lines.push(line);
    for (const w of waiters) {
      if (w.pattern.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on("line", onLine);
  createInterface({ input: child.stderr! }).on("line", onLine);
  const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  const done = (): boolean => child.exitCode !== null || child.signalCode !== null;

  return {
    child,
    lines,
    waitForLine(pattern, timeoutMs = 60_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const tail = (): string => lines.slice(-30).join("\n");
        const waiter = {
          pattern,
          resolve: (l: string) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${ns}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${tail()}`));
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(([code, signal]) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(new Error(`${ns}: process exited (code ${code}, signal ${signal}) before a line matching ${pattern}; output:\n${tail()}`));
        });
      });
    },
    async stop(graceMs = 5_000) {
      if (done()) return { code: child.exitCode, signal: child.signalCode };
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const [code, signal] = await exited;
      clearTimeout(timer);
      return { code, signal };
    },
    async kill9() {
      if (done()) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
