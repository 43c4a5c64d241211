// Runs one kvctl action and turns its outcome into output and an exit code: a KvbridgeError becomes
// a one-line message on stderr (and an {"error": ...} object on stdout with --json) and the exit
// code for its code (exit-codes.ts).
import { toKvbridgeError } from "../../errors/kvbridge-error.js";
import { exitCodeFor } from "./exit-codes.js";

export async function runCommand(json: boolean, action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (err) {
    const e = toKvbridgeError(err);
    if (json) process.stdout.write(JSON.stringify({ error: { code: e.code, message: e.message } }) + "\n");
    process.stderr.write(`kvctl: ${e.message}\n`);
    process.exitCode = exitCodeFor(e.code);
  }
}

export function writeJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
