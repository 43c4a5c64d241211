// A sender's lease renewal: one Renew in flight at most however long the last one takes (a stalled
// connection), and none after the receiver said the lease expired.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { startLeaseRenewal } from "../../src/transfer/lease-renewal.js";

describe("startLeaseRenewal", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("never has two Renews in flight: a stalled one holds the next until it answers", async () => {
    const pending: Array<() => void> = [];
    const renew = vi.fn(() => new Promise<void>((resolve) => pending.push(resolve)));
    const stop = startLeaseRenewal(renew, 100);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(renew).toHaveBeenCalledTimes(1);
    pending[0]!();
    await vi.advanceTimersByTimeAsync(100);
    expect(renew).toHaveBeenCalledTimes(2);
    stop();
    pending[1]!();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(renew).toHaveBeenCalledTimes(2);
  });

  it("stops after the receiver answers lease_expired, and keeps going after other failures", async () => {
    let answer: () => Promise<void> = () => Promise.reject(new KvbridgeError("UNAVAILABLE", "unreachable"));
    const renew = vi.fn(() => answer());
    startLeaseRenewal(renew, 100);
    await vi.advanceTimersByTimeAsync(300);
    expect(renew).toHaveBeenCalledTimes(3);
    answer = () => Promise.reject(new KvbridgeError("FAILED_PRECONDITION", "lease expired", { details: { reason: "lease_expired" } }));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(renew).toHaveBeenCalledTimes(4);
  });
});
