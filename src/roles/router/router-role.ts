// The router: an OpenAI-compatible HTTP API that sends each request through a prefill node (which
// pushes the KV cache) and then a decode node (which streams the tokens). Every request has its own
// AbortController: a client that disconnects cancels its own prefill, transfer and decode, nothing else.

import * as grpc from "@grpc/grpc-js";
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { KvbridgeError, toKvbridgeError } from "../../errors/kvbridge-error.js";
import { fromServiceError, httpStatusOf } from "../../wire/error-status.js";
import type { DecodeClient } from "../../wire/generated/kvbridge/v1/Decode.js";
import type { GenerateEvent__Output } from "../../wire/generated/kvbridge/v1/GenerateEvent.js";
import type { MatchPrefixResponse__Output } from "../../wire/generated/kvbridge/v1/MatchPrefixResponse.js";
import type { PlanResponse__Output } from "../../wire/generated/kvbridge/v1/PlanResponse.js";
import type { PrefillClient } from "../../wire/generated/kvbridge/v1/Prefill.js";
import type { PrefillResponse__Output } from "../../wire/generated/kvbridge/v1/PrefillResponse.js";
import { failureReason, nodeMetrics, recordRouterRequest, type NodeMetrics } from "../../observability/metrics.js";
import { metricsRoute } from "../../observability/metrics-server.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../../wire/proto.js";
import { VERSION } from "../version.js";
import { callUnary, CLIENT_CHANNEL_OPTIONS } from "../../wire/unary.js";
import { formatHostPort, type HostPort } from "../host-port.js";
import { openAiError, openAiFinishReason, parseChat, parseCompletion, type CompletionInput } from "./openai-api.js";
import { PeerDiscovery, type PeerSource } from "./peer-discovery.js";


export interface RouterOptions {
  listen: HostPort;
  prefill: PeerSource;
  decode: PeerSource;
  logger: Logger;
  /** Bound on a prefill (evaluation + transfer). Default 10 min. */
  prefillTimeoutMs?: number;
  /** Bound on a whole generation. Default 10 min. */
  generateTimeoutMs?: number;
  maxBodyBytes?: number;
  channelCredentials?: grpc.ChannelCredentials;
  /** Extra routes (e.g. /metrics), tried before the API; return true when handled. */
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;
  /** Metrics registry set (shared with other nodes of the process, e.g. `kvbridge up`). */
  metrics?: NodeMetrics;
}

export interface Router {
  url: string;
  port: number;
  inFlight(): number;
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

interface NodeState {
  inFlight: number;
}

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const log = opts.logger;
  const metrics = opts.metrics ?? nodeMetrics(undefined, { defaultMetrics: true });
  metrics.nodeInfo.set({ node_id: `router-${process.pid}`, role: "router", version: VERSION, protocol_version: String(PROTOCOL_VERSION) }, 1);
  const serveMetrics = metricsRoute(metrics.registry);
  const v1 = kvbridgeV1();
  const creds = opts.channelCredentials ?? grpc.credentials.createInsecure();
  const prefillPeers = new PeerDiscovery(opts.prefill, log);
  const decodePeers = new PeerDiscovery(opts.decode, log);
  await Promise.all([prefillPeers.start(), decodePeers.start()]);
  const prefillClients = new Map<string, PrefillClient>();
  const decodeClients = new Map<string, DecodeClient>();
  const load = new Map<string, NodeState>();
  const prefillTimeoutMs = opts.prefillTimeoutMs ?? 600_000;
  const generateTimeoutMs = opts.generateTimeoutMs ?? 600_000;
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  let modelId: string | undefined;
  let accepting = true;
  const active = new Set<AbortController>();

