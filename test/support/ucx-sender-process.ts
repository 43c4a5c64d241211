// A UCX sender in its own process, for tests that kill it: connects to the offer given as JSON
// (base64 buffers, decimal baseAddress), then writes 1 MiB chunks into the first 16 slots of
// 1 MiB each, forever. Prints UCX_SENDER_WRITING after the first writeAll.
//   node --import tsx test/support/ucx-sender-process.ts '<offer JSON>' '<ucxConfig JSON>'
import { randomBytes } from "node:crypto";
import { UcxSenderTransport } from "../../src/transport/ucx/index.js";

const o = JSON.parse(process.argv[2]!) as { workerAddress: string; rkey: string; baseAddress: string };
const ucxConfig = JSON.parse(process.argv[3] ?? "{}") as Record<string, string>;
const sender = UcxSenderTransport.create({ ucxConfig });
const ch = await sender.connect(
  { kind: "ucx", workerAddress: Buffer.from(o.workerAddress, "base64"), rkey: Buffer.from(o.rkey, "base64"), baseAddress: BigInt(o.baseAddress) },
  AbortSignal.timeout(10_000),
);
const SLOT = 1024 * 1024;
const writes = Array.from({ length: 16 }, (_, i) => ({ slot: i, poolOffset: i * SLOT, token: Buffer.alloc(8), data: randomBytes(SLOT) }));
for (let round = 0; ; round++) {
  await ch.writeAll(`endless-${round}`, writes, new AbortController().signal);
  if (round === 0) console.log("UCX_SENDER_WRITING");
}
