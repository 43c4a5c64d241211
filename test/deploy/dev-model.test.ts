// The dev overlay's init container runs `kvbridge make-model --out <model volume>/model.gguf`.
// Run those exact arguments against the sources: the result must be a GGUF file with the same
// bytes every time, because prefill and decode pods each write their own copy and must agree on
// the model fingerprint.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KUSTOMIZATIONS, rendered, repoRoot } from "./kustomizations.js";
import { workload, workloads } from "./workloads.js";

/** The write-model init container's args, its model mount, and the model path the node loads. */
function devModelWriter(role: "prefill" | "decode"): { args: string[]; mountPath: string; modelPath: string } {
  const dev = KUSTOMIZATIONS.find((k) => k.name === "dev");
  if (!dev) throw new Error("no dev overlay");
  const w = workload(workloads(rendered(dev)), role);
  const init = w.podSpec.initContainers?.find((c) => c.name === "write-model");
  if (!init?.args) throw new Error(`dev ${role} has no write-model init container with args`);
  const mountPath = init.volumeMounts?.[0]?.mountPath;
  if (mountPath === undefined) throw new Error("write-model mounts no volume");
  return { args: init.args, mountPath, modelPath: w.env.get("KVBRIDGE_MODEL") ?? "" };
}

describe("dev overlay model writer", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("the init container's kvbridge command writes the same GGUF model for prefill and decode pods", () => {
    dir = mkdtempSync(path.join(tmpdir(), "kvbridge-dev-model-"));
    const write = (role: "prefill" | "decode"): Buffer => {
      const { args, mountPath, modelPath } = devModelWriter(role);
      // The volume is mounted where the node expects its model.
      expect(path.posix.dirname(modelPath)).toBe(mountPath);
      const localDir = path.join(dir ?? "", role);
      const localArgs = args.map((a) => (a.startsWith(`${mountPath}/`) ? path.join(localDir, a.slice(mountPath.length + 1)) : a));
      const run = spawnSync(process.execPath, ["--import", "tsx", path.join(repoRoot, "src/cli/kvbridge.ts"), ...localArgs], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 120_000,
      });
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
      return readFileSync(path.join(localDir, path.posix.basename(modelPath)));
    };
    const prefill = write("prefill");
    const decode = write("decode");
    expect(prefill.subarray(0, 4).toString("latin1")).toBe("GGUF");
    expect(prefill.length).toBeGreaterThan(1024);
    expect(decode.equals(prefill)).toBe(true);
  });
});
