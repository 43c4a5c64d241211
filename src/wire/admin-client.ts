// Typed client of a decode node's guarded Admin service (kvctl evict / abort).
import * as grpc from "@grpc/grpc-js";
import type { AdminClient as RawClient } from "./generated/kvbridge/v1/Admin.js";
import type { AdminAbortRequest } from "./generated/kvbridge/v1/AdminAbortRequest.js";
import type { AdminAbortResponse__Output } from "./generated/kvbridge/v1/AdminAbortResponse.js";
import type { EvictRequest } from "./generated/kvbridge/v1/EvictRequest.js";
import type { EvictResponse__Output } from "./generated/kvbridge/v1/EvictResponse.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export class AdminClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.target = target;
    this.raw = new (kvbridgeV1().Admin)(target, credentials, CLIENT_CHANNEL_OPTIONS);
  }

  evict(req: EvictRequest, opts: CallOptions): Promise<EvictResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Evict(r, m, o, cb), `Evict on ${this.target}`, req, opts);
  }
  abortRequest(req: AdminAbortRequest, opts: CallOptions): Promise<AdminAbortResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.AbortRequest(r, m, o, cb), `AbortRequest on ${this.target}`, req, opts);
  }

  close(): void {
    this.raw.close();
  }
}
