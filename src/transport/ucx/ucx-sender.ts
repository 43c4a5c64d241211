// The sender's UCX transport: one worker per sender, one endpoint (channel) per receiver offer, the
// receiver's rkey unpacked once per channel. connect() proves the endpoint with a bounded flush.
// Channels commit requests on the data plane (COMMIT active messages) unless dataPlaneCommit is off.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import {
  UCP_EP_CLOSE_FLAG_FORCE,
  UCP_EP_PARAM_FIELD_ERR_HANDLER,
  UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE,
  UCP_EP_PARAM_FIELD_REMOTE_ADDRESS,
  UCP_ERR_HANDLING_MODE_NONE,
  UCP_ERR_HANDLING_MODE_PEER,
  UCP_FEATURE_AM,
  UCS_OK,
} from "../../../native-bindings/ucx/ucx-constants.js";
import type { UcpEp, UcpRkey } from "../../../native-bindings/ucx/ucx-library.js";
import type { UcxContextOptions } from "../../../native-bindings/ucx/ucx-context.js";
import type { DataPlaneOffer, SenderChannel, SenderTransport } from "../transport.js";
import { UcxCommitSender } from "./ucx-commit-sender.js";
import { UcxSenderChannel, type UcxChannelLimits, type UcxErrorHandling } from "./ucx-channel.js";
import { RequestPump } from "./ucx-request-pump.js";
import { endpointDirectness, UcxNotDirectError } from "./ucx-directness.js";
import { MappedTarget } from "./ucx-mapped-target.js";
import { ucxError } from "./ucx-status.js";
import { UcxWorker } from "./ucx-worker.js";

export interface UcxSenderOptions extends UcxContextOptions, Partial<UcxChannelLimits> {
  /**
   * "none" (default): UCX 1.13 offers no peer-failure handling on its shared-memory transports, so
   * asking for it would push same-host peers onto loopback TCP; dead peers are then detected by
   * transport errors and the no-progress watchdog (stallTimeoutMs). "peer": UCX error handling and
   * keepalive (recommended across hosts on RDMA fabrics; shared memory is then not used).
   */
  errorHandling?: UcxErrorHandling;
  /** Bound on connect(): endpoint creation plus its first flush (default 10 s). */
  connectTimeoutMs?: number;
  /** Longest synchronous progress stretch before yielding to the event loop (default 2 ms). */
  sliceMs?: number;
  /** Worker name shown in UCX logs. */
  name?: string;
  /**
   * Use UCX even where its puts are emulated (no mapped pool, no RDMA lane). For tests of those
   * paths only: kvbridge's senders decline them (UcxNotDirectError) and use TCP.
   */
  allowEmulatedPuts?: boolean;
  /**
   * Populate the page tables of a receiver's pool mapped into this process in the background at
   * connect (MADV_POPULATE_WRITE), so first writes to its pages take no page fault. Default true.
   */
  prefaultMapping?: boolean;
  /**
   * Channels offer writeAndCommit: a COMMIT active message behind a request's writes (used by the
   * sender only with receivers that negotiated data_plane_commit). Default true.
   */
  dataPlaneCommit?: boolean;
  /** How long a COMMIT waits for its answer before its outcome is unknown (settled over gRPC). Default 1.5 s: a dead receiver never answers, and the gRPC Commit then fails at once. */
  commitTimeoutMs?: number;
}

export const UCX_SENDER_DEFAULTS = {
  window: 32,
  maxPutBytes: 4 * 1024 * 1024,
  stallTimeoutMs: 10_000,
  closeTimeoutMs: 2_000,
  connectTimeoutMs: 10_000,
  commitTimeoutMs: 1_500,
} as const;

export class UcxSenderTransport implements SenderTransport {
  readonly kind = "ucx" as const;
  private readonly worker: UcxWorker;
  private readonly pump: RequestPump;
  private readonly limits: UcxChannelLimits;
  private readonly errorHandling: UcxErrorHandling;
  private readonly connectTimeoutMs: number;
  private readonly allowEmulatedPuts: boolean;
  private readonly prefaultMapping: boolean;
  private readonly channels = new Map<bigint, UcxSenderChannel>();
  private readonly errHandler: bigint;
  private readonly commits: UcxCommitSender | null;
  private nextId = 1n;
  private closing: Promise<void> | null = null;

