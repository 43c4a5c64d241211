// Runs one kvctl action and turns its outcome into output and an exit code: a KvbridgeError becomes
// a one-line message on stderr (and, with -o json|yaml, the one error shape of every command,
// {"error": {"code", "message", "node"}}, on stdout) and the exit code for its code (exit-codes.ts).
// Everything written goes through terminal-text.ts.
import { toKvbridgeError, type ErrorCode } from "../../errors/kvbridge-error.js";
import { EXIT, exitCodeFor } from "./exit-codes.js";
import type { NodeClient } from "./node-client.js";
import { isStructured, outputOf, structuredText, type OutputFlags, type OutputFormat } from "./output-format.js";
import { printable, printableLines } from "./terminal-text.js";

/** The error of every kvctl command and of every node in a listing: `node` is the address, or null when none was involved. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  node: string | null;
}

export function errorBody(err: unknown, node: string | null): ErrorBody {
  const e = toKvbridgeError(err);
  return { code: e.code, message: e.message, node };
}

/** What an action tells the runner: the node it is talking to, named in its error. */
export interface RunContext {
  node: string | null;
}

/** `output`: a format, or (older callers) true for JSON. */
export async function runCommand(output: OutputFormat | boolean, action: (ctx: RunContext) => Promise<number>): Promise<void> {
  const format: OutputFormat = output === true ? "json" : output === false ? "table" : output;
  const ctx: RunContext = { node: null };
  try {
    process.exitCode = await action(ctx);
  } catch (err) {
    const e = toKvbridgeError(err);
    if (isStructured(format)) writeStructured(format, { error: errorBody(e, ctx.node) });
    warn(e.message);
    process.exitCode = exitCodeFor(e.code);
  }
}

/** runCommand in the format the flags ask for; conflicting format flags are a usage error in that same shape. */
export async function runFormatted(flags: OutputFlags, action: (format: OutputFormat, ctx: RunContext) => Promise<number>): Promise<void> {
  let format: OutputFormat;
  try {
    format = outputOf(flags);
  } catch (err) {
    return runCommand(flags.json || flags.output === "json" ? "json" : flags.output === "yaml" ? "yaml" : "table", () => Promise.reject(err));
  }
  return runCommand(format, (ctx) => action(format, ctx));
}

export function writeStructured(format: "json" | "yaml", value: unknown): void {
  process.stdout.write(structuredText(format, value));
}

export function writeJson(value: unknown): void {
  writeStructured("json", value);
}

/** Human output on stdout, each line printable. */
export function writeText(text: string): void {
  process.stdout.write(printableLines(text));
}

/** One `kvctl: ...` line on stderr; the message becomes one printable line whatever it quotes. */
export function warn(message: string): void {
  process.stderr.write(`kvctl: ${printable(message)}\n`);
}

/** One node's answer in a multi-node listing, or why it has none (the same shape for every command). */
export type PerNode<T> = { address: string } & (({ ok: true } & T) | { ok: false; error: ErrorBody });

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
        return { address, ok: true as const, ...(await ask(c)) };
      } catch (err) {
        const body = errorBody(err, address);
        if (exit === EXIT.OK) exit = exitCodeFor(body.code);
        warn(`${address}: ${body.message}`);
        return { address, ok: false as const, error: body };
      } finally {
        c.close();
      }
    }),
  );
  return { results, exit };
}
