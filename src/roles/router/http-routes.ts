// The router's route table: exact paths, each with its methods. The path is the request target as
// sent, up to `?` (never parsed as a URL: `//v1/completions` stays that path, it does not become
// host "v1"); an absolute-form target (http://host/path) is reduced to its path. A known path asked
// with another method is a 405 naming the methods it takes (Allow); an unknown path is a 404 naming
// the path asked for. HEAD is served wherever GET is (Node writes no body for it).
import type http from "node:http";
import { methodNotAllowed, notFound } from "./http-errors.js";

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse, path: string) => void | Promise<void>;

export class RouteTable {
  private readonly routes = new Map<string, Map<string, RouteHandler>>();
  private served: string | undefined;

  add(method: "GET" | "POST", path: string, handler: RouteHandler): this {
    let methods = this.routes.get(path);
    if (!methods) this.routes.set(path, (methods = new Map()));
    methods.set(method, handler);
    if (method === "GET") methods.set("HEAD", handler);
    this.served = undefined;
    return this;
  }

  /** "kvbridge serves GET /health, POST /v1/completions, ...": what a 404 tells the client. */
  describe(): string {
    const all = [...this.routes].flatMap(([path, methods]) => [...methods.keys()].filter((m) => m !== "HEAD").map((m) => `${m} ${path}`));
    this.served ??= `kvbridge serves ${all.join(", ")}`;
    return this.served;
  }

  /** The handler for this request; throws the 404 or the 405. */
  find(method: string, path: string): RouteHandler {
    const methods = this.routes.get(path);
    if (!methods) throw notFound(method, path, this.describe());
    const handler = methods.get(method);
    if (!handler) throw methodNotAllowed(method, path, [...methods.keys()]);
    return handler;
  }
}

/** The request's path as sent (without the query). */
export function requestPath(req: http.IncomingMessage): string {
  const target = req.url ?? "/";
  const q = target.indexOf("?");
  const raw = q === -1 ? target : target.slice(0, q);
  if (raw.startsWith("/")) return raw;
  // Absolute form, as sent to a proxy: the path after the authority.
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*(\/.*)?$/.exec(raw);
  return m ? (m[1] ?? "/") : raw;
}
