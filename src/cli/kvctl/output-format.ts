// kvctl's output formats: tables for people (default), wide tables with more columns, and one JSON or
// YAML document for scripts. `-o json|yaml|wide` on every command; `--json` is `-o json`. Structured
// output goes through terminal-safe rendering: the same value when parsed, no raw control character.
import { Option, type Command } from "commander";
import { stringify } from "yaml";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { terminalJson } from "./terminal-text.js";

export type OutputFormat = "table" | "wide" | "json" | "yaml";

export const OUTPUT_CHOICES = ["json", "yaml", "wide"] as const;

export interface OutputFlags {
  output?: (typeof OUTPUT_CHOICES)[number];
  json: boolean;
}

export function addOutputOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("-o, --output <format>", "json or yaml (one document, for scripts), or wide (tables with more columns)").choices(OUTPUT_CHOICES))
    .option("--json", "same as -o json", false);
}

/** The format asked for; --json with another -o is a usage error (exit 2). */
export function outputOf(flags: OutputFlags): OutputFormat {
  if (flags.json && flags.output !== undefined && flags.output !== "json") {
    throw new KvbridgeError("INVALID_ARGUMENT", `--json means -o json; it cannot be combined with -o ${flags.output}`, { details: { param: "output" } });
  }
  return flags.json ? "json" : (flags.output ?? "table");
}

export function isStructured(format: OutputFormat): format is "json" | "yaml" {
  return format === "json" || format === "yaml";
}

/** Characters YAML leaves raw in a double-quoted scalar (it escapes C0 itself) but a terminal may act on. */
const YAML_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * YAML for a terminal or a pipe: every string double-quoted (so each unsafe character sits inside a
 * quoted scalar, where `\uXXXX` is its escape), never folded over lines.
 */
export function terminalYaml(value: unknown): string {
  const text = stringify(value, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN", lineWidth: 0, minContentWidth: 0 });
  return text.replace(YAML_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** One document in `format` (json: indented, yaml: block style), ending with a newline. */
export function structuredText(format: "json" | "yaml", value: unknown): string {
  return format === "json" ? terminalJson(value, 2) + "\n" : terminalYaml(value);
}
