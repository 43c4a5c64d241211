// What a sender knows about one receiver: its handshake (protocol version and capabilities agreed,
// data-plane offers and the ones it does not offer, with why), its control-plane client and the data
// channels opened to it. The handshake speaks protocol 2 and falls back to 1 for an older receiver.

import * as grpc from "@grpc/grpc-js";
import { SENDER_KEEPALIVE_TIME_MS, SENDER_KEEPALIVE_TIMEOUT_MS } from "../config/defaults.js";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import type { DataPlaneOffer, SenderChannel, TransportKind } from "../transport/transport.js";
import type { HelloResponse__Output } from "../wire/generated/kvbridge/v1/HelloResponse.js";
import { CAPABILITY_DATA_PLANE_COMMIT, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from "../wire/proto.js";
import { ReceiverClient } from "../wire/receiver-client.js";
import { CLIENT_CHANNEL_OPTIONS, keepaliveOptions } from "../wire/unary-call.js";
import { offerFromWire } from "./offer-codec.js";

/** Forces the control-plane protocol a sender speaks (tests, and a sender pinned to an old fleet). */
export type ProtocolChoice = "auto" | 1;

export interface Peer {
  target: string;
  client: ReceiverClient;
  hello: HelloResponse__Output;
  offers: DataPlaneOffer[];
  /** The receiver takes a request's Commit on the data plane (protocol 2, data_plane_commit agreed). */
  dataPlaneCommit: boolean;
  channels: Partial<Record<TransportKind, Promise<SenderChannel>>>;
  /** Set after a UCX failure: this peer is served over TCP from then on. */
  ucxDisabled: boolean;
  /** Pushes using this peer's client and channels right now. */
  users: number;
  /** Forgotten (a newer handshake replaces it): closed once its last user is done. */
  retired: boolean;
}

export interface HandshakeOptions {
  fingerprint: string;
  senderId: string;
  transports: readonly TransportKind[];
  rpcTimeoutMs: number;
  credentials: grpc.ChannelCredentials;
  protocol: ProtocolChoice;
}

/** Why the receiver does not offer `kind` to this sender, as it said in Hello ("" when it did not say). */
export function notOfferedReason(hello: HelloResponse__Output, kind: TransportKind): { reason: string; message: string } | undefined {
  const n = hello.notOffered.find((x) => x.transport === kind);
  return n ? { reason: n.reason, message: n.message } : undefined;
}

export async function handshake(target: string, o: HandshakeOptions, signal?: AbortSignal): Promise<Peer> {
  // HTTP/2 keepalive: a connection stalled by a partition is noticed in seconds and replaced,
  // instead of waiting for the kernel's next retransmission after the network heals.
  const client = new ReceiverClient(target, o.credentials, {
    ...CLIENT_CHANNEL_OPTIONS,
    ...keepaliveOptions(SENDER_KEEPALIVE_TIME_MS, SENDER_KEEPALIVE_TIMEOUT_MS),
    // A connection of its own (not grpc-js' shared subchannel pool), so a replaced peer's fresh
    // channel really connects afresh.
    "grpc.use_local_subchannel_pool": 1,
  });
  try {
    const ask = (version: number): Promise<HelloResponse__Output> =>
      client.hello(
        {
          protocolVersion: version,
          fingerprint: o.fingerprint,
          transports: [...o.transports],
          senderId: o.senderId,
          capabilities: version >= 2 ? [CAPABILITY_DATA_PLANE_COMMIT] : [],
        },
        { timeoutMs: o.rpcTimeoutMs, signal },
      );
    let hello: HelloResponse__Output;
    if (o.protocol === 1) hello = await ask(1);
    else {
      try {
        hello = await ask(PROTOCOL_VERSION);
      } catch (err) {
        // A receiver of protocol 1 refuses 2 by name: speak 1 to it (Commit over gRPC).
        const e = toKvbridgeError(err);
        if (e.code !== "INCOMPATIBLE" || e.details.reason !== "protocol_mismatch") throw e;
        hello = await ask(1);
      }
    }
    if (hello.protocolVersion < MIN_PROTOCOL_VERSION || hello.protocolVersion > PROTOCOL_VERSION) {
      throw new KvbridgeError("INCOMPATIBLE", `receiver ${target} speaks protocol ${hello.protocolVersion}, this sender ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`, {
        details: { reason: "protocol_mismatch" },
      });
    }
    const offers = hello.offers.map(offerFromWire);
    const dataPlaneCommit = hello.protocolVersion >= 2 && hello.capabilities.includes(CAPABILITY_DATA_PLANE_COMMIT);
    return { target, client, hello, offers, dataPlaneCommit, channels: {}, ucxDisabled: false, users: 0, retired: false };
  } catch (err) {
    client.close();
    throw err;
  }
}

/** A channel that lost its connection and is in backoff or on a connect attempt (possibly one a partition stalled). */
export function channelStuck(client: ReceiverClient): boolean {
  const state = client.connectivity();
  return state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.CONNECTING;
}
