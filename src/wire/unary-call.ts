// The client side of every kvbridge unary call: a deadline, the caller's AbortSignal, and the server's
// error turned back into a KvbridgeError (code and structured details from the trailers). The typed
// clients (receiver-client.ts, prefill-client.ts, ...) are the only callers.
import * as grpc from "@grpc/grpc-js";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { fromServiceError } from "./error-status.js";

/** Options for every kvbridge client channel: no channelz bookkeeping, which costs every call and nothing here reads. */
export const CLIENT_CHANNEL_OPTIONS: grpc.ChannelOptions = { "grpc.enable_channelz": 0 };

/**
 * CLIENT_CHANNEL_OPTIONS with the channel's reconnect backoff bounded (gRPC's own grows to 120 s, so a
 * node back after a long outage would be retried minutes later). Clients made with the same target,
 * credentials and options share one connection (grpc-js' subchannel pool): a health probe and the
 * calls it vouches for use the same one.
 */
export function boundedReconnectOptions(initialMs: number, maxMs: number): grpc.ChannelOptions {
  return { ...CLIENT_CHANNEL_OPTIONS, "grpc.initial_reconnect_backoff_ms": initialMs, "grpc.max_reconnect_backoff_ms": Math.max(initialMs, maxMs) };
}

/**
 * HTTP/2 keepalive PINGs, also on an idle connection: a partitioned link leaves TCP open but stalled
 * (until the kernel's next retransmission, seconds later); the PING that goes unanswered closes it
 * and the next call connects afresh. grpc-js servers answer PINGs at any rate (they enforce no
 * minimum interval), so no server option is needed.
 */
export function keepaliveOptions(timeMs: number, timeoutMs: number): grpc.ChannelOptions {
  return { "grpc.keepalive_time_ms": timeMs, "grpc.keepalive_timeout_ms": timeoutMs, "grpc.keepalive_permit_without_calls": 1 };
}

export interface CallOptions {
  /** Bound on the whole call. */
  timeoutMs: number;
  signal?: AbortSignal;
  metadata?: grpc.Metadata;
  /** Wait (within the deadline) for a channel that is reconnecting instead of failing at once. */
  waitForReady?: boolean;
}

/** One generated unary method, called with all four arguments (the overload every typed client uses). */
export type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: grpc.requestCallback<Res>,
) => grpc.ClientUnaryCall;

/** Runs one unary call with a deadline; the signal cancels it (CANCELLED). `what` names it in errors. */
export function unaryCall<Req, Res>(method: UnaryMethod<Req, Res>, what: string, req: Req, opts: CallOptions): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new KvbridgeError("CANCELLED", `${what}: cancelled before sending`));
      return;
    }
    const onAbort = (): void => call.cancel();
    const metadata = opts.metadata ?? new grpc.Metadata();
    // grpc-js takes wait-for-ready from the call's metadata options.
    if (opts.waitForReady) metadata.setOptions({ ...metadata.getOptions(), waitForReady: true });
    const call = method(req, metadata, { deadline: Date.now() + opts.timeoutMs }, (err, res) => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (err) reject(fromServiceError(err, what));
      else if (res === undefined) reject(new KvbridgeError("INTERNAL", `${what}: answered without a message`));
      else resolve(res);
    });
    opts.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
