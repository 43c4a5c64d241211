// The HTTP endpoint Prometheus scrapes: GET /metrics renders a prom-client registry. Nothing else is
// served (404), nothing can be changed through it, and every connection is bounded in time.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface MetricsListen {
  host: string;
  port: number;
}

export interface MetricsServer {
  /** host:port actually bound (the real port when 0 was asked for). */
  readonly address: string;
  readonly port: number;
  /** Idempotent: stops accepting, drops open connections. */
  close(): Promise<void>;
}

/**
 * Answers `/metrics` from `registry` and returns true; returns false for any other path. Usable as
 * a route of another HTTP server (the router serves /metrics next to its API this way).
 */
export function metricsRoute(registry: Registry): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("method not allowed: use GET\n");
      return true;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { "content-type": registry.contentType });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (err: unknown) => {
        // A collector threw: say so to the scraper (it records the target as down), never crash.
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end(`metrics collection failed: ${(err as Error).message}\n`);
      },
    );
    return true;
  };
}

export async function startMetricsServer(listen: MetricsListen, registry: Registry): Promise<MetricsServer> {
  const route = metricsRoute(registry);
  const server: Server = createServer((req, res) => {
    if (!route(req, res)) res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: metrics are served at /metrics\n");
  });
  // A scraper that connects and stays silent must not hold a socket forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new KvbridgeError("UNAVAILABLE", `cannot serve metrics on ${formatListen(listen)}: ${err.message}; pick another --metrics-listen`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(listen.port, listen.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    address: formatListen({ host: listen.host, port }),
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function formatListen(l: MetricsListen): string {
  return l.host.includes(":") ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}
