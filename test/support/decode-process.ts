// A real `kvbridge decode --no-engine` process on loopback, with its gRPC address parsed from its log.
import { spawnKvbridge, type RunningProcess } from "./processes.js";

export interface DecodeProcess {
  proc: RunningProcess;
  grpc: string;
  dataPort: number;
}

export async function startDecodeProcess(extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DecodeProcess> {
  const proc = spawnKvbridge(
    ["decode", "--no-engine", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "64", "--slot-bytes", "256KiB", ...extra],
    env,
  );
  const line = await proc.waitForLine(/decode node serving/, 60_000);
  const parsed = JSON.parse(line) as { grpc: string; offers: string[] };
  const tcp = parsed.offers.find((o) => o.startsWith("tcp://"));
  return { proc, grpc: parsed.grpc, dataPort: tcp ? Number(tcp.split(":").pop()) : 0 };
}