  private constructor(worker: UcxWorker, opts: UcxSenderOptions, limits: UcxChannelLimits, connectTimeoutMs: number) {
    this.worker = worker;
    this.limits = limits;
    this.connectTimeoutMs = connectTimeoutMs;
    this.errorHandling = opts.errorHandling ?? "none";
    this.allowEmulatedPuts = opts.allowEmulatedPuts === true;
    this.prefaultMapping = opts.prefaultMapping !== false;
    this.pump = new RequestPump(worker, { sliceMs: opts.sliceMs });
    // UCX calls this from inside ucp_worker_progress when an endpoint fails; arg is the channel id.
    this.errHandler = worker.ucx.registerErrHandler((arg, _ep, status) => {
      if (arg !== null) this.channels.get(arg)?.endpointFailed(status);
    });
    this.commits = opts.dataPlaneCommit === false ? null : commitSenderOrNull(worker, this.pump, opts.commitTimeoutMs ?? UCX_SENDER_DEFAULTS.commitTimeoutMs);
  }

  /** One worker for this sender. Throws INVALID_ARGUMENT for bad limits, UNAVAILABLE when UCX cannot be used here. */
  static create(opts: UcxSenderOptions = {}): UcxSenderTransport {
    // Validated before anything native exists, so a bad option leaves nothing behind.
    const limits: UcxChannelLimits = {
      window: positiveInt("window", opts.window ?? UCX_SENDER_DEFAULTS.window),
      maxPutBytes: positiveInt("maxPutBytes", opts.maxPutBytes ?? UCX_SENDER_DEFAULTS.maxPutBytes),
      stallTimeoutMs: positiveInt("stallTimeoutMs", opts.stallTimeoutMs ?? UCX_SENDER_DEFAULTS.stallTimeoutMs),
      closeTimeoutMs: positiveInt("closeTimeoutMs", opts.closeTimeoutMs ?? UCX_SENDER_DEFAULTS.closeTimeoutMs),
    };
    const connectTimeoutMs = positiveInt("connectTimeoutMs", opts.connectTimeoutMs ?? UCX_SENDER_DEFAULTS.connectTimeoutMs);
    if (opts.sliceMs !== undefined) positiveInt("sliceMs", opts.sliceMs);
    if (opts.commitTimeoutMs !== undefined) positiveInt("commitTimeoutMs", opts.commitTimeoutMs);
    if (opts.errorHandling !== undefined && opts.errorHandling !== "none" && opts.errorHandling !== "peer") {
      throw new KvbridgeError("INVALID_ARGUMENT", `UCX sender option errorHandling must be "none" or "peer", got ${String(opts.errorHandling)}`);
    }
    const worker = UcxWorker.create(opts.name ?? `kvbridge-sender-${process.pid}`, opts);
    try {
      return new UcxSenderTransport(worker, opts, limits, connectTimeoutMs);
    } catch (err) {
      worker.destroy();
      throw err;
    }
  }

