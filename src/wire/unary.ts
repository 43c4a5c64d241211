// Promise wrappers for grpc-js unary calls (client side, with a deadline and an AbortSignal) and
// for unary handlers (server side, mapping thrown KvbridgeErrors to statuses).
import * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { fromServiceError, toServiceError } from "./error-status.js";

/** Options for every kvbridge client channel: no channelz bookkeeping, which costs every call and nothing here reads. */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = { "grpc.enable_channelz": 0 };

export interface CallOptions {
  /** Bound on the whole call. */
  timeoutMs: number;
  signal?: AbortSignal;
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res?: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls `client[method]` with a deadline; the signal cancels the call (CANCELLED). */
export function callUnary<Req, Res>(
  client: grpc.Client,
  method: string,
  req: Req,
  opts: CallOptions,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<Res> {
  const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method];
  if (typeof fn !== "function") throw new KvbridgeError("INTERNAL", `no RPC method ${method}`);
  const what = `${method} to ${client.getChannel().getTarget()}`;
  return new Promise<Res>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new KvbridgeError("CANCELLED", `${what}: cancelled before sending`));
      return;
    }
    const call = fn.call(client, req, metadata, { deadline: Date.now() + opts.timeoutMs }, (err, res) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(fromServiceError(err, what));
      else resolve(res as Res);
    });
    const onAbort = (): void => call.cancel();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}

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
export function callSignal(call: grpc.ServerUnaryCall<unknown, unknown>): AbortSignal {
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new KvbridgeError("CANCELLED", "the client cancelled the call")));
  return ac.signal;
}
