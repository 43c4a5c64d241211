// Running kvbridge and kvctl to completion for the mTLS tests, with none of the caller's KVBRIDGE_TLS_*
// or admin variables leaking in, and typed gRPC clients of a node that speak mutual TLS.
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import path from "node:path";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { grpcChannelCredentials } from "../../src/security/grpc-credentials.js";
import { loadTlsMaterial } from "../../src/security/tls-material.js";
import { repoRoot } from "./processes.js";
import type { CertFiles } from "./tls-pki.js";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
}

const SCRUBBED = ["KVBRIDGE_TLS_CERT", "KVBRIDGE_TLS_KEY", "KVBRIDGE_TLS_CA", "KVBRIDGE_TLS_SERVER_NAME", "KVBRIDGE_ALLOW_PLAINTEXT_UCX", "KVBRIDGE_ADMIN_TOKEN", "KVBRIDGE_NODES"];

/** Runs `src/cli/<script>` from the sources to its exit, bounded by timeoutMs. */
export function runCli(script: "kvbridge.ts" | "kvctl.ts", args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env };
    for (const k of SCRUBBED) delete base[k];
    const t0 = performance.now();
    const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "src/cli", script), ...args], {
      cwd: repoRoot,
      env: { ...base, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
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
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

export interface TlsInspect {
  /** The node's KvReceiver service (refusal checks, requests held open). */
  receiver: ReceiverClient;
  inspect: InspectClient;
  stats(): Promise<Stats__Output>;
  close(): void;
}

/** KvReceiver and Inspect clients of `target` with the given certificate (and name to expect), or with `credentials` as is. */
export function tlsNodeClients(target: string, files: (CertFiles & { serverName?: string }) | grpc.ChannelCredentials): TlsInspect {
  const creds = files instanceof grpc.ChannelCredentials ? files : grpcChannelCredentials(loadTlsMaterial(files)!);
  const receiver = new ReceiverClient(target, creds);
  const inspect = new InspectClient(target, creds);
  return {
    receiver,
    inspect,
    stats: () => inspect.getStats({}, { timeoutMs: 10_000 }),
    close() {
      receiver.close();
      inspect.close();
    },
  };
}