  async connect(offer: DataPlaneOffer, signal: AbortSignal): Promise<SenderChannel> {
    if (this.closing) throw new KvbridgeError("FAILED_PRECONDITION", "the UCX sender transport is closed");
    if (offer.kind !== "ucx") throw new KvbridgeError("INVALID_ARGUMENT", `the UCX transport cannot connect to a ${offer.kind} offer`);
    if (offer.workerAddress.length === 0 || offer.rkey.length === 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", "the UCX offer has an empty worker address or rkey; the receiver's Hello answer is malformed");
    }
    if (signal.aborted) throw new KvbridgeError("CANCELLED", "connect was cancelled");
    const { ucx } = this.worker;
    const { fns } = ucx;
    const id = this.nextId++;

    const epOut: [UcpEp | null] = [null];
    const status = fns.ucp_ep_create(
      this.worker.worker,
      {
        field_mask: UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER,
        address: offer.workerAddress,
        err_mode: this.errorHandling === "peer" ? UCP_ERR_HANDLING_MODE_PEER : UCP_ERR_HANDLING_MODE_NONE,
        err_handler: { cb: this.errHandler, arg: id },
      },
      epOut,
    );
    if (status !== UCS_OK || epOut[0] === null) {
      throw ucxError(ucx, "cannot reach the receiver over UCX (ucp_ep_create); check UCX_TLS on both sides, or use TCP", status, "UNAVAILABLE");
    }
    const ep = epOut[0];
    const rkeyOut: [UcpRkey | null] = [null];
    const unpack = fns.ucp_ep_rkey_unpack(ep, offer.rkey, rkeyOut);
    if (unpack !== UCS_OK || rkeyOut[0] === null) {
      this.discardEndpoint(ep);
      throw ucxError(ucx, "the receiver's rkey cannot be used on this endpoint (ucp_ep_rkey_unpack)", unpack, "UNAVAILABLE");
    }
    const channel = new UcxSenderChannel({
      id,
      worker: this.worker,
      pump: this.pump,
      ep,
      rkey: rkeyOut[0],
      baseAddress: offer.baseAddress,
      errorHandling: this.errorHandling,
      limits: this.limits,
      onClosed: (ch) => this.channels.delete(ch.id),
      commits: this.commits,
    });
    this.channels.set(id, channel);
    try {
      // The flush completes only once the connection to the peer is established, so a dead or
      // unreachable receiver fails here, within the bound.
      await withTimeout(channel.probe(signal), this.connectTimeoutMs, () =>
        new KvbridgeError("UNAVAILABLE", `the UCX receiver did not answer within ${this.connectTimeoutMs} ms (connect)`),
      );
    } catch (err) {
      await channel.close();
      throw err;
    }
    // Accept UCX only where puts land directly in the receiver's pool (mapped shared memory or
    // RDMA); over an emulating transport (an older receiver offering UCX tcp) decline, so the
    // sender falls back to its TCP data plane for this peer.
    const directness = endpointDirectness(ucx, ep, rkeyOut[0], offer.baseAddress);
    channel.directness = directness;
    if (!directness.direct && !this.allowEmulatedPuts) {
      await channel.close();
      throw new UcxNotDirectError("UCX declined for this receiver", directness);
    }
    const mapped: [bigint | null] = [null];
    if (fns.ucp_rkey_ptr(rkeyOut[0], offer.baseAddress, mapped) === UCS_OK && mapped[0] !== null) {
      const target = new MappedTarget(ucx, mapped[0]);
      if (this.prefaultMapping) target.startPrefault();
      channel.useMapping(target);
    }
    return channel;
  }

  private discardEndpoint(ep: UcpEp): void {
    const { ucx } = this.worker;
    const r = ucx.classifyStatusPtr(ucx.fns.ucp_ep_close_nbx(ep, ucx.requestParam({ flags: this.errorHandling === "peer" ? UCP_EP_CLOSE_FLAG_FORCE : 0 })));
    // Completes with the worker at the latest; nothing waits on it.
    if (r.kind === "request") ucx.fns.ucp_request_free(r.request);
  }

  /** Idempotent: closes every channel (bounded), then the worker. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.channels.values()].map((c) => c.close()));
      this.commits?.close();
      this.pump.close();
      for (const c of this.channels.values()) c.forget();
      this.channels.clear();
      this.worker.destroy();
      this.worker.ucx.unregisterCallback(this.errHandler);
    })();
    return this.closing;
  }
}

/**
 * The commit sender, or null on a context without active messages (UCX tcp) or where UCX refuses its
 * handler: channels then only write, and the sender commits over gRPC.
 */
function commitSenderOrNull(worker: UcxWorker, pump: RequestPump, timeoutMs: number): UcxCommitSender | null {
  if ((worker.lease.features & UCP_FEATURE_AM) === 0n) return null;
  try {
    return new UcxCommitSender(worker, pump, timeoutMs);
  } catch {
    return null;
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new KvbridgeError("INVALID_ARGUMENT", `UCX sender option ${name} must be a positive integer, got ${v}`);
  return v;
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => KvbridgeError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(onTimeout()), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err);
      },
    );
  });
}