  const prefillClient = (t: string): PrefillClient => {
    let c = prefillClients.get(t);
    if (!c) prefillClients.set(t, (c = new v1.Prefill(t, creds, CLIENT_CHANNEL_OPTIONS) as unknown as PrefillClient));
    return c;
  };
  const decodeClient = (t: string): DecodeClient => {
    let c = decodeClients.get(t);
    if (!c) decodeClients.set(t, (c = new v1.Decode(t, creds, CLIENT_CHANNEL_OPTIONS) as unknown as DecodeClient));
    return c;
  };
  const stateOf = (t: string): NodeState => {
    let s = load.get(t);
    if (!s) load.set(t, (s = { inFlight: 0 }));
    return s;
  };
  const leastLoaded = (targets: readonly string[]): string | undefined =>
    [...targets].sort((a, b) => stateOf(a).inFlight - stateOf(b).inFlight)[0];

  /** Prefix affinity first (the decode node holding the longest prefix), then least loaded. */
  const chooseDecode = async (keys: string[], signal: AbortSignal): Promise<{ target: string; matched: number }> => {
    const targets = decodePeers.targets();
    if (targets.length === 0) throw new KvbridgeError("UNAVAILABLE", "no decode node is known; check --decode / --decode-dns");
    const matches = await Promise.all(
      targets.map((t) =>
        callUnary<object, MatchPrefixResponse__Output>(decodeClient(t), "MatchPrefix", { keys }, { timeoutMs: 1_000, signal })
          .then((r) => r.matched)
          .catch(() => -1),
      ),
    );
    let best = -1;
    let target: string | undefined;
    targets.forEach((t, i) => {
      const m = matches[i]!;
      if (m > best || (m === best && target !== undefined && stateOf(t).inFlight < stateOf(target).inFlight)) {
        best = m;
        target = t;
      }
    });
    if (best < 0 || target === undefined) throw new KvbridgeError("UNAVAILABLE", `no decode node answered (${targets.join(", ")})`);
    return { target, matched: best };
  };

  interface Streamed {
    onText(text: string): void;
  }

  const runRequest = async (
    input: CompletionInput,
    requestId: string,
    signal: AbortSignal,
    out: Streamed,
  ): Promise<{ text: string; finishReason: string; promptTokens: number; completionTokens: number; ttft: number | null }> => {
    const rlog = log.child({ requestId });
    const t0 = performance.now();
    const prefillTarget = leastLoaded(prefillPeers.targets());
    if (!prefillTarget) throw new KvbridgeError("UNAVAILABLE", "no prefill node is known; check --prefill / --prefill-dns");
    const plan = await callUnary<object, PlanResponse__Output>(prefillClient(prefillTarget), "Plan", { prompt: input.prompt }, { timeoutMs: 30_000, signal });
    modelId ??= plan.modelId;
    const { target: decodeTarget, matched } = await chooseDecode(plan.keys, signal);
    rlog.info({ prefill: prefillTarget, decode: decodeTarget, promptTokens: plan.promptTokens, chunks: plan.keys.length, prefixMatched: matched }, "routing");

    const ps = stateOf(prefillTarget);
    ps.inFlight++;
    try {
      const pre = await callUnary<object, PrefillResponse__Output>(
        prefillClient(prefillTarget),
        "Prefill",
        { requestId, prompt: input.prompt, decodeTarget },
        { timeoutMs: prefillTimeoutMs, signal },
      );
      rlog.info({ bytes: pre.bytesSent, deduped: pre.chunksDeduped, transport: pre.transport, evalMs: Math.round(pre.evalMs), transferMs: Math.round(pre.transferMs) }, "prefilled");
    } catch (err) {
      const e = toKvbridgeError(err);
      if (signal.aborted || e.code === "CANCELLED") throw e;
      // The decode node decides: recompute the missing KV locally (default) or fail clearly.
      rlog.warn({ err: e.message, code: e.code }, "prefill failed; the decode node applies its recompute policy");
    } finally {
      ps.inFlight--;
    }

    const ds = stateOf(decodeTarget);
    ds.inFlight++;
    try {
      return await new Promise((resolve, reject) => {
        const call = decodeClient(decodeTarget).Generate(
          { requestId, prompt: input.prompt, maxTokens: input.maxTokens, stop: input.stop },
          { deadline: Date.now() + generateTimeoutMs },
        );
        const onAbort = (): void => call.cancel();
        signal.addEventListener("abort", onAbort, { once: true });
        let text = "";
        let ttft: number | null = null;
        let last: GenerateEvent__Output | undefined;
        call.on("data", (ev: GenerateEvent__Output) => {
          if (ttft === null && !ev.done) ttft = (performance.now() - t0) / 1000;
          if (ev.text) {
            text += ev.text;
            out.onText(ev.text);
          }
          if (ev.done) last = ev;
        });
        call.on("error", (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(signal.aborted ? new KvbridgeError("CANCELLED", "client went away") : fromServiceError(err, `Generate on ${decodeTarget}`));
        });
        call.on("end", () => {
          signal.removeEventListener("abort", onAbort);
          if (!last) {
            reject(new KvbridgeError("UNAVAILABLE", `decode node ${decodeTarget} ended the stream without finishing`));
            return;
          }
          resolve({ text, finishReason: last.finishReason, promptTokens: last.promptTokens, completionTokens: last.completionTokens, ttft });
        });
      });
    } finally {
      ds.inFlight--;
    }
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown): void => {
    if (res.headersSent) return;
    const data = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
    res.end(data);
  };

