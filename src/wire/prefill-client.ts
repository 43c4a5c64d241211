// Typed client of a prefill node's Prefill service (the router's side): Plan, Prefill, Tokenize /
// Detokenize, RenderChat (a chat as the model's prompt text) and CachedPrefix (how much of a
// prompt's chunk keys its prefix cache holds) under a model.
import * as grpc from "@grpc/grpc-js";
import type { CachedPrefixRequest } from "./generated/kvbridge/v1/CachedPrefixRequest.js";
import type { CachedPrefixResponse__Output } from "./generated/kvbridge/v1/CachedPrefixResponse.js";
import type { DetokenizeRequest } from "./generated/kvbridge/v1/DetokenizeRequest.js";
import type { DetokenizeResponse__Output } from "./generated/kvbridge/v1/DetokenizeResponse.js";
import type { PlanRequest } from "./generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse__Output } from "./generated/kvbridge/v1/PlanResponse.js";
import type { PrefillClient as RawClient } from "./generated/kvbridge/v1/Prefill.js";
import type { PrefillRequest } from "./generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse__Output } from "./generated/kvbridge/v1/PrefillResponse.js";
import type { RenderChatRequest } from "./generated/kvbridge/v1/RenderChatRequest.js";
import type { RenderChatResponse__Output } from "./generated/kvbridge/v1/RenderChatResponse.js";
import type { TokenizeRequest } from "./generated/kvbridge/v1/TokenizeRequest.js";
import type { TokenizeResponse__Output } from "./generated/kvbridge/v1/TokenizeResponse.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export class PrefillClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS) {
    this.target = target;
    this.raw = new (kvbridgeV1().Prefill)(target, credentials, channelOptions);
  }

  plan(req: PlanRequest, opts: CallOptions): Promise<PlanResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Plan(r, m, o, cb), `Plan on ${this.target}`, req, opts);
  }
  prefill(req: PrefillRequest, opts: CallOptions): Promise<PrefillResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Prefill(r, m, o, cb), `Prefill on ${this.target}`, req, opts);
  }
  tokenize(req: TokenizeRequest, opts: CallOptions): Promise<TokenizeResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Tokenize(r, m, o, cb), `Tokenize on ${this.target}`, req, opts);
  }
  detokenize(req: DetokenizeRequest, opts: CallOptions): Promise<DetokenizeResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.Detokenize(r, m, o, cb), `Detokenize on ${this.target}`, req, opts);
  }
  renderChat(req: RenderChatRequest, opts: CallOptions): Promise<RenderChatResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.RenderChat(r, m, o, cb), `RenderChat on ${this.target}`, req, opts);
  }
  cachedPrefix(req: CachedPrefixRequest, opts: CallOptions): Promise<CachedPrefixResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.CachedPrefix(r, m, o, cb), `CachedPrefix on ${this.target}`, req, opts);
  }

  /** The channel's connectivity (the router's recovery watches it). */
  channel(): ReturnType<grpc.Client["getChannel"]> {
    return this.raw.getChannel();
  }

  close(): void {
    this.raw.close();
  }
}
