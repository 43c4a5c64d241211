// The cross-cutting concerns of a kvbridge gRPC server as grpc-js server interceptors, in one place
// and one order: request-id logging (next to the network), metrics, then the admission gate (next to
// the handlers). A handler only ever sees calls the gate admitted; the log and the metrics see every
// answer, the gate's refusals included.
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

function requestLog(log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    if (opOf(method.path) === undefined) return passThrough(call);
    const t0 = performance.now();
    let requestId: string | undefined;
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            requestId ??= requestIdOf(message);
            nextMessage(message);
          },
        });
      },
      sendStatus(status, next) {
        const line = { rpc: method.path, requestId, peer: call.getPeer(), ms: Math.round((performance.now() - t0) * 10) / 10 };
        if (status.code === grpc.status.OK || status.code === grpc.status.CANCELLED) log.debug(line, "rpc answered");
        else if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) log.error({ ...line, code: failureLabel(status), err: status.details }, "rpc failed");
        else log.info({ ...line, code: failureLabel(status), err: status.details }, "rpc refused");
        next(status);
      },
    });
  };
}

function callMetrics(m: NodeMetrics): grpc.ServerInterceptor {
  // Registered now, so a fresh node already exports them (a dashboard tells "idle" from "missing").
  void [m.allocSeconds, m.failures];
  return (method, call) => {
    const op = opOf(method.path);
    if (op === undefined) return passThrough(call);
    const t0 = performance.now();
    return new grpc.ServerInterceptingCall(call, {
      sendStatus(status, next) {
        if (op === "alloc") m.allocSeconds.observe((performance.now() - t0) / 1000);
        if (status.code !== grpc.status.OK) m.failures.inc({ op, reason: failureLabel(status) });
        next(status);
      },
    });
  };
}

function admission(gate: AdmissionGate): grpc.ServerInterceptor {
  return (method, call) => {
    if (opOf(method.path) === undefined) return passThrough(call);
    let refused = false;
    const self: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            const refusal = gate.refusal(method.path, message);
            if (refusal === undefined) return nextMessage(message);
            // The handler never hears of the call: neither its message nor its half-close.
            refused = true;
            const s = toServiceError(refusal);
            self.sendStatus({ code: s.code ?? grpc.status.UNAVAILABLE, details: s.details ?? refusal.message, metadata: s.metadata ?? null });
          },
          onReceiveHalfClose(nextHalfClose) {
            if (!refused) nextHalfClose();
          },
        });
      },
    });
    return self;
  };
}

/**
 * The interceptors of a kvbridge server, for `new grpc.Server({ interceptors })`. grpc-js runs the
 * first one nearest the network: the log sees each call first and its answer last, the gate sits
 * right before the handlers.
 */
export function serverInterceptors(o: InterceptorOptions): grpc.ServerInterceptor[] {
  const out: grpc.ServerInterceptor[] = [];
  if (o.logger) out.push(requestLog(o.logger));
  if (o.metrics) out.push(callMetrics(o.metrics));
  if (o.gate) out.push(admission(o.gate));
  return out;
}
