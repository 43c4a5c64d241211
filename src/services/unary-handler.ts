// The server side of every kvbridge unary call: a handler written as an async function of the request,
// whose thrown KvbridgeError becomes the call's status (code and details in the trailers), and the
// call's own AbortSignal. The client side is wire/unary-call.ts.
import type * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { toServiceError } from "../wire/error-status.js";

/** Wraps an async handler: its result answers the call, a thrown error becomes a gRPC status. */
export function unaryHandler<Req, Res>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(err)),
      );
  };
}

/** An AbortSignal that fires when the client cancels the call or its deadline passes. */
export function callSignal(call: { on(event: "cancelled", listener: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new KvbridgeError("CANCELLED", "the client cancelled the call")));
  return ac.signal;
}
