// The router's HTTP listener and request bodies: binding (a failure is a KvbridgeError naming the
// address), bounded JSON body reading, and a close that drops open connections.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { formatHostPort, type HostPort } from "../host-port.js";

export interface HttpListener {
  port: number;
  /** http://host:port, loopback when bound to every interface. */
  url: string;
  /** Idempotent: stops accepting and closes every connection, idle or not. */
  close(): Promise<void>;
}

export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;

export async function listenHttp(listen: HostPort, handle: HttpHandler, onError: (err: unknown, res: http.ServerResponse) => void): Promise<HttpListener> {
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => onError(err, res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new KvbridgeError("UNAVAILABLE", `router cannot listen on ${formatHostPort(listen)}: ${err.message}`, { cause: err })));
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    url: `http://${formatHostPort({ host: listen.host === "0.0.0.0" ? "127.0.0.1" : listen.host, port })}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/**
 * The request body parsed as JSON, at most `maxBytes`. Past the bound the rest is discarded as it
 * arrives (never buffered) and the connection is closed after the answer, so the client gets the
 * 400 instead of a reset.
 */
export function readJsonBody(req: http.IncomingMessage, res: http.ServerResponse, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (d: Buffer) => {
      if (over) return;
      size += d.length;
      if (size > maxBytes) {
        over = true;
        parts.length = 0;
        res.setHeader("connection", "close");
        reject(new KvbridgeError("INVALID_ARGUMENT", `request body over ${maxBytes} bytes`, { details: { limit: maxBytes } }));
        return;
      }
      parts.push(d);
    });
    req.on("end", () => {
      if (over) return;
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
      } catch {
        reject(new KvbridgeError("INVALID_ARGUMENT", "the request body is not valid JSON"));
      }
    });
    req.on("error", (err) => reject(new KvbridgeError("CANCELLED", `reading the request body: ${err.message}`, { cause: err })));
  });
}
