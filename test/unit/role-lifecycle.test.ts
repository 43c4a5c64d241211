// RoleLifecycle, the one lifecycle of every role: a failed start releases exactly what it acquired,
// in reverse order; close runs each cleanup once however often or concurrently it is called; a drain
// is woken by the work ending (it never polls) and is bounded; a close during start wins.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { RoleLifecycle } from "../../src/roles/lifecycle.js";

describe("RoleLifecycle", () => {
  it("a failed start releases what was acquired, newest first, and rethrows the start's own error", async () => {
    const released: string[] = [];
    const life = new RoleLifecycle(silentLogger(), "test role", () => 0);
    const failure = new KvbridgeError("UNAVAILABLE", "metrics port in use");
    await expect(
      life.start(async () => {
        life.defer(() => void released.push("grpc server"));
        await Promise.resolve();
        life.defer(async () => {
          await new Promise((r) => setTimeout(r, 5));
          released.push("sender");
        });
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(released).toEqual(["sender", "grpc server"]);
    expect(life.phase).toBe("closed");
    expect(life.accepting).toBe(false);
  });

  it("close is idempotent and concurrent closes share one run; a failing cleanup does not stop the others", async () => {
    let runs = 0;
    const life = new RoleLifecycle(silentLogger(), "test role", () => 0);
    await life.start(async () => {
      life.defer(() => void runs++);
      life.defer(() => {
        throw new Error("this cleanup fails");
      });
    });
    expect(life.accepting).toBe(true);
    const [a, b] = [life.close(), life.close()];
    expect(a).toBe(b);
    await a;
    await life.close();
    expect(runs).toBe(1);
    expect(life.phase).toBe("closed");
    expect(() => life.defer(() => undefined)).toThrow(KvbridgeError);
  });

  it("a drain stops admissions at once and is woken by the last request ending, without polling", async () => {
    let inFlight = 2;
    let asked = 0;
    let closed = false;
    const life = new RoleLifecycle(silentLogger(), "test role", () => {
      asked++;
      return inFlight;
    });
    await life.start(async () => life.defer(() => void (closed = true)));
    const t0 = performance.now();
    const draining = life.drain(60_000);
    expect(life.accepting).toBe(false);
    expect(life.phase).toBe("draining");
    await new Promise((r) => setTimeout(r, 300));
    inFlight = 1;
    life.workEnded();
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    const askedBefore = asked;
    inFlight = 0;
    life.workEnded();
    expect(await draining).toBe(0);
    expect(closed).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2_000);
    // A poll every 50 ms would have asked ~7 times in those 350 ms; only the wake-ups ask.
    expect(askedBefore).toBeLessThanOrEqual(4);
  });

  it("a drain is bounded: at the deadline it closes and says how much was still in flight", async () => {
    let closed = false;
    const life = new RoleLifecycle(silentLogger(), "test role", () => 3);
    await life.start(async () => life.defer(() => void (closed = true)));
    const t0 = performance.now();
    expect(await life.drain(100)).toBe(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect(closed).toBe(true);
  });

  it("a close that comes while the role is starting wins: start fails and everything is released", async () => {
    const released: string[] = [];
    const life = new RoleLifecycle(silentLogger(), "test role", () => 0);
    let proceed!: () => void;
    const gate = new Promise<void>((r) => (proceed = r));
    const starting = life.start(async () => {
      life.defer(() => void released.push("first"));
      await gate;
      life.defer(() => void released.push("second"));
      return "built";
    });
    await life.close();
    proceed();
    await expect(starting).rejects.toMatchObject({ code: "CANCELLED" });
    expect(released).toEqual(["first"]);
    expect(life.accepting).toBe(false);
  });

  it("a drain that comes while starting keeps the role from ever serving", async () => {
    const life = new RoleLifecycle(silentLogger(), "test role", () => 0);
    let proceed!: () => void;
    const gate = new Promise<void>((r) => (proceed = r));
    const starting = life.start(async () => {
      await gate;
      return "built";
    });
    await life.drain(1_000);
    proceed();
    await expect(starting).rejects.toMatchObject({ code: "CANCELLED" });
    expect(life.phase).toBe("closed");
  });
});
