// Typed client of a node's read-only Inspect service (kvctl, the load generator's verification).
import * as grpc from "@grpc/grpc-js";
import type { ChecksumKeysRequest } from "./generated/kvbridge/v1/ChecksumKeysRequest.js";
import type { ChecksumKeysResponse__Output } from "./generated/kvbridge/v1/ChecksumKeysResponse.js";
import type { GetStatsRequest } from "./generated/kvbridge/v1/GetStatsRequest.js";
import type { InspectClient as RawClient } from "./generated/kvbridge/v1/Inspect.js";
import type { ListEntriesRequest } from "./generated/kvbridge/v1/ListEntriesRequest.js";
import type { ListEntriesResponse__Output } from "./generated/kvbridge/v1/ListEntriesResponse.js";
import type { ListRequestsRequest } from "./generated/kvbridge/v1/ListRequestsRequest.js";
import type { ListRequestsResponse__Output } from "./generated/kvbridge/v1/ListRequestsResponse.js";
import type { Stats__Output } from "./generated/kvbridge/v1/Stats.js";
import { kvbridgeV1 } from "./proto.js";
import { CLIENT_CHANNEL_OPTIONS, unaryCall, type CallOptions } from "./unary-call.js";

export class InspectClient {
  readonly target: string;
  private readonly raw: RawClient;

  constructor(target: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.target = target;
    this.raw = new (kvbridgeV1().Inspect)(target, credentials, CLIENT_CHANNEL_OPTIONS);
  }

  getStats(req: GetStatsRequest, opts: CallOptions): Promise<Stats__Output> {
    return unaryCall((r, m, o, cb) => this.raw.GetStats(r, m, o, cb), `GetStats on ${this.target}`, req, opts);
  }
  listEntries(req: ListEntriesRequest, opts: CallOptions): Promise<ListEntriesResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.ListEntries(r, m, o, cb), `ListEntries on ${this.target}`, req, opts);
  }
  listRequests(req: ListRequestsRequest, opts: CallOptions): Promise<ListRequestsResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.ListRequests(r, m, o, cb), `ListRequests on ${this.target}`, req, opts);
  }
  checksumKeys(req: ChecksumKeysRequest, opts: CallOptions): Promise<ChecksumKeysResponse__Output> {
    return unaryCall((r, m, o, cb) => this.raw.ChecksumKeys(r, m, o, cb), `ChecksumKeys on ${this.target}`, req, opts);
  }

  close(): void {
    this.raw.close();
  }
}
