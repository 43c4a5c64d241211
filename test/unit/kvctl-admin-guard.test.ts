// The guard in front of kvctl's admin actions: a configured token must match exactly; without one,
// only loopback callers pass. Refusals say what to do.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { checkAdminCaller, isLoopbackHost, peerHost } from "../../src/services/admin-service.js";

function refusal(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KvbridgeError);
    expect((e as KvbridgeError).code).toBe("PERMISSION_DENIED");
    return (e as KvbridgeError).message;
  }
  throw new Error("expected PERMISSION_DENIED");
}

describe("admin guard", () => {
  it("reads the host out of grpc-js peer strings", () => {
    expect(peerHost("127.0.0.1:51234")).toBe("127.0.0.1");
    expect(peerHost("::1:51234")).toBe("::1");
    expect(peerHost("[::1]:51234")).toBe("::1");
    expect(peerHost("::ffff:127.0.0.1:80")).toBe("::ffff:127.0.0.1");
    expect(peerHost("10.1.2.3:9")).toBe("10.1.2.3");
    expect(peerHost("unknown")).toBe("unknown");
  });

  it("treats 127/8, ::1 and IPv4-mapped loopback as loopback, and nothing else", () => {
    for (const h of ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["10.0.0.1", "192.0.2.2", "::ffff:10.0.0.1", "fe80::1", "unknown", "", "127.0.0.1.evil", "localhost"]) expect(isLoopbackHost(h)).toBe(false);
  });

  it("without a token, admits loopback callers and refuses others with what to do", () => {
    expect(() => checkAdminCaller("n1", undefined, undefined, "127.0.0.1:5")).not.toThrow();
    expect(() => checkAdminCaller("n1", undefined, "anything", "[::1]:5")).not.toThrow();
    const msg = refusal(() => checkAdminCaller("n1", undefined, undefined, "10.0.0.9:5"));
    expect(msg).toMatch(/no admin token.*loopback only.*10\.0\.0\.9.*--admin-token/);
  });

  it("with a token, requires exactly that token, from loopback too", () => {
    expect(() => checkAdminCaller("n1", "s3cret", "s3cret", "10.0.0.9:5")).not.toThrow();
    expect(refusal(() => checkAdminCaller("n1", "s3cret", undefined, "127.0.0.1:5"))).toMatch(/requires an admin token.*KVBRIDGE_ADMIN_TOKEN/);
    expect(refusal(() => checkAdminCaller("n1", "s3cret", "s3cre", "127.0.0.1:5"))).toMatch(/does not match/);
    expect(refusal(() => checkAdminCaller("n1", "s3cret", "s3cret ", "127.0.0.1:5"))).toMatch(/does not match/);
  });
});
