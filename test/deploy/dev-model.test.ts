// The dev overlay's init container writes the project's small model with a one-line script that
// imports the compiled model writer from the image. Run that exact script against the sources:
// it must produce a GGUF file, and the same bytes every time (prefill and decode pods each write
// their own copy and must agree on the model fingerprint).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseDockerfile, workdirAt } from "./dockerfile.js";
import { KUSTOMIZATIONS, rendered, repoRoot } from "./kustomizations.js";
import { workload, workloads } from "./workloads.js";

/** The init container's script, with image paths mapped onto this checkout and `modelDir`. */
function localScript(modelDir: string): string {
  const dev = KUSTOMIZATIONS.find((k) => k.name === "dev");
  if (!dev) throw new Error("no dev overlay");
  const decode = workload(workloads(rendered(dev)), "decode");
  const init = decode.podSpec.initContainers?.find((c) => c.name === "write-model");
  const command = init?.command ?? [];
  expect(command.slice(0, 3)).toEqual(["node", "--input-type=module", "-e"]);
  const script = command[3] ?? "";
  const mount = init?.volumeMounts?.[0]?.mountPath ?? "";

  // Where the image keeps the compiled sources: runtime WORKDIR + tsc's outDir + rootDir layout.
  const stages = parseDockerfile(readFileSync(path.join(repoRoot, "deploy/Dockerfile"), "utf8"));
  const runtime = stages.at(-1);
  if (!runtime) throw new Error("Dockerfile has no stage");
  const { outDir } = (JSON.parse(readFileSync(path.join(repoRoot, "tsconfig.json"), "utf8")) as { compilerOptions: { outDir: string } }).compilerOptions;
  const imageDist = path.posix.join(workdirAt(runtime, runtime.instructions.length), outDir);

  const modules = [...script.matchAll(/import\("([^"]+)"\)/g)].map((m) => m[1] ?? "");
  expect(modules.length).toBeGreaterThan(0);
  let local = script;
  for (const m of modules) {
    expect(m.startsWith(`${imageDist}/`), `${m} lies in the image's ${imageDist}`).toBe(true);
    const source = path.join(repoRoot, path.posix.relative(imageDist, m)).replace(/\.js$/, ".ts");
    local = local.replaceAll(`"${m}"`, JSON.stringify(source));
  }
  return local.replaceAll(`"${mount}/`, `"${modelDir}/`);
}

describe("dev overlay model writer", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("the init container's script writes the same GGUF model on every run", () => {
    dir = mkdtempSync(path.join(tmpdir(), "kvbridge-dev-model-"));
    const run = (sub: string): Buffer => {
      const out = path.join(dir ?? "", sub);
      const r = spawnSync("mkdir", ["-p", out]);
      expect(r.status).toBe(0);
      const node = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", localScript(out)], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(node.status, `${node.stdout}${node.stderr}`).toBe(0);
      return readFileSync(path.join(out, "model.gguf"));
    };
    const first = run("a");
    const second = run("b");
    expect(first.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(first.length).toBeGreaterThan(1024);
    expect(second.equals(first)).toBe(true);
  });
});
