// Coalesced Release for consumers outside the decode node (kvbridge send, benches): ids handed in
// while one Release call is in flight go together in the next (ReleaseRequest.request_ids), so under
// load a consumer spends one control-plane call per batch of requests instead of one per request.
// A receiver of protocol 1 (which ignores request_ids) gets one call per id.

import { KvbridgeError, toKvbridgeError, type ErrorCode } from "../errors/kvbridge-error.js";
import { MAX_RELEASE_IDS } from "../wire/proto.js";
import type { ReceiverClient } from "../wire/receiver-client.js";

const CODES: ReadonlySet<string> = new Set<ErrorCode>(["NOT_FOUND", "FAILED_PRECONDITION", "INVALID_ARGUMENT", "UNAVAILABLE", "INTERNAL"]);

interface Waiter {
  requestId: string;
  resolve: () => void;
  reject: (err: KvbridgeError) => void;
}

export class ReleaseBatcher {
  private readonly client: ReceiverClient;
  private readonly timeoutMs: number;
  private readonly batchRelease: boolean;
  private pending: Waiter[] = [];
  private inFlight = false;
  /** Release calls made (for reports and tests). */
  calls = 0;

  /** `batchRelease`: the receiver speaks protocol 2 (takes request_ids). */
  constructor(client: ReceiverClient, timeoutMs: number, batchRelease: boolean) {
    this.client = client;
    this.timeoutMs = timeoutMs;
    this.batchRelease = batchRelease;
  }

  /** Resolves once `requestId` is released; rejects with why it was not (as Release would). */
  release(requestId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ requestId, resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, this.batchRelease ? MAX_RELEASE_IDS : 1);
        await this.send(batch);
      }
    } finally {
      this.inFlight = false;
    }
  }

  private async send(batch: Waiter[]): Promise<void> {
    this.calls++;
    try {
      if (!this.batchRelease) {
        await this.client.release({ requestId: batch[0]!.requestId }, { timeoutMs: this.timeoutMs });
        batch[0]!.resolve();
        return;
      }
      const res = await this.client.release({ requestIds: batch.map((w) => w.requestId) }, { timeoutMs: this.timeoutMs });
      const failed = new Map(res.failures.map((f) => [f.requestId, f]));
      for (const w of batch) {
        const f = failed.get(w.requestId);
        if (f) w.reject(new KvbridgeError(CODES.has(f.code) ? (f.code as ErrorCode) : "INTERNAL", `release of ${w.requestId}: ${f.message}`, { remote: true }));
        else w.resolve();
      }
    } catch (err) {
      const e = toKvbridgeError(err);
      for (const w of batch) w.reject(e);
    }
  }
}
