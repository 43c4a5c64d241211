// deploy/Dockerfile read statically (no Docker daemon here): what it copies exists, what the
// runtime stage takes from the build stage was produced there, and it runs the package bin as a
// non-root user with libucx0 installed, consistently with the manifests.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { copyTargets, dockerIgnore, execForm, parseCopy, parseDockerfile, workdirAt, type Stage } from "./dockerfile.js";
import { KUSTOMIZATIONS, rendered, repoRoot } from "./kustomizations.js";
import { workloads } from "./workloads.js";

const stages = parseDockerfile(readFileSync(path.join(repoRoot, "deploy/Dockerfile"), "utf8"));
const ignored = dockerIgnore(readFileSync(path.join(repoRoot, ".dockerignore"), "utf8"));
const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as {
  version: string;
  engines: { node: string };
  bin: Record<string, string>;
};
const tsconfig = JSON.parse(readFileSync(path.join(repoRoot, "tsconfig.json"), "utf8")) as { compilerOptions: { outDir: string; rootDir: string } };

const runtime = stages.at(-1) as Stage;
const runs = (stage: Stage): string[] => stage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.rest);
const only = (stage: Stage, keyword: string): string[] => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.rest);
const trackedFiles = (p: string): string[] =>
  execFileSync("git", ["ls-files", "--", p], { cwd: repoRoot, encoding: "utf8" }).split("\n").filter((l) => l !== "");

/** Paths a stage leaves in its filesystem: COPY targets, node_modules from npm ci, tsc's outDir. */
function producedPaths(stage: Stage): string[] {
  const out: string[] = [];
  stage.instructions.forEach((ins, i) => {
    const dir = workdirAt(stage, i);
    if (ins.keyword === "COPY") out.push(...copyTargets(stage, i, parseCopy(ins.rest)));
    if (ins.keyword === "RUN" && /\bnpm (ci|install)\b/.test(ins.rest)) out.push(path.posix.join(dir, "node_modules"));
    if (ins.keyword === "RUN" && /\bnpm run build\b/.test(ins.rest)) out.push(path.posix.join(dir, tsconfig.compilerOptions.outDir));
  });
  return out;
}

