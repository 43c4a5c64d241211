// A real prefill/decode/router cluster of separate processes on loopback, on the project's model.
import { spawnKvbridge, type RunningProcess } from "./processes.js";

export interface PdCluster {
  prefill: RunningProcess;
  decode: RunningProcess;
  router: RunningProcess;
  prefillGrpc: string;
  decodeGrpc: string;
  url: string;
  stop(): Promise<void>;
}

export interface PdClusterOptions {
  decodeArgs?: string[];
  prefillArgs?: string[];
  prefillEnv?: NodeJS.ProcessEnv;
}

export async function startPdCluster(o: PdClusterOptions = {}): Promise<PdCluster> {
  const decode = spawnKvbridge(["decode", "--listen", "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--pool-slots", "256", "--slot-bytes", "512KiB", ...(o.decodeArgs ?? [])]);
  const prefill = spawnKvbridge(["prefill", "--listen", "127.0.0.1:0", ...(o.prefillArgs ?? [])], o.prefillEnv);
  try {
    // The decode node listens at once and serves requests once its engine has loaded.
    const [d, p] = await Promise.all([decode.waitForLine(/decode node serving/, 90_000), prefill.waitForLine(/prefill node serving/, 90_000)]);
    await decode.waitForLine(/engine loaded/, 90_000);
    const decodeGrpc = (JSON.parse(d) as { grpc: string }).grpc;
    const prefillGrpc = (JSON.parse(p) as { grpc: string }).grpc;
    const router = spawnKvbridge(["router", "--listen", "127.0.0.1:0", "--prefill", prefillGrpc, "--decode", decodeGrpc]);
    const r = await router.waitForLine(/router serving/, 60_000);
    const url = (JSON.parse(r) as { url: string }).url;
    return {
      prefill,
      decode,
      router,
      prefillGrpc,
      decodeGrpc,
      url,
      async stop() {
        await Promise.all([router.stop(), prefill.stop(), decode.stop()]);
      },
    };
  } catch (err) {
    await Promise.all([prefill.kill9(), decode.kill9()]);
    throw err;
  }
}
