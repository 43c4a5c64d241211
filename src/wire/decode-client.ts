// Typed client of a decode node's Decode service (the router's side): MatchPrefix, and Generate as
// a stream of events that the caller's signal cancels.
import * as grpc from "@grpc/grpc-js";
import type { DecodeClient as RawClient } from "./generated/kvbridge/v1/Decode.js";
import type { GenerateEvent__Output } from "./generated/kvbridge/v1/GenerateEvent.js";
import type { GenerateRequest } from "./generated/kvbridge/v1/GenerateRequest.js";
import type { MatchPrefixRequest } from "./generated/kvbridge/v1/MatchPrefixRequest.js";
import type { MatchPrefixResponse__Output } from "./generated/kvbridge/v1/MatchPrefixResponse.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export type GenerateStream = grpc.ClientReadableStream<GenerateEvent__Output>;

export class DecodeClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = CLIENT_CHANNEL_OPTIONS) {
    this.target = target;
    this.raw = new (kvbridgeV1().Decode)(target, credentials, channelOptions);
  }

  matchPrefix(req: MatchPrefixRequest, opts: CallOptions): Promise<MatchPrefixResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.MatchPrefix(r, m, o, cb), `MatchPrefix on ${this.target}`, req, opts);
  }

  /**
   * The server stream of a generation; `deadlineMs` bounds it whole. The caller cancels it on its own
   * signal. `waitForReady`: wait for a reconnecting channel instead of failing at once.
   */
  generate(req: GenerateRequest, deadlineMs: number, metadata: grpc.Metadata = new grpc.Metadata(), waitForReady = false): GenerateStream {
    // grpc-js takes wait-for-ready from the call's metadata options.
    if (waitForReady) metadata.setOptions({ ...metadata.getOptions(), waitForReady: true });
    return this.raw.Generate(req, metadata, { deadline: Date.now() + deadlineMs });
  }

  channel(): ReturnType<grpc.Client["getChannel"]> {
    return this.raw.getChannel();
  }

  close(): void {
    this.raw.close();
  }
}
