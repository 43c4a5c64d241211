// Status messages as grpc-js sends them: well-formed (grpc-js percent-encodes them with encodeURI,
// which throws on a lone surrogate) and cut at 1024 characters without splitting a pair.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { MAX_STATUS_DETAILS, toServiceError, wellFormed } from "../../src/wire/error-status.js";

describe("status details", () => {
  it("replace lone surrogates with U+FFFD, so encodeURI accepts them", () => {
    const details = toServiceError(new KvbridgeError("NOT_FOUND", "request a\ud800b ended (\udc00)")).details!;
    expect(details).toBe("request a\ufffdb ended (\ufffd)");
    expect(() => encodeURI(details)).not.toThrow();
  });

  it("cut long messages at a pair boundary and say how much was cut", () => {
    const message = "x" + "\u{1F600}".repeat(1_000);
    const details = toServiceError(new KvbridgeError("INVALID_ARGUMENT", message)).details!;
    expect(details).toMatch(/\.\.\. \(\d+ more characters cut\)$/);
    const kept = details.slice(0, details.indexOf("..."));
    expect(kept.length).toBeLessThanOrEqual(MAX_STATUS_DETAILS);
    expect(kept).toBe(wellFormed(kept));
    expect(() => encodeURI(details)).not.toThrow();
  });
});
