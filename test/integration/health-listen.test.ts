// --health-listen: a plaintext endpoint with only grpc.health.v1, for kubelet probes in front of a
// node whose main port needs mTLS. It reports the node's real status and serves nothing else.
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { HealthClient } from "../../src/wire/health-client.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { startDecodeProcess, type DecodeProcess } from "../support/decode-process.js";

let decode: DecodeProcess;
let healthAddr: string;

beforeAll(async () => {
  decode = await startDecodeProcess(["--health-listen", "127.0.0.1:0"]);
  const line = decode.proc.lines.find((l) => l.includes("decode node serving"))!;
  healthAddr = (JSON.parse(line) as { health: string }).health;
});
afterAll(async () => {
  await decode?.proc.stop();
});

describe("plaintext health-only endpoint", () => {
  it("answers grpc.health.v1 Check with the node's status, and serves no other service", async () => {
    expect(healthAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(healthAddr).not.toBe(decode.grpc);
    const client = new HealthClient(healthAddr);
    const receiver = new ReceiverClient(healthAddr);
    try {
      expect(await client.check("", { timeoutMs: 5_000 })).toBe("SERVING");
      const err = await receiver.hello({ protocolVersion: 1 }, { timeoutMs: 5_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KvbridgeError);
      expect(((err as KvbridgeError).cause as { code?: number }).code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
      receiver.close();
    }
  });
});
