// kvctl's connection to one node: the read-only Inspect service, grpc.health.v1, and the guarded
// Admin service (its token sent as metadata; with mutual TLS the client certificate is a credential
// too). Every call is bounded by the same timeout.
import * as grpc from "@grpc/grpc-js";
import { toKvbridgeError, KvbridgeError } from "../../errors/kvbridge-error.js";
import { AdminClient } from "../../wire/admin-client.js";
import type { AdminAbortResponse__Output } from "../../wire/generated/kvbridge/v1/AdminAbortResponse.js";
import type { EvictResponse__Output } from "../../wire/generated/kvbridge/v1/EvictResponse.js";
import type { ListEntriesResponse__Output } from "../../wire/generated/kvbridge/v1/ListEntriesResponse.js";
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import type { Stats__Output } from "../../wire/generated/kvbridge/v1/Stats.js";
import { HealthClient, type HealthStatus } from "../../wire/health-client.js";
import { InspectClient } from "../../wire/inspect-client.js";
import type { CallOptions } from "../../wire/unary-call.js";
import { channelCredentialsFor } from "../../security/grpc-credentials.js";
import { diagnoseTls, type TlsDiagnosis } from "../../security/tls-diagnosis.js";
import type { TlsMaterial } from "../../security/tls-material.js";
import { ADMIN_TOKEN_METADATA_KEY } from "../../services/admin-service.js";
import { probeConnect, type ConnectOutcome } from "./connect-probe.js";

export type { HealthStatus };

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

export class NodeClient {
  readonly address: string;
  private readonly inspect: InspectClient;
  private readonly admin: AdminClient;
  private readonly healthClient: HealthClient;
  private readonly opts: NodeClientOptions;
  private closed = false;

  constructor(address: string, opts: NodeClientOptions) {
    this.address = address;
    this.opts = opts;
    const creds = opts.credentials ?? channelCredentialsFor(opts.tls);
    // One channel for the three clients: grpc-js shares it when the target and options match.
    this.inspect = new InspectClient(address, creds);
    this.admin = new AdminClient(address, creds);
    this.healthClient = new HealthClient(address, creds);
  }

  stats(): Promise<Stats__Output> {
    return this.call("GetStats", (o) => this.inspect.getStats({}, o));
  }

  health(): Promise<HealthStatus> {
    return this.call("health Check", (o) => this.healthClient.check("", o));
  }

  entries(filter: EntryFilter = {}): Promise<ListEntriesResponse__Output> {
    return this.call("ListEntries", (o) =>
      this.inspect.listEntries({ state: filter.state ?? "", pinnedOnly: filter.pinnedOnly ?? false, prefix: filter.prefix ?? "", limit: filter.limit ?? 0 }, o),
    );
  }

  async requests(): Promise<RequestInfo__Output[]> {
    return (await this.call("ListRequests", (o) => this.inspect.listRequests({}, o))).requests;
  }

  evict(req: { key: string } | { allUnpinned: true }): Promise<EvictResponse__Output> {
    return this.call("Evict", (o) => this.admin.evict(req, { ...o, metadata: this.adminMetadata() }));
  }

  abortRequest(requestId: string, reason: string): Promise<AdminAbortResponse__Output> {
    return this.call("AbortRequest", (o) => this.admin.abortRequest({ requestId, reason }, { ...o, metadata: this.adminMetadata() }));
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

  /**
   * One call under kvctl's timeout and signal. A node that never answered gets an error that says
   * what happened: the connection refused, the host unknown or unreachable, a TLS mismatch, or (only
   * when the deadline really passed) no answer in time.
   */
  private async call<Res>(what: string, run: (o: CallOptions) => Promise<Res>): Promise<Res> {
    try {
      return await run({ timeoutMs: this.opts.timeoutMs, signal: this.opts.signal });
    } catch (err) {
      const e = toKvbridgeError(err);
      // A node that answered UNAVAILABLE itself (loading, draining) said why: its message stands.
      if (e.remote || (e.code !== "UNAVAILABLE" && e.code !== "DEADLINE_EXCEEDED")) throw e;
      if (e.code === "DEADLINE_EXCEEDED" || this.opts.signal?.aborted) {
        throw new KvbridgeError(
          e.code,
          `node ${this.address} did not answer ${what} within ${this.opts.timeoutMs} ms; check that the node is running and not overloaded, or raise --timeout`,
          { cause: err },
        );
      }
      // grpc-js says only "Failed to connect" for a TLS mismatch; one TLS handshake of our own says why.
      const bound = Math.min(2_000, this.opts.timeoutMs);
      const tls = await diagnoseTls(this.address, this.opts.tls, bound);
      if (tls) throw new KvbridgeError(tlsErrorCode(tls), `node ${this.address}: ${tls.message}`, { cause: err });
      throw new KvbridgeError("UNAVAILABLE", unreachableMessage(this.address, what, await probeConnect(this.address, bound), e.message), { cause: err });
    }
  }
}

/** What an unreachable node's error says, from our own connection attempt's outcome. */
function unreachableMessage(address: string, what: string, o: ConnectOutcome, grpcMessage: string): string {
  switch (o.kind) {
    case "refused":
      return `node ${address}: connection refused (nothing listens there); check the address and that the node is running`;
    case "unresolved":
      return `node ${address}: the host name does not resolve (${o.code}); check the address`;
    case "unreachable":
      return `node ${address}: the host cannot be reached (${o.code}); check the address and the network`;
    case "timeout":
      return `node ${address}: the connection attempt got no answer (a host down or a firewall dropping packets); check the address and the network`;
    case "connected":
      return `node ${address} accepted the connection but did not answer ${what} as a kvbridge node (${grpcMessage}); check the address and port`;
    case "other":
      return `node ${address} could not be reached (${o.code}: ${grpcMessage}); check the address and that the node is running`;
  }
}

/** A node that wants a certificate we lack or refused ours denied us (exit 4); the rest is unreachable. */
function tlsErrorCode(d: TlsDiagnosis): "PERMISSION_DENIED" | "UNAVAILABLE" {
  return d.kind === "server-requires-tls" || d.kind === "client-refused" ? "PERMISSION_DENIED" : "UNAVAILABLE";
}
