// The receiver's TCP data plane: a listener whose connections carry WRITE frames into pool slots,
// each frame admitted by the WriteGate before a single payload byte is read into memory. With TLS,
// connections are mutual TLS and payloads are copied out of decrypted reads (see receiveMode).

import net from "node:net";
import { once } from "node:events";
import tls from "node:tls";
import type { Logger } from "pino";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import type { PoolMemory } from "../../memory/pool-memory.js";
import type { DataPlaneOffer, ReceiverDataPlane, WriteGate } from "../transport.js";
import { DEFAULT_MAX_FRAME_BYTES } from "./tcp-frame.js";
import { TcpReceiverConnection, type TcpReceiveMode } from "./tcp-receiver-connection.js";
import { tlsErrorReason, tlsServerOptions, type TcpTlsOptions } from "./tcp-tls.js";

export interface TcpReceiverOptions {
  host: string;
  /** 0 picks a free port; offer() reports the bound one. */
  port: number;
  memory: PoolMemory;
  gate: WriteGate;
  /** Largest frame payload accepted (and skipped when refused); larger ones close the connection. */
  maxFrameBytes?: number;
  logger?: Logger;
  /** Host put in the offer when it differs from the listen address (e.g. listening on 0.0.0.0). */
  advertiseHost?: string;
  /**
   * Default "zero-copy" (measured faster, see bench/tcp-bench.ts). With `tls` always "copy": TLS
   * decrypts in user space, so the kernel can never read a payload straight into its slot.
   */
  receiveMode?: TcpReceiveMode;
  /** Mutual TLS: every connection must present a certificate signed by `tls.ca`. Default plaintext. */
  tls?: TcpTlsOptions;
  /** A frame stalled this long mid-way closes its connection. Default 30 s. */
  stallTimeoutMs?: number;
  /** Request ids silent on a connection this long are no longer reported when it ends. Default 10 min. */
  forgetIdleMs?: number;
}

export class TcpReceiverDataPlane implements ReceiverDataPlane {
  readonly kind = "tcp" as const;
  private readonly server: net.Server;
  private readonly host: string;
  private readonly port: number;
  private readonly connections = new Set<TcpReceiverConnection>();
  /** TLS: raw sockets still in their handshake (closed with the plane, not left to time out). */
  private readonly handshaking = new Set<net.Socket>();
  private closing: Promise<void> | null = null;
  private unwatch: () => void = () => undefined;

  private constructor(server: net.Server, host: string, port: number) {
    this.server = server;
    this.host = host;
    this.port = port;
  }

  static async listen(opts: TcpReceiverOptions): Promise<TcpReceiverDataPlane> {
    const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > 0xffffffff) {
      throw new KvbridgeError("INVALID_ARGUMENT", `maxFrameBytes ${maxFrameBytes} must be an integer in 1..2^32-1`);
    }
    const logger = opts.logger?.child({ component: "tcp-receiver" });
    const mode: TcpReceiveMode = opts.tls ? "copy" : (opts.receiveMode ?? "zero-copy");
    // Plaintext: paused on accept so no byte is read before the connection picks where reads land.
    const server = opts.tls ? tls.createServer({ ...tlsServerOptions(opts.tls), noDelay: true }) : net.createServer({ pauseOnConnect: true, noDelay: true });
    let plane: TcpReceiverDataPlane | null = null;
    const accept = (accepted: net.Socket): void => {
      if (!plane || plane.closing) {
        accepted.destroy();
        return;
      }
      const conn = new TcpReceiverConnection(accepted, {
        gate: opts.gate,
        memory: opts.memory,
        maxFrameBytes,
        mode,
        stallTimeoutMs: opts.stallTimeoutMs ?? 30_000,
        forgetIdleMs: opts.forgetIdleMs ?? 600_000,
        logger,
        onClosed: (c) => plane?.connections.delete(c),
      });
      plane.connections.add(conn);
    };
    if (opts.tls) {
      server.on("connection", (raw: net.Socket) => {
        if (!plane || plane.closing) {
          raw.destroy();
          return;
        }
        plane.handshaking.add(raw);
        raw.once("close", () => plane?.handshaking.delete(raw));
      });
      server.on("secureConnection", (secured: tls.TLSSocket) => accept(secured));
      // A peer without a certificate from our CA, or one speaking plaintext, never gets a frame in.
      server.on("tlsClientError", (err: Error, raw: tls.TLSSocket) => {
        logger?.warn(
          { remote: `${raw.remoteAddress ?? "?"}:${raw.remotePort ?? "?"}`, reason: tlsErrorReason(err) },
          "tcp data connection refused: TLS handshake failed (this data plane requires mutual TLS with a certificate from its CA)",
        );
      });
    } else {
      server.on("connection", accept);
    }
    server.listen({ host: opts.host, port: opts.port });
    try {
      await Promise.race([
        once(server, "listening"),
        once(server, "error").then(([err]) => {
          throw err;
        }),
      ]);
    } catch (err) {
      server.close();
      const message = err instanceof Error ? err.message : String(err);
      throw new KvbridgeError(
        "UNAVAILABLE",
        `cannot listen for TCP data on ${opts.host}:${opts.port}: ${message}; pick a free port or another address`,
        { cause: err },
      );
    }
    server.on("error", (err) => logger?.error({ err }, "tcp data-plane listener error"));
    const address = server.address();
    if (address === null || typeof address === "string") {
      server.close();
      throw new KvbridgeError("INTERNAL", "TCP data-plane listener has no IP address after listening");
    }
    plane = new TcpReceiverDataPlane(server, opts.advertiseHost ?? opts.host, address.port);
    const p = plane;
    // Frames still arriving whose allocation lapsed stop writing into the pool before its slots serve anyone else.
    const unwatch = opts.gate.watchAdmissions?.(() => {
      for (const c of p.connections) c.revalidate();
    });
    if (unwatch) p.unwatch = unwatch;
    logger?.info({ host: opts.host, port: address.port, mode, tls: opts.tls !== undefined }, "tcp data plane listening");
    return plane;
  }

  offer(): DataPlaneOffer {
    return { kind: "tcp", host: this.host, port: this.port };
  }

  /** Number of open data connections (for inspection and tests). */
  get connectionCount(): number {
    return this.connections.size;
  }

  close(): Promise<void> {
    if (!this.closing) {
      this.unwatch();
      this.closing = (async () => {
        const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
        const conns = [...this.connections];
        for (const raw of this.handshaking) raw.destroy();
        for (const c of conns) c.destroy("receiver data plane closing");
        await Promise.all([stopped, ...conns.map((c) => c.closed)]);
      })();
    }
    return this.closing;
  }
}
