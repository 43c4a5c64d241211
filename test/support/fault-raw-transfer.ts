// A hand-driven transfer client for fault tests: Hello, Alloc, writes over a real data plane (TCP or
// UCX) and Commit as separate steps, so a test can put a fault (a pause past the lease, an Abort, a
// late write) between any two of them. KvSender does the same steps in one call and renews leases.
import type { CommitResponse__Output } from "../../src/wire/generated/kvbridge/v1/CommitResponse.js";
import type { HelloResponse__Output } from "../../src/wire/generated/kvbridge/v1/HelloResponse.js";
import { chunkCrc32 } from "../../src/transfer/commit-proof.js";
import { offerFromWire } from "../../src/transfer/offer-codec.js";
import { TcpSenderTransport } from "../../src/transport/tcp/tcp-sender.js";
import type { SenderChannel, SenderTransport, SlotWrite, TransportKind } from "../../src/transport/transport.js";
import { UcxSenderTransport } from "../../src/transport/ucx/index.js";
import { nodeClients, type NodeClients } from "./node-clients.js";

export interface Allocation {
  requestId: string;
  keys: string[];
  /** Slot and token of each fresh key, in key order (deduped keys are left out). */
  slots: number[];
  tokens: Buffer[];
  deduped: number[];
}

export class RawTransferClient {
  readonly clients: NodeClients;
  private hello: HelloResponse__Output | undefined;
  private readonly transports: SenderTransport[] = [];
  private readonly channels = new Map<TransportKind, SenderChannel>();
  /** What each request wrote, as the Commit proofs a real sender sends (one-sided puts need them). */
  private readonly proofs = new Map<string, Array<{ key: string; crc32: number }>>();

  constructor(readonly target: string) {
    this.clients = nodeClients(target);
  }

  async handshake(): Promise<HelloResponse__Output> {
    this.hello ??= await this.clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
    return this.hello;
  }

  async alloc(requestId: string, keys: string[], size: number): Promise<Allocation> {
    const hello = await this.handshake();
    const res = await this.clients.receiver.alloc({
      requestId,
      keys,
      sizes: keys.map(() => size),
      batchSeq: 0,
      totalChunks: 0,
      isLastBatch: true,
      fingerprint: "",
      generation: hello.generation,
    }, { timeoutMs: 10_000 });
    return { requestId, keys, slots: res.remoteIndexes, tokens: res.writeTokens, deduped: res.alreadySentIndexes };
  }

  /** Writes `data[i]` into the allocation's i-th fresh slot over `kind`; resolves when it is in the receiver's memory. */
  async write(kind: TransportKind, a: Allocation, data: Buffer[], signal: AbortSignal = AbortSignal.timeout(20_000)): Promise<void> {
    const hello = await this.handshake();
    const writes: SlotWrite[] = a.slots.map((slot, i) => ({ slot, poolOffset: slot * Number(hello.slotBytes), token: a.tokens[i]!, data: data[i]! }));
    const fresh = a.keys.filter((_, i) => !a.deduped.includes(i));
    const proofs = this.proofs.get(a.requestId) ?? [];
    fresh.forEach((key, i) => proofs.push({ key, crc32: chunkCrc32(data[i]!) }));
    this.proofs.set(a.requestId, proofs);
    await (await this.channel(kind)).writeAll(a.requestId, writes, signal);
  }

  commit(requestId: string): Promise<CommitResponse__Output> {
    return this.clients.receiver.commit({ requestId, proofs: this.proofs.get(requestId) ?? [] }, { timeoutMs: 10_000 });
  }

  abort(requestId: string): Promise<unknown> {
    return this.clients.receiver.abort({ requestId, reason: "fault test" }, { timeoutMs: 10_000 });
  }

  release(requestId: string): Promise<unknown> {
    return this.clients.receiver.release({ requestId }, { timeoutMs: 10_000 });
  }

  private async channel(kind: TransportKind): Promise<SenderChannel> {
    const existing = this.channels.get(kind);
    if (existing && !existing.broken) return existing;
    const hello = await this.handshake();
    const offer = hello.offers.map(offerFromWire).find((o) => o.kind === kind);
    if (!offer) throw new Error(`receiver ${this.target} offers no ${kind} data plane`);
    const transport = kind === "tcp" ? new TcpSenderTransport({ connections: 1 }) : UcxSenderTransport.create();
    this.transports.push(transport);
    const ch = await transport.connect(offer, AbortSignal.timeout(10_000));
    this.channels.set(kind, ch);
    return ch;
  }

  async close(): Promise<void> {
    for (const ch of this.channels.values()) await ch.close();
    for (const t of this.transports) await t.close();
    this.clients.close();
  }
}
