// The receiving end of bench/ucx-bench.ts, in its own process as a decode node would be: a pool
// served by UcxReceiverDataPlane. Prints the offer as one JSON line; exits when stdin closes.
//   ucx-bench-receiver <slots> <slotBytes> <ucx|mmap> <UCX_TLS>
import { allocatePoolMemory } from "../src/memory/mapped-pool.js";
import { UcxReceiverDataPlane } from "../src/transport/ucx/index.js";

const [slots, slotBytes, allocator, tls] = process.argv.slice(2);
const ucxConfig = { TLS: tls ?? "all" };
const { memory } = allocatePoolMemory({
  slots: Number(slots),
  slotBytes: Number(slotBytes),
  lock: "auto",
  allocator: allocator === "mmap" ? "mmap" : "ucx",
  ucx: { ucxConfig },
});
const plane = UcxReceiverDataPlane.create(memory, { ucxConfig });
const offer = plane.offer();
if (offer.kind !== "ucx") throw new Error("not a UCX offer");
console.log(
  "UCX_BENCH_OFFER " +
    JSON.stringify({ workerAddress: offer.workerAddress.toString("base64"), rkey: offer.rkey.toString("base64"), baseAddress: offer.baseAddress.toString() }),
);
process.stdin.resume();
process.stdin.on("end", () => {
  void plane.close().then(() => {
    memory.close();
    process.exit(0);
  });
});
