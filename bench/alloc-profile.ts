// A CPU profile of a decode node answering Allocs of 64 keys at 100 concurrent callers (the shape of
// alloc-bench.ts's c100 phase), for finding where the server's time goes:
//   npm run build && node dist/bench/alloc-profile.js [calls] [--bare] [--out file.cpuprofile]
// profiles the timed calls only (node:inspector, after a warm-up), prints the CPU time per call
// (a figure that moves less than the wall rate on a shared machine), and writes the profile for
// `node dist/bench/cpu-profile-summary.js <file>`. `--bare` runs the bare grpc-js baseline (the same
// messages, a handler that does nothing) instead. The client runs in the same process, as in the bench.

import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import type { KvReceiverHandlers } from "../src/wire/generated/kvbridge/v1/KvReceiver.js";
import { startDecodeRole } from "../src/roles/decode-role.js";
import { NODE_SERVER_OPTIONS } from "../src/services/grpc-server.js";
import { silentLogger } from "../src/observability/logger.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../src/wire/proto.js";
import { ReceiverClient } from "../src/wire/receiver-client.js";

const total = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 4000);
const bareOnly = process.argv.includes("--bare");
const outArg = process.argv.indexOf("--out");
const out = (outArg > 0 ? process.argv[outArg + 1] : undefined) ?? `/tmp/alloc-profile-${bareOnly ? "bare" : "alloc"}.cpuprofile`;
const concurrency = 100;

const node = await startDecodeRole({
  listen: { host: "127.0.0.1", port: 0 },
  dataListen: { host: "127.0.0.1", port: 0 },
  poolSlots: 64 * total + 64,
  slotBytes: 64,
  leaseMs: 60_000,
  quarantineMs: 0,
  transport: "tcp",
  lockMemory: false,
  logger: silentLogger(),
});
const bare = new grpc.Server(NODE_SERVER_OPTIONS);
const reply = {
  remoteIndexes: Array.from({ length: 64 }, (_, i) => i),
  alreadySentIndexes: [],
  writeTokens: Array.from({ length: 64 }, () => randomBytes(8)),
  slotBytes: 64,
  leaseExpiresAtMs: Date.now(),
};
const bareAlloc: KvReceiverHandlers["Alloc"] = (_call, cb) => cb(null, reply);
bare.addService(kvbridgeV1().KvReceiver.service, { Alloc: bareAlloc });
const barePort = await new Promise<number>((res, rej) => bare.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
const client = new ReceiverClient(bareOnly ? `127.0.0.1:${barePort}` : node.grpcAddress);
const control = new ReceiverClient(node.grpcAddress);
const hello = await control.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "" }, { timeoutMs: 5_000 });
const keys = (id: string): string[] => Array.from({ length: 64 }, (_, k) => `${id}-${"k".repeat(40)}-${k}`);
async function phase(tag: string, calls: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= calls) return;
        const id = `${tag}-${i}`;
        await client.alloc({ requestId: id, keys: keys(id), sizes: Array(64).fill(64), fingerprint: "", generation: hello.generation }, { timeoutMs: 60_000 });
      }
    }),
  );
}
// Warm-up (JIT, connection, pool pages), then the profiled calls.
await phase("warm", 500);
// The node holds at most 4096 requests: the warm-up's go before the profiled calls.
if (!bareOnly) for (let i = 0; i < 500; i++) await control.abort({ requestId: `warm-${i}`, reason: "warm-up" }, { timeoutMs: 30_000 });
const session = new Session();
session.connect();
await session.post("Profiler.enable");
await session.post("Profiler.setSamplingInterval", { interval: 200 });
await session.post("Profiler.start");
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await phase("p", total);
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const { profile } = await session.post("Profiler.stop");
writeFileSync(out, JSON.stringify(profile));
session.disconnect();
const cpuUs = (cpu.user + cpu.system) / total;
process.stderr.write(`${bareOnly ? "bare" : "alloc"}: ${total} calls at ${concurrency} callers in ${s.toFixed(2)} s = ${(total / s).toFixed(0)} calls/s, ${cpuUs.toFixed(0)} us CPU per call (client and server); profile ${out}\n`);
client.close();
control.close();
bare.forceShutdown();
await node.close();
