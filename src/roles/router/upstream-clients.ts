// The router's connections to its nodes: one typed PrefillClient or DecodeClient per target, made on
// first use and kept (a gRPC channel reconnects by itself, with the bounded backoff the router gives
// it in channelOptions), all closed with the router. Each channel has a connection of its own (not
// grpc-js' shared subchannel pool) with HTTP/2 keepalive, so a connection stalled by a partition is
// found, and a node that comes back into rotation after leaving it gets a fresh channel: the old one
// may sit on a connection (or a connect attempt) that only the kernel's next retransmission revives.
import * as grpc from "@grpc/grpc-js";
import { ROUTER_KEEPALIVE_TIME_MS, ROUTER_KEEPALIVE_TIMEOUT_MS } from "../../config/defaults.js";
import { DecodeClient } from "../../wire/decode-client.js";
import type { PlanRequest } from "../../wire/generated/kvbridge/v1/PlanRequest.js";
import type { PlanResponse__Output } from "../../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillRequest } from "../../wire/generated/kvbridge/v1/PrefillRequest.js";
import type { PrefillResponse__Output } from "../../wire/generated/kvbridge/v1/PrefillResponse.js";
import type { GenerateRequest } from "../../wire/generated/kvbridge/v1/GenerateRequest.js";
import { PrefillClient } from "../../wire/prefill-client.js";
import { CLIENT_CHANNEL_OPTIONS, keepaliveOptions, type CallOptions } from "../../wire/unary-call.js";
import type { Upstream } from "./completion-dispatch.js";
import { consumeGenerate, type ConsumeOptions, type GenerateOutcome } from "./generate-stream.js";

export class UpstreamClients implements Upstream {
  private readonly prefillClients = new Map<string, PrefillClient>();
  private readonly decodeClients = new Map<string, DecodeClient>();
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
  }

  plan(target: string, req: PlanRequest, opts: CallOptions): Promise<PlanResponse__Output> {
    return this.prefillClient(target).plan(req, opts);
  }

  async matchPrefix(target: string, keys: string[], opts: CallOptions): Promise<number> {
    return (await this.decodeClient(target).matchPrefix({ keys }, opts)).matched;
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
    for (const c of [...this.prefillClients.values(), ...this.decodeClients.values()]) c.close();
    this.prefillClients.clear();
    this.decodeClients.clear();
  }
}
