// Structured error details (reason, param, generation, limit) cross a real grpc-js call on loopback:
// a handler throws a KvbridgeError, the typed client gets it back with the same code and details;
// what a peer sends that is not a valid detail is dropped, never trusted.
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError, REASON_KINDS, type ErrorDetails } from "../../src/errors/kvbridge-error.js";
import { CODE_METADATA_KEY, DETAILS_METADATA_KEY, toServiceError } from "../../src/wire/error-status.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

/** What the next Hello answers with: a KvbridgeError, or a raw status a hostile server might send. */
let answer: () => Partial<grpc.StatusObject> = () => toServiceError(new KvbridgeError("INTERNAL", "unset"));
let server: grpc.Server;
let client: ReceiverClient;

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(kvbridgeV1().KvReceiver.service, {
    Hello: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(answer(), null),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  client = new ReceiverClient(`127.0.0.1:${port}`);
});

afterAll(() => {
  client.close();
  server.forceShutdown();
});

async function helloError(): Promise<KvbridgeError> {
  const err = await client.hello({ protocolVersion: 1 }, { timeoutMs: 5_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KvbridgeError);
  return err as KvbridgeError;
}

function rawStatus(code: grpc.status, entries: Array<[string, string | Buffer]>): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of entries) metadata.set(k, v);
  return { code, details: "raw", metadata };
}

describe("error details over gRPC", () => {
  it("a receiver_restarted error arrives with its code, reason and generation", async () => {
    answer = () => toServiceError(new KvbridgeError("FAILED_PRECONDITION", "receiver restarted", { details: { reason: "receiver_restarted", generation: 7 } }));
    const e = await helloError();
    expect(e.code).toBe("FAILED_PRECONDITION");
    expect(e.remote).toBe(true);
    expect(e.details).toEqual({ reason: "receiver_restarted", generation: 7 });
  });

  it("a param with non-ASCII and control characters arrives unchanged", async () => {
    const param = "messages[2].content \u00e9\u4e2d\u001b[2J\n";
    answer = () => toServiceError(new KvbridgeError("INVALID_ARGUMENT", "bad message", { details: { reason: "prompt_too_long", param, limit: 1_048_576 } }));
    const e = await helloError();
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details).toEqual({ reason: "prompt_too_long", param, limit: 1_048_576 });
  });

  it("an error without details arrives with empty details and sends no details trailer", async () => {
    let sent: grpc.Metadata | undefined;
    answer = () => {
      const s = toServiceError(new KvbridgeError("NOT_FOUND", "no such request"));
      sent = s.metadata;
      return s;
    };
    const e = await helloError();
    expect(e.code).toBe("NOT_FOUND");
    expect(e.details).toEqual({});
    expect(sent?.get(DETAILS_METADATA_KEY)).toEqual([]);
  });

  it("any valid details survive the round trip exactly", async () => {
    const details = fc.record(
      {
        reason: fc.constantFrom(...REASON_KINDS),
        param: fc.string({ minLength: 1, maxLength: 200, unit: "binary" }).filter((p) => p.length <= 200),
        generation: fc.nat(),
        limit: fc.maxSafeNat(),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(details, async (d: ErrorDetails) => {
        answer = () => toServiceError(new KvbridgeError("RESOURCE_EXHAUSTED", "x", { details: d }));
        const e = await helloError();
        expect(e.details).toEqual(d);
      }),
      { numRuns: 60 },
    );
  });

  it("a param longer than 200 characters is cut, never inside a surrogate pair", async () => {
    answer = () => toServiceError(new KvbridgeError("INVALID_ARGUMENT", "x", { details: { param: "p".repeat(5_000) } }));
    expect((await helloError()).details.param).toBe("p".repeat(200));
    answer = () => toServiceError(new KvbridgeError("INVALID_ARGUMENT", "x", { details: { param: "p".repeat(199) + "\u{1F600}".repeat(3) } }));
    expect((await helloError()).details.param).toBe("p".repeat(199));
  });

  it("details a peer sends that are not ours (unknown reason, wrong types, negative numbers) are dropped", async () => {
    const bogus = { reason: "retry_forever", param: 42, generation: -1, limit: 1.5, extra: "x" };
    answer = () => rawStatus(grpc.status.FAILED_PRECONDITION, [[CODE_METADATA_KEY, "FAILED_PRECONDITION"], [DETAILS_METADATA_KEY, Buffer.from(JSON.stringify(bogus))]]);
    const e = await helloError();
    expect(e.code).toBe("FAILED_PRECONDITION");
    expect(e.details).toEqual({});
  });

  it("unparseable details are dropped and the code still arrives", async () => {
    answer = () => rawStatus(grpc.status.RESOURCE_EXHAUSTED, [[CODE_METADATA_KEY, "RESOURCE_EXHAUSTED"], [DETAILS_METADATA_KEY, Buffer.from("{not json")]]);
    const e = await helloError();
    expect(e.code).toBe("RESOURCE_EXHAUSTED");
    expect(e.details).toEqual({});
  });

  it("a carried code that is not a kvbridge code (an inherited property name) is not trusted", async () => {
    answer = () => rawStatus(grpc.status.INTERNAL, [[CODE_METADATA_KEY, "constructor"], [DETAILS_METADATA_KEY, Buffer.from(JSON.stringify({ reason: "draining" }))]]);
    const e = await helloError();
    expect(e.remote).toBe(false);
    expect(e.code).toBe("UNAVAILABLE");
    expect(e.details).toEqual({});
  });
});