describe("deploy/Dockerfile", () => {
  it("builds every stage on Node 20, the major version package.json supports", () => {
    expect(pkg.engines.node).toBe(">=20");
    for (const s of stages) expect(s.image).toMatch(/^node:20[-.]/);
    expect(stages.length).toBeGreaterThanOrEqual(2);
  });

  it("installs from the lock file (npm install/ci) and then builds with npm run build in the build stage", () => {
    const build = stages[0] as Stage;
    const steps = runs(build);
    const ci = steps.findIndex((r) => /\bnpm (ci|install)\b/.test(r));
    const compile = steps.findIndex((r) => /\bnpm run build\b/.test(r));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(compile).toBeGreaterThan(ci);
    // Only production dependencies travel to the runtime stage.
    expect(steps.slice(compile).join("\n")).toMatch(/npm prune --omit=dev/);
  });

  it("copies from the build context only files that git tracks and .dockerignore lets through", () => {
    const problems: string[] = [];
    for (const s of stages) {
      for (const ins of s.instructions.filter((i) => i.keyword === "COPY" || i.keyword === "ADD")) {
        const spec = parseCopy(ins.rest);
        if (spec.from !== undefined) continue;
        for (const source of spec.sources) {
          const files = trackedFiles(source);
          if (files.length === 0) problems.push(`line ${ins.line}: ${source} is not in git, a fresh clone has no such path`);
          for (const f of files) if (ignored(f)) problems.push(`line ${ins.line}: ${f} is excluded by .dockerignore`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("takes from the build stage only paths that stage produced", () => {
    for (const [i, ins] of runtime.instructions.entries()) {
      if (ins.keyword !== "COPY") continue;
      const spec = parseCopy(ins.rest);
      const source = stages.find((s) => s.name === spec.from);
      expect(source, `line ${ins.line}: COPY --from=${spec.from} names a stage`).toBeDefined();
      const produced = producedPaths(source as Stage);
      for (const src of spec.sources) {
        expect(produced.some((p) => src === p || src.startsWith(`${p}/`)), `line ${ins.line}: ${src}`).toBe(true);
      }
      expect(copyTargets(runtime, i, spec).length).toBe(spec.sources.length);
    }
  });

  it("runtime stage installs libucx0 with apt and keeps no apt lists", () => {
    const steps = runs(runtime).join("\n");
    expect(steps).toMatch(/apt-get install[^\n]*\blibucx0\b/);
    expect(steps).toMatch(/rm -rf \/var\/lib\/apt\/lists/);
  });

  it("runs as a numeric non-root user the image creates, the same UID the pods declare", () => {
    const users = only(runtime, "USER");
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] ?? "").split(":").map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(runs(runtime).join("\n")).toMatch(new RegExp(`useradd[^\\n]*--uid ${uid}\\b`));
    expect(runs(runtime).join("\n")).toMatch(new RegExp(`groupadd[^\\n]*--gid ${gid}\\b`));
    for (const k of KUSTOMIZATIONS) {
      for (const w of workloads(rendered(k))) {
        expect(w.podSpec.securityContext?.runAsUser, `${k.name} ${w.role}`).toBe(uid);
        expect(w.podSpec.securityContext?.runAsGroup, `${k.name} ${w.role}`).toBe(gid);
      }
    }
  });

  it("enters through the package bin `kvbridge` in exec form, so node gets SIGTERM and drains", () => {
    const entrypoints = only(runtime, "ENTRYPOINT");
    expect(entrypoints).toHaveLength(1);
    const argv = execForm(entrypoints[0] ?? "");
    expect(argv, "exec form: a shell wrapper would not pass SIGTERM on").toBeDefined();
    expect(argv?.[0]).toBe("node");
    const workdir = workdirAt(runtime, runtime.instructions.length);
    const bin = pkg.bin["kvbridge"] ?? "";
    expect(path.posix.resolve(workdir, argv?.[1] ?? "")).toBe(path.posix.resolve(workdir, bin));
    // The compiled bin comes from a source file that is in the repository.
    const { rootDir, outDir } = tsconfig.compilerOptions;
    const source = path.posix.join(rootDir, path.posix.relative(outDir, bin)).replace(/\.js$/, ".ts");
    expect(trackedFiles(source), `${source} in git`).toEqual([source]);
    // The bin, package.json ("type": "module") and proto/ (loaded at run time) are in the image.
    const produced = producedPaths(runtime);
    for (const needed of [bin, "package.json", "proto", "node_modules"]) {
      expect(produced.some((p) => path.posix.resolve(workdir, needed).startsWith(p)), needed).toBe(true);
    }
  });

  it("exposes every port the manifests declare, and the manifests run the image of this package version", () => {
    const exposed = new Set(only(runtime, "EXPOSE").flatMap((e) => e.split(/\s+/)).map(Number));
    const base = KUSTOMIZATIONS.find((k) => k.name === "base");
    for (const w of workloads(rendered(base ?? KUSTOMIZATIONS[0]!))) {
      for (const p of w.main.ports ?? []) expect(exposed.has(p.containerPort), `${w.role} ${p.containerPort}`).toBe(true);
      expect(w.main.image).toBe(`kvbridge:${pkg.version}`);
    }
  });
});

describe(".dockerignore", () => {
  it("keeps dependencies, build output, git data, the model cache and tests out of the build context", () => {
    for (const p of ["node_modules/koffi/index.js", "dist/src/cli/kvbridge.js", ".git/HEAD", ".cache/models/x.gguf", "test/deploy/render.test.ts", "docs/operations.md", "npm-debug.log"]) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ["package.json", "package-lock.json", "tsconfig.json", "src/cli/kvbridge.ts", "proto/kvbridge/v1/receiver.proto"]) {
      expect(ignored(p), p).toBe(false);
    }
  });
});
