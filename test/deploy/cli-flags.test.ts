// The manifests drive the real CLI: every flag in the container args and every KVBRIDGE_*
// variable a container receives must be one that `kvbridge <role> --help` lists.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { KUSTOMIZATIONS, rendered, repoRoot } from "./kustomizations.js";
import { workloads, type Role } from "./workloads.js";

interface RoleHelp {
  flags: Set<string>;
  envs: Set<string>;
}

const helpCache = new Map<Role, RoleHelp>();

/** Runs `kvbridge <role> --help` from the sources, as test/support/processes.ts starts nodes. */
function roleHelp(role: Role): RoleHelp {
  const cached = helpCache.get(role);
  if (cached) return cached;
  const cli = path.join(repoRoot, "src/cli/kvbridge.ts");
  const run = spawnSync(process.execPath, ["--import", "tsx", cli, role, "--help"], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
  const output = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`kvbridge ${role} --help exited with ${run.status ?? run.signal}:\n${output}`);
  // An unknown subcommand falls back to the program's help: make sure this is the role's own.
  if (!output.includes(`kvbridge ${role}`)) throw new Error(`kvbridge ${role} --help did not print the ${role} command's help:\n${output}`);
  const help: RoleHelp = {
    flags: new Set(output.match(/--[a-z][a-z0-9-]*/g) ?? []),
    // commander prints "(env: KVBRIDGE_X)", wrapped anywhere between the two words.
    envs: new Set([...output.matchAll(/env:\s+(KVBRIDGE_[A-Z0-9_]+)/g)].map((m) => m[1] ?? "")),
  };
  helpCache.set(role, help);
  return help;
}

describe("container args and environment are flags the kvbridge CLI accepts", () => {
  for (const role of ["prefill", "decode", "router"] as const) {
    it(`${role}: every flag and KVBRIDGE_* variable in every overlay is one \`kvbridge ${role} --help\` lists`, () => {
      const help = roleHelp(role);
      const unknown: string[] = [];
      for (const k of KUSTOMIZATIONS) {
        for (const w of workloads(rendered(k)).filter((x) => x.role === role)) {
          const args = w.main.args ?? [];
          expect(args[0], `${k.name}: the first argument selects the role`).toBe(role);
          for (const arg of args.slice(1)) if (arg.startsWith("--") && !help.flags.has(arg)) unknown.push(`${k.name}: flag ${arg}`);
          for (const name of w.env.keys()) if (name.startsWith("KVBRIDGE_") && !help.envs.has(name)) unknown.push(`${k.name}: env ${name}`);
        }
      }
      expect(unknown).toEqual([]);
    });
  }
});
