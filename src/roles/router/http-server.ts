// The router's HTTP listener and request bodies: binding (a failure is a KvbridgeError naming the
// address), bounded JSON body reading, and a close that drops open connections. A request answered
// with an error before its body was read (401, 404, 405, 413, 415) has the rest of its body read and
// discarded, up to a bound, before the answer: a client still uploading then reads the status
// instead of a reset connection. Past the bound the connection is closed after the answer.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { formatHostPort, type HostPort } from "../host-port.js";
import { bodyTooLarge, unsupportedMediaType } from "./http-errors.js";

export interface HttpListener {
  port: number;
  /** http://host:port, loopback when bound to every interface. */
  url: string;
  /** Idempotent: stops accepting and closes every connection, idle or not. */
  close(): Promise<void>;
}

/** Answers a request; may throw (or reject) with the error to answer instead. */
export type HttpHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface HttpBodyLimits {
  /** Largest body accepted (a declared larger one is refused 413 before its upload, on Expect: 100-continue). */
  maxBodyBytes: number;
  /** Most bytes of a refused request's body read and discarded before answering. */
  discardBytes: number;
}

export async function listenHttp(
  listen: HostPort,
  handle: HttpHandler,
  onError: (err: unknown, res: http.ServerResponse) => void,
  limits: HttpBodyLimits,
): Promise<HttpListener> {
  const fail = (err: unknown, req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (res.headersSent || req.complete) return onError(err, res);
    void discardBody(req, limits.discardBytes).then((ended) => {
      if (!ended) res.setHeader("connection", "close");
      onError(err, res);
    });
  };
  const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    try {
      handle(req, res)?.catch((err: unknown) => fail(err, req, res));
    } catch (err) {
      // Refused at once (404, 405, 401 ...): no promise made for the common refusals.
      fail(err, req, res);
    }
  };
  const server = http.createServer(serve);
  // A client that asks before uploading (Expect: 100-continue, as curl does for large bodies) and
  // declares a body over the limit is answered 413 without sending it.
  server.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (declaredLength(req) > limits.maxBodyBytes) {
      res.setHeader("connection", "close");
      onError(bodyTooLarge(limits.maxBodyBytes), res);
      return;
    }
    res.writeContinue();
    serve(req, res);
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

/** The Content-Length the client declared (0 when none: a chunked body is counted as it comes). */
function declaredLength(req: http.IncomingMessage): number {
  const n = Number(req.headers["content-length"] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/**
 * Reads and drops what is left of the request's body. True when it ended within `bound` bytes;
 * false past the bound or when the connection went away (the caller closes the connection).
 */
export function discardBody(req: http.IncomingMessage, bound: number): Promise<boolean> {
  if (req.complete || req.readableEnded) return Promise.resolve(true);
  if (declaredLength(req) > bound) return Promise.resolve(false);
  return new Promise((resolve) => {
    let seen = 0;
    const done = (ended: boolean): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      resolve(ended);
    };
    const onData = (d: Buffer): void => {
      seen += d.length;
      if (seen > bound) done(false);
    };
    const onEnd = (): void => done(true);
    const onClose = (): void => done(req.complete);
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    req.resume();
  });
}

/** application/json, or any application/*+json; parameters (charset) are ignored. */
function isJsonMediaType(contentType: string): boolean {
  const media = contentType.split(";", 1)[0]!.trim().toLowerCase();
  return media === "application/json" || (media.startsWith("application/") && media.endsWith("+json"));
}

/**
 * The request body parsed as JSON, at most `maxBytes`. A content type other than JSON is refused 415
 * (a request without one is read as JSON); a body over the bound, declared or counted as it arrives,
 * is refused 413, its rest discarded by the listener before the answer (never buffered).
 */
export function readJsonBody(req: http.IncomingMessage, _res: http.ServerResponse, maxBytes: number): Promise<unknown> {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && !isJsonMediaType(contentType)) return Promise.reject(unsupportedMediaType(contentType));
  if (declaredLength(req) > maxBytes) return Promise.reject(bodyTooLarge(maxBytes));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    const onData = (d: Buffer): void => {
      size += d.length;
      if (size <= maxBytes) {
        parts.push(d);
        return;
      }
      stop();
      parts.length = 0;
      reject(bodyTooLarge(maxBytes));
    };
    const onEnd = (): void => {
      stop();
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
      } catch {
        reject(new KvbridgeError("INVALID_ARGUMENT", "the request body is not valid JSON"));
      }
    };
    const onError = (err: Error): void => {
      stop();
      reject(new KvbridgeError("CANCELLED", `reading the request body: ${err.message}`, { cause: err }));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}
