// The router's connections to its nodes: one typed PrefillClient, DecodeClient or ModelsClient per target, made on
// first use and kept (a gRPC channel reconnects by itself, with the bounded backoff the router gives
// it in channelOptions), all closed with the router. Each channel has a connection of its own (not
// grpc-js' shared subchannel pool) with HTTP/2 keepalive, so a connection stalled by a partition is
// found, and a node that comes back into rotation after leaving it gets a fresh channel: the old one
// may sit on a connection (or a connect attempt) that only the kernel's next retransmission revives.
import * as grpc from "@grpc/grpc-js";
import { ROUTER_KEEPALIVE_TIME_MS, ROUTER_KEEPALIVE_TIMEOUT_MS } from "../../config/defaults.js";
import { DecodeClient } from "../../wire/decode-client.js";
import type { CachedPrefixRequest } from "../../wire/generated/kvbridge/v1/CachedPrefixRequest.js";
import type { PlanRequest } from "../../wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse__Output } from "../../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillRequest } from "../../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse__Output } from "../../wire/generated/kvbridge/v1/PrefillResponse.js";
import type { RenderChatRequest } from "../../wire/generated/kvbridge/v1/RenderChatRequest.js";
import type { RenderChatResponse__Output } from "../../wire/generated/kvbridge/v1/RenderChatResponse.js";
import type { GenerateRequest } from "../../wire/generated/kvbridge/v1/GenerateRequest.js";
import type { DetokenizeRequest } from "../../wire/generated/kvbridge/v1/DetokenizeRequest.js";
import type { DetokenizeResponse__Output } from "../../wire/generated/kvbridge/v1/DetokenizeResponse.js";
import type { ListModelsResponse__Output } from "../../wire/generated/kvbridge/v1/ListModelsResponse.js";
import type { LoadModelRequest } from "../../wire/generated/kvbridge/v1/LoadModelRequest.js";
import type { MatchPrefixRequest } from "../../wire/generated/kvbridge/v1/MatchPrefixRequest.js";
import type { ModelInfo__Output } from "../../wire/generated/kvbridge/v1/ModelInfo.js";
import type { TokenizeRequest } from "../../wire/generated/kvbridge/v1/TokenizeRequest.js";
import type { TokenizeResponse__Output } from "../../wire/generated/kvbridge/v1/TokenizeResponse.js";
import type { UnloadModelRequest } from "../../wire/generated/kvbridge/v1/UnloadModelRequest.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { ModelsClient } from "../../wire/models-client.js";
import { PrefillClient } from "../../wire/prefill-client.js";
import { CLIENT_CHANNEL_OPTIONS, keepaliveOptions, type CallOptions } from "../../wire/unary-call.js";
import type { Upstream } from "./completion-dispatch.js";
import { consumeGenerate, type ConsumeOptions, type GenerateOutcome } from "./generate-stream.js";

export class UpstreamClients implements Upstream {
  private readonly prefillClients = new Map<string, PrefillClient>();
  private readonly decodeClients = new Map<string, DecodeClient>();
  private readonly modelsClients = new Map<string, ModelsClient>();
  /** Per target, the rotation signal (node-health.ts) its channel was made under. */
  private readonly madeUnder = new Map<string, AbortSignal>();
  private readonly channelOptions: grpc.ChannelOptions;
  private closed = false;

  constructor(
    private readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
    channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS,
    keepalive: { timeMs: number; timeoutMs: number } = { timeMs: ROUTER_KEEPALIVE_TIME_MS, timeoutMs: ROUTER_KEEPALIVE_TIMEOUT_MS },
  ) {
    this.channelOptions = { ...channelOptions, ...keepaliveOptions(keepalive.timeMs, keepalive.timeoutMs), "grpc.use_local_subchannel_pool": 1 };
  }

  prefillClient(target: string): PrefillClient {
    let c = this.prefillClients.get(target);
    if (!c) this.prefillClients.set(target, (c = new PrefillClient(target, this.credentials, this.channelOptions)));
    return c;
  }

