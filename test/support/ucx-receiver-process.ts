// A UCX receiver in its own process, for integration tests: allocates a pool, serves it with
// UcxReceiverDataPlane, prints its offer as one line, then answers JSON commands on stdin
// (sha256 of slots, progress stats, close). Replies are single lines prefixed UCX_REPLY.
//   node --import tsx test/support/ucx-receiver-process.ts <slots> <slotBytes> <allocator: ucx|mmap> [ucxConfig JSON] [allowEmulatedPuts]
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { allocatePoolMemory } from "../../src/memory/mapped-pool.js";
import { UcxReceiverDataPlane } from "../../src/transport/ucx/index.js";

const [slotsArg, slotBytesArg, allocatorArg, configArg, emulatedArg] = process.argv.slice(2);
const slots = Number(slotsArg);
const slotBytes = Number(slotBytesArg);
const allocator = allocatorArg === "mmap" ? "mmap" : "ucx";
const ucxConfig = configArg ? (JSON.parse(configArg) as Record<string, string>) : undefined;

const { memory, warning } = allocatePoolMemory({ slots, slotBytes, lock: "auto", allocator, ucx: { ucxConfig } });
if (warning) console.error(`pool warning: ${warning}`);
const plane = UcxReceiverDataPlane.create(memory, { ucxConfig, allowEmulatedPuts: emulatedArg === "allowEmulatedPuts" });
const offer = plane.offer();
if (offer.kind !== "ucx") throw new Error("unexpected offer kind");
console.log(
  "UCX_OFFER " +
    JSON.stringify({
      workerAddress: offer.workerAddress.toString("base64"),
      rkey: offer.rkey.toString("base64"),
      baseAddress: offer.baseAddress.toString(),
      pid: process.pid,
      allocator,
      ucxAllocatedPool: plane.ucxAllocatedPool,
      warning: plane.warning,
      directness: plane.directness(),
      locked: memory.locked,
    }),
);

type Command =
  | { id: number; cmd: "sha256"; slots: Array<{ slot: number; length: number }> }
  | { id: number; cmd: "stats" }
  | { id: number; cmd: "close" };

let closed = false;
const shutdown = async (): Promise<void> => {
  if (closed) return;
  closed = true;
  await plane.close();
  memory.close();
};

createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line) as Command;
  const reply = (body: object): void => {
    console.log("UCX_REPLY " + JSON.stringify({ id: c.id, ...body }));
  };
  switch (c.cmd) {
    case "sha256":
      reply({ digests: c.slots.map((s) => createHash("sha256").update(memory.slotView(s.slot, s.length)).digest("hex")) });
      return;
    case "stats": {
      const cpu = process.cpuUsage();
      reply({ ...plane.progressStats, cpuMs: (cpu.user + cpu.system) / 1000 });
      return;
    }
    case "close":
      void shutdown().then(() => {
        reply({ closed: true });
        process.exit(0);
      });
      return;
  }
});
process.stdin.on("end", () => void shutdown().then(() => process.exit(0)));
