// Which data plane a decode node offers, and why not the others, as operators and senders see it:
// real `kvbridge decode` processes, `kvctl status` and `kvbridge send --transport ucx`. A node where
// UCX would emulate puts (UCX_TLS=tcp) does not offer UCX (ucx_not_direct); one run with
// --transport tcp says so (not_selected); a sender forcing UCX there fails before allocating
// anything, with the receiver's reason.

import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ucxAvailability } from "../../src/transport/ucx/index.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { repoRoot } from "../support/processes.js";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(script: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, script), ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} ${args.join(" ")} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const nodes: DecodeProcess[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.proc.stop();
});

const ucx = ucxAvailability();

describe("data planes offered and why not", () => {
  it.runIf(ucx.available)("UCX that would emulate puts is not offered (ucx_not_direct); kvctl status and a forced `send --transport ucx` say why", async () => {
    const node = await startDecodeProcess([], { UCX_TLS: "tcp,self" });
    nodes.push(node);
    const send = await cli("src/cli/kvbridge.ts", ["send", "--to", node.grpc, "--transport", "ucx", "--requests", "2", "--chunks", "2", "--chunk-bytes", "64KiB", "--no-verify", "--json"]);
    expect(send.code).toBe(1);
    const res = JSON.parse(send.stdout) as { requests_ok: number; errors: string[] };
    expect(res.requests_ok).toBe(0);
    expect(res.errors[0]).toMatch(/transport ucx was forced but the receiver does not offer it \(ucx_not_direct: .*UCX would emulate puts/);
    const [status, human] = await Promise.all([
      cli("src/cli/kvctl.ts", ["status", node.grpc, "--sample-ms", "0", "--json"]),
      cli("src/cli/kvctl.ts", ["status", node.grpc, "--sample-ms", "0"]),
    ]);
    const report = (JSON.parse(status.stdout) as { nodes: Array<Record<string, unknown>> }).nodes[0]!;
    expect(report).toMatchObject({
      transports: ["tcp"],
      capabilities: ["data_plane_commit"],
      transports_not_offered: [{ transport: "ucx", reason: "ucx_not_direct", message: expect.stringMatching(/UCX would emulate puts over tcp/) }],
      // Refused before anything was allocated: nothing to abort, nothing quarantined.
      requests_aborted: 0,
      pool: { slots: { quarantined: 0 } },
    });
    expect(human.stdout).toMatch(/data planes {2}tcp \(commit on the data plane\); ucx not offered: ucx_not_direct \(/);
  });

  it("a node run with --transport tcp says UCX is not selected", async () => {
    const node = await startDecodeProcess(["--transport", "tcp"]);
    nodes.push(node);
    const status = await cli("src/cli/kvctl.ts", ["status", node.grpc, "--sample-ms", "0", "--json"]);
    const report = (JSON.parse(status.stdout) as { nodes: Array<Record<string, unknown>> }).nodes[0]!;
    expect(report).toMatchObject({ transports: ["tcp"], transports_not_offered: [{ transport: "ucx", reason: "not_selected", message: "the node runs with --transport tcp" }] });
  });
});
