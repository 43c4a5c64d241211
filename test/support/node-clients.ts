// gRPC clients of a running node for tests: the typed ReceiverClient and InspectClient, with polling
// of the node's pool statistics until a condition holds.
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

export interface NodeClients {
  receiver: ReceiverClient;
  inspect: InspectClient;
  /** Deadline for the calls below (and a convenient one for callers of receiver/inspect). */
  readonly timeoutMs: number;
  stats(): Promise<Stats__Output>;
  /** Polls until `pred(stats)` holds, at most timeoutMs; returns the last stats. */
  waitForStats(pred: (s: Stats__Output) => boolean, timeoutMs?: number): Promise<Stats__Output>;
  close(): void;
}

export function nodeClients(target: string, timeoutMs = 10_000): NodeClients {
  const receiver = new ReceiverClient(target);
  const inspect = new InspectClient(target);
  const stats = (): Promise<Stats__Output> => inspect.getStats({}, { timeoutMs });
  return {
    receiver,
    inspect,
    timeoutMs,
    stats,
    async waitForStats(pred, waitMs = 20_000) {
      const deadline = Date.now() + waitMs;
      let s = await stats();
      while (!pred(s) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        s = await stats();
      }
      if (!pred(s)) process.stderr.write(`waitForStats: condition still false after ${waitMs} ms: ${JSON.stringify(s)}\n`);
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
