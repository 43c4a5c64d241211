// The cross-cutting concerns of a kvbridge gRPC server as one grpc-js server interceptor, in one place
// and one order: request-id logging, metrics, then the admission gate (next to the handlers). A handler
// only ever sees calls the gate admitted; the log and the metrics see every answer, the gate's refusals
// included. The OK path does no work it does not need: no log line when debug is off, no trailer
// reading, the op label of a method path computed once.
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { KvbridgeError } from "../errors/kvbridge-error.js";
import type { NodeMetrics } from "../observability/metrics.js";
import { CODE_METADATA_KEY, toServiceError } from "../wire/error-status.js";

/** Decides, call by call, whether a node takes the work now (serving, loading, draining...). */
export interface AdmissionGate {
  /**
   * Why the call of `method` (its full path, e.g. kvbridgeV1().KvReceiver.service.Alloc.path) carrying
   * `request` is refused now, or undefined to admit it. Runs synchronously when the request message
   * arrives, before any handler.
   */
  refusal(method: string, request: unknown): KvbridgeError | undefined;
}

export interface InterceptorOptions {
  gate?: AdmissionGate;
  /** Failures of every kvbridge call by op and error code, and Alloc latency. */
  metrics?: NodeMetrics;
  /** One line per answered kvbridge call with its request id (debug when it succeeded). */
  logger?: Logger;
}

/** Calls of kvbridge's own services; grpc.health.v1 passes every interceptor untouched. */
const KVBRIDGE_PATH = /^\/kvbridge\.v1\.[A-Za-z]+\/([A-Za-z]+)$/;

type SentStatus = Parameters<grpc.ServerInterceptingCall["sendStatus"]>[0];

/** The op label of a kvbridge method path ("/kvbridge.v1.KvReceiver/AwaitReady" -> "await_ready"). */
export function opOf(path: string): string | undefined {
  const method = KVBRIDGE_PATH.exec(path)?.[1];
  return method?.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toLowerCase();
}

/** The request id a kvbridge request message carries, if it has one. */
function requestIdOf(message: unknown): string | undefined {
  const id = typeof message === "object" && message !== null ? (message as { requestId?: unknown }).requestId : undefined;
  return typeof id === "string" && id.length > 0 ? id : undefined;
}

/** The KvbridgeError code (lowercase) an answer carries in its trailers, else its gRPC status name. */
function failureLabel(status: SentStatus): string {
  const carried = status.metadata?.get(CODE_METADATA_KEY)[0];
  if (typeof carried === "string") return carried.toLowerCase();
  return (grpc.status[status.code] ?? "unknown").toLowerCase();
}

function passThrough(call: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
  return new grpc.ServerInterceptingCall(call);
}

/**
 * opOf per method path, remembered: interceptors only run for the server's registered methods (grpc-js
 * answers any other path UNIMPLEMENTED before them), so this holds one entry per method.
 */
const opByPath = new Map<string, string | null>();
function cachedOp(path: string): string | undefined {
  let op = opByPath.get(path);
  if (op === undefined) {
    op = opOf(path) ?? null;
    opByPath.set(path, op);
  }
  return op ?? undefined;
}

/** The log line of one answered call (rpc answered / refused / failed). */
function logAnswer(log: Logger, path: string, requestId: string | undefined, call: grpc.ServerInterceptingCallInterface, t0: number, status: SentStatus): void {
  const ok = status.code === grpc.status.OK || status.code === grpc.status.CANCELLED;
  // The OK path logs at debug: no line (and no peer lookup, which asks the socket) when that is off.
  if (ok && !log.isLevelEnabled("debug")) return;
  const line = { rpc: path, requestId, peer: call.getPeer(), ms: Math.round((performance.now() - t0) * 10) / 10 };
  if (ok) log.debug(line, "rpc answered");
  else if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) log.error({ ...line, code: failureLabel(status), err: status.details }, "rpc failed");
  else log.info({ ...line, code: failureLabel(status), err: status.details }, "rpc refused");
}

/** The call's metrics: Alloc latency, and a failure by op and error code. */
function countAnswer(m: NodeMetrics, op: string, t0: number, status: SentStatus): void {
  if (op === "alloc") m.allocSeconds.observe((performance.now() - t0) / 1000);
  if (status.code !== grpc.status.OK) m.failures.inc({ op, reason: failureLabel(status) });
}

/**
 * The three concerns as one grpc-js interceptor, so a call pays for one intercepting layer rather than
 * one per concern (each layer wraps every message, the metadata and the status): the request id is
 * read from the first message and the gate decides on it, in that order; the answer (the gate's
 * refusal included) is counted, then logged.
 */
function kvbridgeCalls(o: InterceptorOptions): grpc.ServerInterceptor {
  const { gate, metrics: m, logger: log } = o;
  // Registered now, so a fresh node already exports them (a dashboard tells "idle" from "missing").
  if (m) void [m.allocSeconds, m.failures];
  return (method, call) => {
    const op = cachedOp(method.path);
    if (op === undefined) return passThrough(call);
    const t0 = performance.now();
    let requestId: string | undefined;
    let refused = false;
    const listener: grpc.ServerListener = {
      onReceiveMessage(message, nextMessage) {
        if (log) requestId ??= requestIdOf(message);
        const refusal = gate?.refusal(method.path, message);
        if (refusal === undefined) return nextMessage(message);
        // The handler never hears of the call: neither its message nor its half-close.
        refused = true;
        const s = toServiceError(refusal);
        self.sendStatus({ code: s.code ?? grpc.status.UNAVAILABLE, details: s.details ?? refusal.message, metadata: s.metadata ?? null });
      },
      onReceiveHalfClose(nextHalfClose) {
        if (!refused) nextHalfClose();
      },
    };
    const self: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: log || gate ? (next) => next(listener) : undefined,
      sendStatus(status, next) {
        if (m) countAnswer(m, op, t0, status);
        if (log) logAnswer(log, method.path, requestId, call, t0, status);
        next(status);
      },
    });
    return self;
  };
}

/**
 * The interceptors of a kvbridge server, for `new grpc.Server({ interceptors })`: one, doing what is
 * asked of it (the log, the metrics, the gate); none when nothing is.
 */
export function serverInterceptors(o: InterceptorOptions): grpc.ServerInterceptor[] {
  return o.logger || o.metrics || o.gate ? [kvbridgeCalls(o)] : [];
}
