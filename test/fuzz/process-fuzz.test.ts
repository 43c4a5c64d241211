// The same fuzzers against a real `kvbridge decode --no-engine` process: gRPC inputs (field-level and
// byte-mutated) and TCP data-port episodes over loopback. Out of process the pool cannot be read, so
// the bytes are checked through ChecksumKeys of every committed chunk, and the end state through
// Inspect: nothing held, and the process still running until it is asked to stop.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeProcessArgs } from "../support/fuzz-node.js";
import { GrpcFuzzer } from "../support/fuzz-grpc.js";
import { FuzzTally, fuzzSeed } from "../support/fuzz-tally.js";
import { TcpFuzzer } from "../support/fuzz-tcp.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";
import { atBaseline, nodeClients } from "../support/node-clients.js";

const FIELD_INPUTS = 150;
const RAW_INPUTS = 150;
const EPISODES = 100;
/** Per run; keeps a slow, shared machine within the CI budget (the counts that ran are printed). */
const CAP_MS = 3_000;

let proc: DecodeProcess;
const seed = fuzzSeed();
const tally = new FuzzTally(seed);

beforeAll(async () => {
  proc = await startDecodeProcess(decodeProcessArgs({ poolSlots: 16, slotBytes: 4096, leaseMs: 20_000, quarantineMs: 0, holdMs: 20_000 }), { KVBRIDGE_ADMIN_TOKEN: "" });
});

afterAll(async () => {
  await proc?.proc.kill9();
  console.log(tally.report("fuzz against a kvbridge decode process"));
});

describe("a real decode process under hostile input", () => {
  it(`${FIELD_INPUTS} field-level and ${RAW_INPUTS} byte-mutated gRPC inputs (at most ${CAP_MS / 1000} s each) over KvReceiver, Inspect and Admin: clear statuses, the process answering after each`, async () => {
    const fuzzer = await GrpcFuzzer.open({
      targets: { KvReceiver: proc.grpc, Inspect: proc.grpc, Admin: proc.grpc },
      services: ["KvReceiver", "Inspect", "Admin"],
      tally,
      namePrefix: `pf${seed & 0xffff}`,
    });
    try {
      expect(fuzzer.ctx.slotsTotal).toBe(16);
      await fuzzer.runFieldLevel(FIELD_INPUTS, seed, CAP_MS);
      await fuzzer.runRawBytes(RAW_INPUTS, seed + 1, CAP_MS);
      expect(fuzzer.deadReason).toBeNull();
      expect(tally.inputs).toBeGreaterThan((FIELD_INPUTS + RAW_INPUTS) / 4);
      expect(tally.findings, tally.report("grpc")).toEqual([]);
      const stats = await fuzzer.releaseEverything(10_000);
      expect(stats).toMatchObject({ activeRequests: 0, slotsWriting: 0, slotsReserved: 0 });
    } finally {
      fuzzer.close();
    }
  });

  it(`${EPISODES} TCP data-port episodes (at most ${CAP_MS / 1000} s): exact NACK and CLOSE codes, torn connections abort only their own requests, committed chunks read back byte-exact`, async () => {
    const fuzzer = await TcpFuzzer.open({ target: { grpcAddress: proc.grpc, dataPort: proc.dataPort }, tally, namePrefix: `pt${seed & 0xffff}` });
    try {
      await fuzzer.run(EPISODES, seed + 2, CAP_MS);
      expect(fuzzer.counts.episodes).toBeGreaterThan(EPISODES / 4);
      expect(tally.findings, tally.report("tcp")).toEqual([]);
      expect(tally.outcomes()["tcp committed chunks"]?.checked ?? 0).toBeGreaterThan(0);
      await fuzzer.releaseAll();
    } finally {
      fuzzer.close();
    }
  });

  it("afterwards the pool is at baseline, the process still runs, and it exits cleanly on SIGTERM", async () => {
    const clients = nodeClients(proc.grpc);
    try {
      const s = await clients.waitForStats(atBaseline, 20_000);
      expect(atBaseline(s)).toBe(true);
    } finally {
      clients.close();
    }
    expect(proc.proc.child.exitCode).toBeNull();
    const exit = await proc.proc.stop(15_000);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
