// CORS on the router's HTTP API (--allowed-origins: a list of origins, or `*`). A request from an
// allowed origin gets Access-Control-Allow-Origin; a preflight (OPTIONS with
// Access-Control-Request-Method) from one is answered 204 with the methods and headers the API
// takes; a preflight from any other origin is refused 403, and its other requests get no CORS
// headers (the browser then withholds the answer from the page).
import type http from "node:http";
import { originNotAllowed } from "./http-errors.js";

export const CORS_METHODS = "GET, POST, OPTIONS";
export const CORS_HEADERS = "Authorization, Content-Type";
/** How long a browser may reuse a preflight's answer, in seconds. */
export const CORS_MAX_AGE_S = 600;

export class CorsPolicy {
  private readonly any: boolean;
  private readonly origins: ReadonlySet<string>;

  constructor(allowed: readonly string[]) {
    const list = allowed.map((o) => o.trim().replace(/\/+$/, "")).filter((o) => o.length > 0);
    this.any = list.includes("*");
    this.origins = new Set(list.map((o) => o.toLowerCase()));
  }

  private allows(origin: string): boolean {
    return this.any || this.origins.has(origin.toLowerCase());
  }

  /**
   * Sets the CORS headers a request from an allowed origin gets; answers a preflight (returns true
   * when it did). Throws the 403 for a preflight from an origin not allowed.
   */
  apply(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    if (!this.allows(origin)) {
      if (preflight) throw originNotAllowed(origin);
      return false;
    }
    res.setHeader("access-control-allow-origin", this.any ? "*" : origin);
    if (!this.any) res.setHeader("vary", "Origin");
    if (!preflight) return false;
    res.writeHead(204, {
      "access-control-allow-methods": CORS_METHODS,
      "access-control-allow-headers": CORS_HEADERS,
      "access-control-max-age": String(CORS_MAX_AGE_S),
      "content-length": "0",
    });
    res.end();
    return true;
  }
}
