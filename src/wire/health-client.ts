// Typed client of a node's grpc.health.v1 service (kvctl, routers following node health): Check for
// one answer, Watch for every change. The statuses a node sends are checked, not assumed.
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { fromServiceError } from "./error-status.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export type HealthStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

const STATUSES: readonly HealthStatus[] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/** grpc-health-check loads its proto with enums as strings, so a status arrives as its name. */
function statusOf(res: object, what: string): HealthStatus {
  const status = "status" in res ? res.status : undefined;
  const known = STATUSES.find((s) => s === status);
  if (!known) throw new KvbridgeError("INTERNAL", `${what}: answered with an unknown serving status ${JSON.stringify(status)}`);
  return known;
}

/** One method of grpc-health-check's definition (typed by its own copy of proto-loader). */
type HealthMethod = NonNullable<(typeof healthService)[string]>;

function method(name: "Check" | "Watch"): HealthMethod {
  const m = healthService[name];
  if (!m) throw new KvbridgeError("INTERNAL", `grpc-health-check defines no ${name} method`);
  return m;
}

export class HealthClient {
  readonly target: string;
  private readonly raw: grpc.Client;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS) {
    this.target = target;
    this.raw = new grpc.Client(target, credentials, channelOptions);
  }

  /** The serving status of `service` ("" for the node as a whole). */
  async check(service: string, opts: CallOptions): Promise<HealthStatus> {
    const m = method("Check");
    const what = `health Check on ${this.target}`;
    const res = await unaryCall<object, object>(
      (req, md, o, cb) => this.raw.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, md, o, cb),
      what,
      { service },
      opts,
    );
    return statusOf(res, what);
  }

  /**
   * Every status of `service` as the node reports it (the current one first), until `signal` fires
   * (the iteration then ends quietly) or the stream fails (a KvbridgeError, e.g. UNAVAILABLE).
   */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<HealthStatus> {
    const m = method("Watch");
    const what = `health Watch on ${this.target}`;
    if (signal.aborted) return;
    const call = this.raw.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize, { service }, new grpc.Metadata(), {});
    const onAbort = (): void => call.cancel();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const res of call as AsyncIterable<object>) yield statusOf(res, what);
    } catch (err) {
      if (signal.aborted) return;
      throw fromServiceError(err, what);
    } finally {
      signal.removeEventListener("abort", onAbort);
      call.cancel();
    }
  }

  channel(): ReturnType<grpc.Client["getChannel"]> {
    return this.raw.getChannel();
  }

  /** Idempotent (grpc-js). */
  close(): void {
    this.raw.close();
  }
}