  decodeClient(target: string): DecodeClient {
    let c = this.decodeClients.get(target);
    if (!c) this.decodeClients.set(target, (c = new DecodeClient(target, this.credentials, this.channelOptions)));
    return c;
  }

  modelsClient(target: string): ModelsClient {
    let c = this.modelsClients.get(target);
    if (!c) this.modelsClients.set(target, (c = new ModelsClient(target, this.credentials, this.channelOptions)));
    return c;
  }

  /**
   * Called before each call with the node's current rotation signal: when the node left rotation
   * since its channel was made (that signal fired) and is back (a new one), the channel is replaced.
   * Calls already running on the old one keep it until they end.
   */
  freshen(target: string, rotation: AbortSignal | undefined): void {
    if (!rotation || this.closed) return;
    const before = this.madeUnder.get(target);
    if (before === rotation) return;
    this.madeUnder.set(target, rotation);
    if (!before?.aborted) return;
    this.prefillClients.get(target)?.close();
    this.prefillClients.delete(target);
    this.decodeClients.get(target)?.close();
    this.decodeClients.delete(target);
    this.modelsClients.get(target)?.close();
    this.modelsClients.delete(target);
  }

  plan(target: string, req: PlanRequest, opts: CallOptions): Promise<PlanResponse__Output> {
    return this.prefillClient(target).plan(req, opts);
  }

  renderChat(target: string, req: RenderChatRequest, opts: CallOptions): Promise<RenderChatResponse__Output> {
    return this.prefillClient(target).renderChat(req, opts);
  }

  async cachedPrefix(target: string, req: CachedPrefixRequest, opts: CallOptions): Promise<number> {
    return (await this.prefillClient(target).cachedPrefix(req, opts)).chunks;
  }

  async matchPrefix(target: string, req: MatchPrefixRequest, opts: CallOptions): Promise<number> {
    return (await this.decodeClient(target).matchPrefix(req, opts)).matched;
  }

  listModels(target: string, opts: CallOptions): Promise<ListModelsResponse__Output> {
    return this.modelsClient(target).listModels(opts);
  }

  async loadModel(target: string, req: LoadModelRequest, opts: CallOptions): Promise<ModelInfo__Output> {
    return modelOf(await this.modelsClient(target).loadModel(req, opts), target);
  }

  async unloadModel(target: string, req: UnloadModelRequest, opts: CallOptions): Promise<ModelInfo__Output> {
    return modelOf(await this.modelsClient(target).unloadModel(req, opts), target);
  }

  tokenize(target: string, req: TokenizeRequest, opts: CallOptions): Promise<TokenizeResponse__Output> {
    return this.prefillClient(target).tokenize(req, opts);
  }

  detokenize(target: string, req: DetokenizeRequest, opts: CallOptions): Promise<DetokenizeResponse__Output> {
    return this.prefillClient(target).detokenize(req, opts);
  }

  prefill(target: string, req: PrefillRequest, opts: CallOptions): Promise<PrefillResponse__Output> {
    return this.prefillClient(target).prefill(req, opts);
  }

  generate(target: string, req: GenerateRequest, deadlineMs: number, o: Omit<ConsumeOptions, "what">): Promise<GenerateOutcome> {
    // Only sent to a node in rotation: a channel still reconnecting to it is waited for (the idle bound and the rotation signal hold).
    return consumeGenerate(this.decodeClient(target).generate(req, deadlineMs, undefined, true), { ...o, what: `Generate on ${target}` });
  }

  /** Idempotent. Calls still running on the channels end with CANCELLED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.prefillClients.values(), ...this.decodeClients.values(), ...this.modelsClients.values()]) c.close();
    this.prefillClients.clear();
    this.decodeClients.clear();
    this.modelsClients.clear();
  }
}

/** A LoadModel/UnloadModel answer always carries the model; one without it is a broken node. */
function modelOf(res: { model: ModelInfo__Output | null }, target: string): ModelInfo__Output {
  if (!res.model) throw new KvbridgeError("INTERNAL", `the node ${target} answered without the model's state`);
  return res.model;
}