  const sendError = (res: http.ServerResponse, err: unknown): void => {
    const e = toKvbridgeError(err);
    const status = httpStatusOf(e.code);
    const type = status < 500 ? "invalid_request_error" : "server_error";
    const param = (e as KvbridgeError & { param?: string }).param ?? null;
    if (res.headersSent) {
      // Mid-stream: an SSE error event, then the stream ends.
      if (!res.writableEnded) {
        res.write(`data: ${JSON.stringify(openAiError(e.message, type, e.code.toLowerCase(), param))}\n\n`);
        res.end();
      }
      return;
    }
    sendJson(res, status, openAiError(e.message, type, e.code.toLowerCase(), param));
  };

  const readBody = (req: http.IncomingMessage): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let size = 0;
      req.on("data", (d: Buffer) => {
        size += d.length;
        if (size > maxBody) {
          reject(new KvbridgeError("INVALID_ARGUMENT", `request body over ${maxBody} bytes`));
          req.destroy();
          return;
        }
        parts.push(d);
      });
      req.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString("utf8")));
        } catch {
          reject(new KvbridgeError("INVALID_ARGUMENT", "the request body is not valid JSON"));
        }
      });
      req.on("error", reject);
    });

  const handleCompletion = async (req: http.IncomingMessage, res: http.ServerResponse, kind: "completion" | "chat"): Promise<void> => {
    if (!accepting) throw new KvbridgeError("UNAVAILABLE", "router is draining; retry on another replica");
    const body = await readBody(req);
    const input = kind === "chat" ? parseChat(body) : parseCompletion(body);
    const requestId = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const ac = new AbortController();
    active.add(ac);
    // The client going away (socket closed before we finished) cancels this request and only it.
    const onClose = (): void => {
      if (!res.writableFinished) ac.abort();
    };
    res.on("close", onClose);
    // Known once the first Plan answered (the model id comes from the prefill node).
    const modelName = (): string => input.model ?? modelId ?? "kvbridge";
    const object = kind === "chat" ? "chat.completion" : "text_completion";
    let ttftForMetrics: number | null = null;
    try {
      if (input.stream) {
        let started = false;
        const start = (): void => {
          if (started) return;
          started = true;
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive", "x-request-id": requestId });
          if (kind === "chat") {
            res.write(`data: ${JSON.stringify({ id: requestId, object: "chat.completion.chunk", created, model: modelName(), choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }] })}\n\n`);
          }
        };
        const chunk = (text: string, finish: string | null): string =>
          kind === "chat"
            ? JSON.stringify({ id: requestId, object: "chat.completion.chunk", created, model: modelName(), choices: [{ index: 0, delta: finish ? {} : { content: text }, finish_reason: finish }] })
            : JSON.stringify({ id: requestId, object: "text_completion", created, model: modelName(), choices: [{ index: 0, text, logprobs: null, finish_reason: finish }] });
        const r = await runRequest(input, requestId, ac.signal, {
          onText: (text) => {
            start();
            res.write(`data: ${chunk(text, null)}\n\n`);
          },
        });
        start();
        ttftForMetrics = r.ttft;
        res.write(`data: ${chunk("", openAiFinishReason(r.finishReason))}\n\n`);
        if (input.includeUsage) {
          res.write(`data: ${JSON.stringify({ id: requestId, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model: modelName(), choices: [], usage: usage(r) })}\n\n`);
        }
        res.end("data: [DONE]\n\n");
      } else {
        const r = await runRequest(input, requestId, ac.signal, { onText: () => undefined });
        ttftForMetrics = r.ttft;
        const choice =
          kind === "chat"
            ? { index: 0, message: { role: "assistant", content: r.text }, logprobs: null, finish_reason: openAiFinishReason(r.finishReason) }
            : { index: 0, text: r.text, logprobs: null, finish_reason: openAiFinishReason(r.finishReason) };
        sendJson(res, 200, { id: requestId, object, created, model: modelName(), choices: [choice], usage: usage(r) });
      }
      recordRouterRequest(metrics, "ok", ttftForMetrics);
    } catch (err) {
      const e = toKvbridgeError(err);
      recordRouterRequest(metrics, ac.signal.aborted ? "cancelled" : failureReason(e));
      if (ac.signal.aborted) {
        log.info({ requestId }, "client went away; request cancelled");
        return;
      }
      log.error({ requestId, err: e.message, code: e.code }, "request failed");
      sendError(res, e);
    } finally {
      res.off("close", onClose);
      active.delete(ac);
    }
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      try {
        if (opts.extraRoutes && (await opts.extraRoutes(req, res))) return;
        if (serveMetrics(req, res)) return;
        const url = new URL(req.url ?? "/", "http://router");
        const route = `${req.method} ${url.pathname}`;
        switch (route) {
          case "POST /v1/completions":
            return await handleCompletion(req, res, "completion");
          case "POST /v1/chat/completions":
            return await handleCompletion(req, res, "chat");
          case "GET /v1/models": {
            if (!modelId) {
              const t = prefillPeers.targets()[0];
              if (t) {
                const p = await callUnary<object, PlanResponse__Output>(prefillClient(t), "Plan", { prompt: " " }, { timeoutMs: 5_000 }).catch(() => undefined);
                modelId = p?.modelId;
              }
            }
            return sendJson(res, 200, { object: "list", data: modelId ? [{ id: modelId, object: "model", created: 0, owned_by: "kvbridge" }] : [] });
          }
          case "GET /healthz":
            return sendJson(res, 200, { status: "ok" });
          case "GET /readyz": {
            const ready = accepting && prefillPeers.targets().length > 0 && decodePeers.targets().length > 0;
            return sendJson(res, ready ? 200 : 503, { status: ready ? "ready" : "not ready", prefill: prefillPeers.targets(), decode: decodePeers.targets() });
          }
          default:
            return sendJson(res, 404, openAiError(`no route ${route}; kvbridge serves POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /metrics`, "invalid_request_error", "not_found"));
        }
      } catch (err) {
        sendError(res, err);
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new KvbridgeError("UNAVAILABLE", `router cannot listen on ${formatHostPort(opts.listen)}: ${err.message}`)));
    server.listen(opts.listen.port, opts.listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${formatHostPort({ host: opts.listen.host === "0.0.0.0" ? "127.0.0.1" : opts.listen.host, port })}`;
  log.info({ url, prefill: prefillPeers.targets(), decode: decodePeers.targets() }, "router serving");

  let closed: Promise<void> | undefined;
  const router: Router = {
    url,
    port,
    inFlight: () => active.size,
    async drain(timeoutMs) {
      accepting = false;
      const deadline = Date.now() + timeoutMs;
      while (active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await router.close();
    },
    close() {
      closed ??= (async () => {
        accepting = false;
        for (const ac of active) ac.abort();
        prefillPeers.stop();
        decodePeers.stop();
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        for (const c of [...prefillClients.values(), ...decodeClients.values()]) c.close();
        log.info("router closed");
      })();
      return closed;
    },
  };
  return router;
}

function usage(r: { promptTokens: number; completionTokens: number }): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens, total_tokens: r.promptTokens + r.completionTokens };
}
