// A sender process that dies by its own SIGKILL around its UCX data-plane COMMIT, for the kill test:
// Hello + Alloc over gRPC, the request's chunks written into the node's pool over UCX, then
// writeAndCommit, and SIGKILL after `turns` event-loop turns (0: right after the COMMIT was handed
// over; a few: while it travels or its answer is on the way). Prints ALLOCATED before committing.
//   node --import tsx test/support/ucx-commit-kill-sender.ts <grpc target> <requestId> <turns> <ucxConfig JSON>
import { randomBytes } from "node:crypto";
import { chunkCrc32 } from "../../src/transfer/commit-proof.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

const [target, requestId, turnsArg, configArg] = process.argv.slice(2) as [string, string, string, string];
const turns = Number(turnsArg);
const T = { timeoutMs: 10_000 };
const client = new ReceiverClient(target);
const hello = await client.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["ucx"], senderId: `kill-${process.pid}`, capabilities: ["data_plane_commit"] }, T);
const offer = hello.offers.map(offerFromWire).find((o) => o.kind === "ucx")!;
const sender = UcxSenderTransport.create({ ucxConfig: JSON.parse(configArg) as Record<string, string> });
const ch = await sender.connect(offer, AbortSignal.timeout(10_000));
const keys = Array.from({ length: 4 }, (_, i) => `${requestId}-k${i}`);
const data = keys.map(() => randomBytes(200_000));
const a = await client.alloc({ requestId, keys, sizes: data.map((d) => d.length), batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: hello.generation }, T);
const writes = a.remoteIndexes.map((slot, i) => ({ slot, poolOffset: slot * hello.slotBytes, token: a.writeTokens[i]!, data: data[i]! }));
// The first three chunks first; the last one carries the COMMIT behind it.
await ch.writeAll(requestId, writes.slice(0, 3), new AbortController().signal);
console.log("ALLOCATED");
void ch.writeAndCommit!(requestId, writes.slice(3), keys.map((key, i) => ({ key, crc32: chunkCrc32(data[i]!) })), new AbortController().signal);
let left = turns;
const tick = (): void => {
  if (left-- <= 0) process.kill(process.pid, "SIGKILL");
  else setImmediate(tick);
};
tick();
