// Typed client of a decode node's KvReceiver service (the sender's control plane): one method per
// RPC, request -> response, so a renamed RPC fails at compile time.
import * as grpc from "@grpc/grpc-js";
import type { AbortRequest } from "./generated/kvbridge/v1/AbortRequest.js";
import type { AbortResponse__Output } from "./generated/kvbridge/v1/AbortResponse.js";
import type { AllocRequest } from "./generated/kvbridge/v1/AllocRequest.js";
import type { AllocResponse__Output } from "./generated/kvbridge/v1/AllocResponse.js";
import type { AwaitReadyRequest } from "./generated/kvbridge/v1/AwaitReadyRequest.js";
import type { AwaitReadyResponse__Output } from "./generated/kvbridge/v1/AwaitReadyResponse.js";
import type { CommitRequest } from "./generated/kvbridge/v1/CommitRequest.js";
import type { CommitResponse__Output } from "./generated/kvbridge/v1/CommitResponse.js";
import type { HelloRequest } from "./generated/kvbridge/v1/HelloRequest.js";
import type { HelloResponse__Output } from "./generated/kvbridge/v1/HelloResponse.js";
import type { KvReceiverClient as RawClient } from "./generated/kvbridge/v1/KvReceiver.js";
import type { ReleaseRequest } from "./generated/kvbridge/v1/ReleaseRequest.js";
import type { ReleaseResponse__Output } from "./generated/kvbridge/v1/ReleaseResponse.js";
import type { RenewRequest } from "./generated/kvbridge/v1/RenewRequest.js";
import type { RenewResponse__Output } from "./generated/kvbridge/v1/RenewResponse.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export class ReceiverClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS) {
    this.target = target;
    this.raw = new (kvbridgeV1().KvReceiver)(target, credentials, channelOptions);
  }

  hello(req: HelloRequest, opts: CallOptions): Promise<HelloResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Hello(r, m, o, cb), `Hello to ${this.target}`, req, opts);
  }
  alloc(req: AllocRequest, opts: CallOptions): Promise<AllocResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Alloc(r, m, o, cb), `Alloc to ${this.target}`, req, opts);
  }
  commit(req: CommitRequest, opts: CallOptions): Promise<CommitResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Commit(r, m, o, cb), `Commit to ${this.target}`, req, opts);
  }
  abort(req: AbortRequest, opts: CallOptions): Promise<AbortResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Abort(r, m, o, cb), `Abort to ${this.target}`, req, opts);
  }
  renew(req: RenewRequest, opts: CallOptions): Promise<RenewResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Renew(r, m, o, cb), `Renew to ${this.target}`, req, opts);
  }
  awaitReady(req: AwaitReadyRequest, opts: CallOptions): Promise<AwaitReadyResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.AwaitReady(r, m, o, cb), `AwaitReady to ${this.target}`, req, opts);
  }
  release(req: ReleaseRequest, opts: CallOptions): Promise<ReleaseResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Release(r, m, o, cb), `Release to ${this.target}`, req, opts);
  }

  /** The channel's connectivity (without starting a connect): a sender replaces a peer whose channel is stuck reconnecting. */
  connectivity(): grpc.connectivityState {
    return this.raw.getChannel().getConnectivityState(false);
  }

  /** Idempotent (grpc-js). */
  close(): void {
    this.raw.close();
  }
}
