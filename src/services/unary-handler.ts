// The server side of every kvbridge unary call: a handler written as an async function of the request,
// whose thrown KvbridgeError becomes the call's status (code and details in the trailers), and the
// call's own AbortSignal. The client side is wire/unary-call.ts.
import type * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { toServiceError } from "../wire/error-status.js";

/**
 * Wraps a handler: its result answers the call, a thrown error (or a rejected promise) becomes a gRPC
 * status. A handler that answers synchronously (Alloc, Commit, Abort...) is answered in the same
 * step, without the two promise hops an always-async wrapper costs every call.
 */
export function unaryHandler<Req, Res>(
  fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res> | Res,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    let res: Promise<Res> | Res;
    try {
      res = fn(call.request, call);
    } catch (err) {
      callback(toServiceError(err));
      return;
    }
    if (isThenable(res)) {
      res.then(
        (r) => callback(null, r),
        (err: unknown) => callback(toServiceError(err)),
      );
    } else {
      callback(null, res);
    }
  };
}

function isThenable<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

/** An AbortSignal that fires when the client cancels the call or its deadline passes. */
export function callSignal(call: { on(event: "cancelled", listener: () => void): unknown }): AbortSignal {
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new KvbridgeError("CANCELLED", "the client cancelled the call")));
  return ac.signal;
}
