// A kvbridge client pointed at something that is not the kvbridge node it expects: an HTTP/2 server
// that answers 404 or 400, and a gRPC server without the service. The caller gets a kvbridge code that says
// what is wrong with the address (UNAVAILABLE, INCOMPATIBLE), never INTERNAL, which would read as a
// kvbridge bug. Found by `npm run fuzz`: a Prefill whose decode target was such a server.
import * as grpc from "@grpc/grpc-js";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import type { GetStatsRequest__Output } from "../../src/wire/generated/kvbridge/v1/GetStatsRequest.js";
import type { Stats } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";

let httpServer: http2.Http2Server;
let httpPort = 0;
/** What the plain HTTP/2 server answers every request with. */
let httpStatus = 404;
let grpcServer: grpc.Server;
let grpcPort = 0;

beforeAll(async () => {
  httpServer = http2.createServer((_req, res) => {
    res.writeHead(httpStatus, { "content-type": "text/plain" });
    res.end("not here");
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  httpPort = (httpServer.address() as AddressInfo).port;

  grpcServer = new grpc.Server();
  // Inspect's GetStats only: KvReceiver is not there at all.
  const getStats: grpc.handleUnaryCall<GetStatsRequest__Output, Stats> = (_call, cb) => cb(null, {});
  grpcServer.addService(kvbridgeV1().Inspect.service, { GetStats: getStats });
  grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
});

afterAll(async () => {
  grpcServer?.forceShutdown();
  await new Promise<void>((resolve) => (httpServer ? httpServer.close(() => resolve()) : resolve()));
});

async function hello(port: number): Promise<KvbridgeError> {
  const client = new ReceiverClient(`127.0.0.1:${port}`);
  try {
    await client.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint: "", transports: ["tcp"] }, { timeoutMs: 5_000 });
    throw new Error("Hello to a non-kvbridge peer succeeded");
  } catch (err) {
    expect(err).toBeInstanceOf(KvbridgeError);
    return err as KvbridgeError;
  } finally {
    client.close();
  }
}

describe("a kvbridge client at a peer that is not a kvbridge node", () => {
  it("an HTTP/2 server answering 404: INCOMPATIBLE, not remote, saying the peer does not serve the call", async () => {
    httpStatus = 404;
    const err = await hello(httpPort);
    expect(err.code).toBe("INCOMPATIBLE");
    expect(err.remote).toBe(false);
    expect(err.message).toMatch(/Hello to .*:\d+: .*404.*does not serve this call/);
  });

  it("an HTTP/2 server answering 400: UNAVAILABLE, not remote, saying no kvbridge node answered", async () => {
    httpStatus = 400;
    const err = await hello(httpPort);
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.remote).toBe(false);
    expect(err.message).toMatch(/Hello to .*:\d+: .*no kvbridge node answered there/);
  });

  it("a gRPC server without the KvReceiver service: INCOMPATIBLE, naming the missing call", async () => {
    const err = await hello(grpcPort);
    expect(err.code).toBe("INCOMPATIBLE");
    expect(err.remote).toBe(false);
    expect(err.message).toMatch(/does not serve this call/);
  });
});
