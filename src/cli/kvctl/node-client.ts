// kvctl's connection to one node: the read-only Inspect service, grpc.health.v1, and the guarded
// Admin service (its token sent as metadata; with mutual TLS the client certificate is a credential
// too). Every call is bounded by the same timeout.
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { AdminAbortResponse__Output } from "../../wire/generated/kvbridge/v1/AdminAbortResponse.js";
import type { EvictResponse__Output } from "../../wire/generated/kvbridge/v1/EvictResponse.js";
import type { ListEntriesResponse__Output } from "../../wire/generated/kvbridge/v1/ListEntriesResponse.js";
import type { ListRequestsResponse__Output } from "../../wire/generated/kvbridge/v1/ListRequestsResponse.js";
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../wire/generated/kvbridge/v1/Stats.js";
import { kvbridgeV1 } from "../../wire/proto.js";
import { callUnary } from "../../wire/unary.js";
import { channelCredentialsFor } from "../../security/grpc-credentials.js";
import { diagnoseTls, type TlsDiagnosis } from "../../security/tls-diagnosis.js";
import type { TlsMaterial } from "../../security/tls-material.js";
import { ADMIN_TOKEN_METADATA_KEY } from "../../services/admin-service.js";

export type HealthStatus = "SERVING" | "NOT_SERVING" | "UNKNOWN" | "SERVICE_UNKNOWN";

export interface EntryFilter {
  state?: "writing" | "ready" | "failed";
  pinnedOnly?: boolean;
  prefix?: string;
  limit?: number;
}

export interface NodeClientOptions {
  /** Bound on each call. */
  timeoutMs: number;
  adminToken?: string;
  /** Mutual TLS: kvctl's certificate and the CA nodes are verified against; plaintext when absent. */
  tls?: TlsMaterial;
  /** Overrides the credentials made from `tls`. */
  credentials?: grpc.ChannelCredentials;
  /** Cancels every call in flight (CANCELLED): `kvctl watch` quitting mid-refresh. */
  signal?: AbortSignal;
}

const HealthClient = grpc.makeClientConstructor(healthService as unknown as grpc.ServiceDefinition, "grpc.health.v1.Health");

export class NodeClient {
  readonly address: string;
  private readonly inspect: grpc.Client;
  private readonly admin: grpc.Client;
  private readonly healthClient: grpc.Client;
  private readonly opts: NodeClientOptions;
  private closed = false;

  constructor(address: string, opts: NodeClientOptions) {
    this.address = address;
    this.opts = opts;
    const creds = opts.credentials ?? channelCredentialsFor(opts.tls);
    const v1 = kvbridgeV1();
    // One channel for the three clients: grpc-js shares it when the target and options match.
    this.inspect = new v1.Inspect(address, creds);
    this.admin = new v1.Admin(address, creds);
    this.healthClient = new HealthClient(address, creds);
  }

  stats(): Promise<Stats__Output> {
    return this.call<Stats__Output>(this.inspect, "GetStats", {});
  }

  async health(): Promise<HealthStatus> {
    const res = await this.call<{ status: HealthStatus }>(this.healthClient, "Check", { service: "" });
    return res.status;
  }

  entries(filter: EntryFilter = {}): Promise<ListEntriesResponse__Output> {
    return this.call<ListEntriesResponse__Output>(this.inspect, "ListEntries", {
      state: filter.state ?? "",
      pinnedOnly: filter.pinnedOnly ?? false,
      prefix: filter.prefix ?? "",
      limit: filter.limit ?? 0,
    });
  }

  async requests(): Promise<RequestInfo__Output[]> {
    return (await this.call<ListRequestsResponse__Output>(this.inspect, "ListRequests", {})).requests;
  }

  evict(req: { key: string } | { allUnpinned: true }): Promise<EvictResponse__Output> {
    return this.call<EvictResponse__Output>(this.admin, "Evict", req, this.adminMetadata());
  }

  abortRequest(requestId: string, reason: string): Promise<AdminAbortResponse__Output> {
    return this.call<AdminAbortResponse__Output>(this.admin, "AbortRequest", { requestId, reason }, this.adminMetadata());
  }

  /** Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inspect.close();
    this.admin.close();
    this.healthClient.close();
  }

  private adminMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.opts.adminToken) md.set(ADMIN_TOKEN_METADATA_KEY, this.opts.adminToken);
    return md;
  }

  private async call<Res>(client: grpc.Client, method: string, req: object, metadata?: grpc.Metadata): Promise<Res> {
    try {
      return await callUnary<object, Res>(client, method, req, { timeoutMs: this.opts.timeoutMs, signal: this.opts.signal }, metadata);
    } catch (err) {
      const e = err instanceof KvbridgeError ? err : new KvbridgeError("INTERNAL", String(err), { cause: err });
      if (e.code === "UNAVAILABLE" || e.code === "DEADLINE_EXCEEDED") {
        // grpc-js says only "Failed to connect" for a TLS mismatch; one TLS handshake of our own says why.
        const tls = e.code === "UNAVAILABLE" && !this.opts.signal?.aborted ? await diagnoseTls(this.address, this.opts.tls, Math.min(2_000, this.opts.timeoutMs)) : undefined;
        if (tls) throw new KvbridgeError(tlsErrorCode(tls), `node ${this.address}: ${tls.message}`, { cause: err });
        throw new KvbridgeError(
          e.code,
          `node ${this.address} did not answer ${method} within ${this.opts.timeoutMs} ms (${e.message}); check the address and that the node is running, or raise --timeout`,
          { cause: err },
        );
      }
      throw e;
    }
  }
}

/** A node that wants a certificate we lack or refused ours denied us (exit 4); the rest is unreachable. */
function tlsErrorCode(d: TlsDiagnosis): "PERMISSION_DENIED" | "UNAVAILABLE" {
  return d.kind === "server-requires-tls" || d.kind === "client-refused" ? "PERMISSION_DENIED" : "UNAVAILABLE";
}
