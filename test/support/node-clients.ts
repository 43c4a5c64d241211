// gRPC clients of a running node for tests: typed calls to KvReceiver and Inspect.
import * as grpc from "@grpc/grpc-js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";
import { callUnary } from "../../src/wire/unary.js";

export interface NodeClients {
  receiver: grpc.Client;
  inspect: grpc.Client;
  call<Res>(client: grpc.Client, method: string, req: object, timeoutMs?: number): Promise<Res>;
  stats(): Promise<Stats__Output>;
  /** Polls until `pred(stats)` holds, at most timeoutMs; returns the last stats. */
  waitForStats(pred: (s: Stats__Output) => boolean, timeoutMs?: number): Promise<Stats__Output>;
  close(): void;
}

export function nodeClients(target: string): NodeClients {
  const v1 = kvbridgeV1();
  const receiver = new v1.KvReceiver(target, grpc.credentials.createInsecure());
  const inspect = new v1.Inspect(target, grpc.credentials.createInsecure());
  const call = <Res>(client: grpc.Client, method: string, req: object, timeoutMs = 10_000): Promise<Res> =>
    callUnary<object, Res>(client, method, req, { timeoutMs });
  const stats = (): Promise<Stats__Output> => call<Stats__Output>(inspect, "GetStats", {});
  return {
    receiver,
    inspect,
    call,
    stats,
    async waitForStats(pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      let s = await stats();
      while (!pred(s) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        s = await stats();
      }
      if (!pred(s)) process.stderr.write(`waitForStats: condition still false after ${timeoutMs} ms: ${JSON.stringify(s)}\n`);
      return s;
    },
    close() {
      receiver.close();
      inspect.close();
    },
  };
}

/** Pool usage is back at baseline: nothing allocated, reserved, quarantined or held by a request. */
export function atBaseline(s: Stats__Output): boolean {
  return s.activeRequests === 0 && s.slotsWriting === 0 && s.slotsReserved === 0 && s.slotsQuarantined === 0 && s.slotsFree + s.slotsReady === s.slotsTotal;
}
