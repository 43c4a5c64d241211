// The manifests drive the real CLI: every flag in a container's args and every KVBRIDGE_*
// variable a container receives must be one that `kvbridge <command> --help` lists.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { KUSTOMIZATIONS, rendered, repoRoot } from "./kustomizations.js";
import { workloads } from "./workloads.js";

interface CommandHelp {
  flags: Set<string>;
  envs: Set<string>;
}

const helpCache = new Map<string, CommandHelp>();

/** Runs `kvbridge <command> --help` from the sources, as test/support/processes.ts starts nodes. */
function commandHelp(command: string): CommandHelp {
  const cached = helpCache.get(command);
  if (cached) return cached;
  const cli = path.join(repoRoot, "src/cli/kvbridge.ts");
  const run = spawnSync(process.execPath, ["--import", "tsx", cli, command, "--help"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`kvbridge ${command} --help exited with ${run.status ?? run.signal}:\n${output}`);
  // An unknown subcommand falls back to the program's help: make sure this is the command's own.
  if (!output.includes(`kvbridge ${command}`)) throw new Error(`kvbridge ${command} --help did not print the ${command} command's help:\n${output}`);
  const help: CommandHelp = {
    flags: new Set(output.match(/--[a-z][a-z0-9-]*/g) ?? []),
    // commander prints "(env: KVBRIDGE_X)", wrapped anywhere between the two words.
    envs: new Set([...output.matchAll(/env:\s+(KVBRIDGE_[A-Z0-9_]+)/g)].map((m) => m[1] ?? "")),
  };
  helpCache.set(command, help);
  return help;
}

/** Problems with one container that runs the image's entry point (the kvbridge CLI). */
function unknownToCli(args: readonly string[], env: ReadonlyMap<string, string>, where: string): string[] {
  const command = args[0] ?? "";
  const help = commandHelp(command);
  const problems: string[] = [];
  for (const arg of args.slice(1)) if (arg.startsWith("--") && !help.flags.has(arg)) problems.push(`${where}: flag ${arg}`);
  for (const name of env.keys()) if (name.startsWith("KVBRIDGE_") && !help.envs.has(name)) problems.push(`${where}: env ${name}`);
  return problems;
}

describe("container args and environment are flags the kvbridge CLI accepts", () => {
  for (const role of ["prefill", "decode", "router"] as const) {
    it(`${role}: every flag and KVBRIDGE_* variable in every overlay is one \`kvbridge ${role} --help\` lists`, () => {
      const problems: string[] = [];
      for (const k of KUSTOMIZATIONS) {
        for (const w of workloads(rendered(k)).filter((x) => x.role === role)) {
          const args = w.main.args ?? [];
          expect(args[0], `${k.name}: the first argument selects the role`).toBe(role);
          expect(w.main.command, `${k.name}: the image's entry point runs`).toBeUndefined();
          problems.push(...unknownToCli(args, w.env, k.name));
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it("init containers that run the kvbridge CLI pass flags their command accepts", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const k of KUSTOMIZATIONS) {
      for (const w of workloads(rendered(k))) {
        for (const init of w.podSpec.initContainers ?? []) {
          if (init.image !== w.main.image || init.command !== undefined) continue;
          const env = new Map((init.env ?? []).map((e) => [e.name, e.value ?? ""]));
          problems.push(...unknownToCli(init.args ?? [], env, `${k.name} ${w.role}/${init.name}`));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(0); // the dev overlay's model writers
    expect(problems).toEqual([]);
  });
});
