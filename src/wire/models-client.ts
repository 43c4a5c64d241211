// Typed client of a node's Models service (prefill and decode nodes): the models it can serve and
// their states, declarative loads and idempotent unloads (the router's /v1/models, kvctl models).
import * as grpc from "@grpc/grpc-js";
import type { ListModelsResponse__Output } from "./generated/kvbridge/v1/ListModelsResponse.js";
import type { LoadModelRequest } from "./generated/kvbridge/v1/LoadModelRequest.js";
import type { LoadModelResponse__Output } from "./generated/kvbridge/v1/LoadModelResponse.js";
import type { ModelsClient as RawClient } from "./generated/kvbridge/v1/Models.js";
import type { UnloadModelRequest } from "./generated/kvbridge/v1/UnloadModelRequest.js";
import type { UnloadModelResponse__Output } from "./generated/kvbridge/v1/UnloadModelResponse.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export class ModelsClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS) {
    this.target = target;
    this.raw = new (kvbridgeV1().Models)(target, credentials, channelOptions);
  }

  listModels(opts: CallOptions): Promise<ListModelsResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.ListModels(r, m, o, cb), `ListModels on ${this.target}`, {}, opts);
  }
  /** A load's wait is bounded by the node (load timeout, drain bound): give timeoutMs room for it. */
  loadModel(req: LoadModelRequest, opts: CallOptions): Promise<LoadModelResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.LoadModel(r, m, o, cb), `LoadModel on ${this.target}`, req, opts);
  }
  unloadModel(req: UnloadModelRequest, opts: CallOptions): Promise<UnloadModelResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.UnloadModel(r, m, o, cb), `UnloadModel on ${this.target}`, req, opts);
  }

  close(): void {
    this.raw.close();
  }
}
