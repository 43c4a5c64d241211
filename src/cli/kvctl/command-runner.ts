// Runs one kvctl action and turns its outcome into output and an exit code: a KvbridgeError becomes
// a one-line message on stderr (and an {"error": ...} object on stdout with --json) and the exit
// code for its code (exit-codes.ts). Everything written goes through terminal-text.ts.
import { toKvbridgeError } from "../../errors/kvbridge-error.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import type { NodeClient } from "./node-client.js";
import { printable, printableLines, terminalJson } from "./terminal-text.js";

export async function runCommand(json: boolean, action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (err) {
    const e = toKvbridgeError(err);
    if (json) process.stdout.write(terminalJson({ error: { code: e.code, message: e.message } }) + "\n");
    warn(e.message);
    process.exitCode = exitCodeFor(e.code);
  }
}

export function writeJson(value: unknown): void {
  process.stdout.write(terminalJson(value, 2) + "\n");
}

/** Human output on stdout, each line printable. */
export function writeText(text: string): void {
  process.stdout.write(printableLines(text));
}

/** One `kvctl: ...` line on stderr; the message becomes one printable line whatever it quotes. */
export function warn(message: string): void {
  process.stderr.write(`kvctl: ${printable(message)}\n`);
}

/** One node's answer in a multi-node listing, or why it has none. */
export type PerNode<T> = { address: string } & (T | { error: { code: string; message: string } });

/**
 * Asks every node at once. A node that fails is reported on stderr and in its place (a partial answer
 * beats none at 3 a.m.); the exit code is that of the first failure, or OK.
 */
export async function queryEachNode<T extends object>(
  nodes: readonly string[],
  open: (address: string) => NodeClient,
  ask: (client: NodeClient) => Promise<T>,
): Promise<{ results: Array<PerNode<T>>; exit: number }> {
  let exit: number = EXIT.OK;
  const results = await Promise.all(
    nodes.map(async (address): Promise<PerNode<T>> => {
      const c = open(address);
      try {
        return { address, ...(await ask(c)) };
      } catch (err) {
        const e = toKvbridgeError(err);
        if (exit === EXIT.OK) exit = exitCodeFor(e.code);
        warn(`${address}: ${e.message}`);
        return { address, error: { code: e.code, message: e.message } };
      } finally {
        c.close();
      }
    }),
  );
  return { results, exit };
}
