// A kvbridge cluster on the namespace test network: router, prefill-1, prefill-2, decode-1 and decode-2
// each a real CLI process (dist/) in a host namespace of its own, and a client host whose relay carries
// the tests' HTTP to the router over its link. Decode nodes are inspected through a relay inside their
// own namespace (their loopback), an out-of-band path that a partition of their link does not cut.
import * as grpc from "@grpc/grpc-js";
import http from "node:http";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { kvbridgeV1 } from "../../src/wire/proto.js";
import { unaryCall } from "../../src/wire/unary-call.js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import type { CompletionStream } from "./fault-cluster.js";
import { NetnsNetwork, type LinkConditions, type ShapingSupport } from "./netns-network.js";
import { KVBRIDGE_JS, spawnInNetns } from "./netns-process.js";
import { repoRoot, type RunningProcess } from "./processes.js";

export type NodeHost = "router" | "prefill-1" | "prefill-2" | "decode-1" | "decode-2";
export type DecodeHost = "decode-1" | "decode-2";

const HOSTS: ReadonlyArray<{ name: NodeHost | "client"; octet: number }> = [
  { name: "router", octet: 10 },
  { name: "prefill-1", octet: 11 },
  { name: "prefill-2", octet: 12 },
  { name: "decode-1", octet: 21 },
  { name: "decode-2", octet: 22 },
  { name: "client", octet: 100 },
];
const ROUTER_PORT = 8000;
const PREFILL_PORT = 50051;
const DECODE_PORT = 50061;
const DATA_PORT = 50062;
/** At info, UCX logs each endpoint's lanes ("ep_cfg[0]: rma_am(tcp/eth0)"): its own account of the transport it chose. */
const SENDER_UCX_LOG = { UCX_LOG_LEVEL: "info" };

export interface NetnsClusterOptions {
  modelPath: string;
  link: LinkConditions;
  shaping: ShapingSupport;
  decodeArgs?: string[];
  prefillArgs?: string[];
  /** Environment of the prefill processes (e.g. the write-delay fault hook). */
  prefillEnv?: NodeJS.ProcessEnv;
  routerArgs?: string[];
}

export interface NetnsCluster {
  net: NetnsNetwork;
  /** The host's kvbridge process. */
  proc(host: NodeHost): RunningProcess;
  /** host:port of a decode node's gRPC as the router dials it (on the test network). */
  decodeTarget(host: DecodeHost): string;
  /** The decode host the router sent a request to, from the router's "routing" log line (undefined before it). */
  routedDecode(requestId: string): DecodeHost | undefined;
  /** GetStats of a decode node, asked over its own loopback (works while it is partitioned). */
  stats(host: DecodeHost): Promise<Stats__Output>;
  /**
   * Whether the decode node answers a gRPC call made from the router's host over the test network
   * (a fresh channel each time, so no reconnect backoff of an earlier failure delays the answer).
   */
  answersOverNetwork(host: DecodeHost, timeoutMs?: number): Promise<boolean>;
  /** Polls stats until `pred` holds or timeoutMs passes; returns the last stats either way. */
  waitForStats(host: DecodeHost, pred: (s: Stats__Output) => boolean, timeoutMs: number): Promise<Stats__Output>;
  /** A non-streaming /v1/completions call from the client host; `signal` closes its connection (the client goes away). */
  complete(body: object, timeoutMs?: number, signal?: AbortSignal): Promise<CompletionResult>;
  /** A streaming /v1/completions call from the client host, read event by event. */
  stream(body: object): CompletionStream;
  /** Writes each process's output (router.log, decode-1.log, ...) into `dir`, e.g. after a failure. */
  saveLogs(dir: string): void;
  /** Stops every process, removes every namespace and the relay sockets. Idempotent; never throws. */
  stop(): Promise<void>;
}

export interface CompletionResult {
  status: number;
  body: { id?: string; choices?: Array<{ text: string }>; error?: { code: string; message: string; type: string } };
  /** Set when the connection failed or timed out instead of answering. */
  transportError?: string;
}

export async function startNetnsCluster(o: NetnsClusterOptions): Promise<NetnsCluster> {
  const net = NetnsNetwork.create(HOSTS, o.link, o.shaping);
  const sockets = mkdtempSync(path.join(os.tmpdir(), "kvb-netns-"));
  const procs = new Map<string, RunningProcess>();
  const inspect = new Map<DecodeHost, InspectClient>();
  const ipOf = (h: string): string => net.host(h).ip;
  const routerSocket = path.join(sockets, "router.sock");

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      for (const c of inspect.values()) c.close();
      await Promise.all([...procs.values()].map((p) => p.stop(3_000).catch(() => undefined)));
      net.remove();
      rmSync(sockets, { recursive: true, force: true });
    })());

  const startNode = async (host: NodeHost, args: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}): Promise<void> => {
    // Its own IPC namespace too, as a separate host or pod has: UCX's shared-memory transports
    // (posix, sysv) connect processes that share one, whatever their network namespaces.
    const p = spawnInNetns(net.host(host).ns, ["unshare", "--ipc", process.execPath, KVBRIDGE_JS, ...args, ...(host === "router" ? [] : ["--node-id", host])], env);
    procs.set(host, p);
    await p.waitForLine(ready, 90_000);
  };
  const startRelay = async (host: string, specs: string[]): Promise<void> => {
    const p = spawnInNetns(net.host(host).ns, [process.execPath, "--import", "tsx", path.join(repoRoot, "test/support/netns-relay.ts"), ...specs]);
    procs.set(`relay-${host}`, p);
    await p.waitForLine(/relay ready/, 30_000);
  };

  try {
    const decodes: DecodeHost[] = ["decode-1", "decode-2"];
    await Promise.all([
      ...decodes.map((h) =>
        startNode(
          h,
          // Listening on every address of the host: the router and senders come over the test network,
          // the inspection relay over the host's loopback; offers name the test-network address.
          ["decode", "--model", o.modelPath, "--listen", `0.0.0.0:${DECODE_PORT}`, "--data-listen", `0.0.0.0:${DATA_PORT}`, "--advertise-host", ipOf(h), ...(o.decodeArgs ?? [])],
          /engine loaded: decode node serving/,
        ),
      ),
      ...(["prefill-1", "prefill-2"] as const).map((h) =>
        startNode(h, ["prefill", "--model", o.modelPath, "--listen", `0.0.0.0:${PREFILL_PORT}`, ...(o.prefillArgs ?? [])], /prefill node serving/, { ...SENDER_UCX_LOG, ...o.prefillEnv }),
      ),
    ]);
    await startNode(
      "router",
      [
        "router",
        "--listen",
        `0.0.0.0:${ROUTER_PORT}`,
        "--prefill",
        `${ipOf("prefill-1")}:${PREFILL_PORT},${ipOf("prefill-2")}:${PREFILL_PORT}`,
        "--decode",
        decodes.map((h) => `${ipOf(h)}:${DECODE_PORT}`).join(","),
        ...(o.routerArgs ?? []),
      ],
      /router serving/,
    );
    await Promise.all([
      startRelay("client", [`${routerSocket}=${ipOf("router")}:${ROUTER_PORT}`]),
      ...decodes.map((h) => startRelay(h, [`${path.join(sockets, `${h}.sock`)}=127.0.0.1:${DECODE_PORT}`])),
      startRelay("router", decodes.map((h) => `${path.join(sockets, `net-${h}.sock`)}=${ipOf(h)}:${DECODE_PORT}`)),
    ]);
    for (const h of decodes) inspect.set(h, new InspectClient(`unix:${path.join(sockets, `${h}.sock`)}`));
  } catch (err) {
    await stop();
    throw err;
  }

  const stats = (h: DecodeHost): Promise<Stats__Output> => inspect.get(h)!.getStats({}, { timeoutMs: 5_000 });
  return {
    net,
    proc: (h) => procs.get(h)!,
    decodeTarget: (h) => `${ipOf(h)}:${DECODE_PORT}`,
    routedDecode(requestId) {
      for (const line of procs.get("router")!.lines) {
        if (!line.includes('"msg":"routing"') || !line.includes(`"requestId":"${requestId}"`)) continue;
        const decode = (JSON.parse(line) as { decode?: string }).decode;
        return (["decode-1", "decode-2"] as const).find((h) => decode === `${ipOf(h)}:${DECODE_PORT}`);
      }
      return undefined;
    },
    stats,
    async answersOverNetwork(h, timeoutMs = 500) {
      const raw = new (kvbridgeV1().Inspect)(`unix:${path.join(sockets, `net-${h}.sock`)}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
      try {
        await unaryCall((r, m, opts, cb) => raw.GetStats(r, m, opts, cb), `GetStats on ${h} over the test network`, {}, { timeoutMs });
        return true;
      } catch {
        return false;
      } finally {
        raw.close();
      }
    },
    async waitForStats(h, pred, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let s = await stats(h);
      while (!pred(s) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        s = await stats(h);
      }
      return s;
    },
    saveLogs(dir) {
      mkdirSync(dir, { recursive: true });
      for (const [name, p] of procs) writeFileSync(path.join(dir, `${name}.log`), `${p.lines.join("\n")}\n`);
    },
    complete: (body, timeoutMs = 60_000, signal) => postCompletion(routerSocket, body, timeoutMs, signal),
    stream: (body) => streamCompletionVia(routerSocket, body),
    stop,
  };
}

function postCompletion(socketPath: string, body: object, timeoutMs: number, signal?: AbortSignal): Promise<CompletionResult> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve({ status: 0, body: {}, transportError: "aborted by the client" });
    const data = JSON.stringify(body);
    const req = http.request(
      { socketPath, path: "/v1/completions", method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => {
          const text = Buffer.concat(parts).toString("utf8");
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as CompletionResult["body"] });
          } catch {
            resolve({ status: res.statusCode ?? 0, body: {}, transportError: `not JSON: ${text.slice(0, 200)}` });
          }
        });
        res.on("error", (err) => resolve({ status: res.statusCode ?? 0, body: {}, transportError: err.message }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    signal?.addEventListener("abort", () => req.destroy(new Error("aborted by the client")), { once: true });
    req.on("error", (err) => resolve({ status: 0, body: {}, transportError: err.message }));
    req.end(data);
  });
}

/** The same reading as fault-cluster's streamCompletion, over the client host's relay. */
function streamCompletionVia(socketPath: string, body: object): CompletionStream {
  const events: string[] = [];
  let onText: () => void = () => undefined;
  const firstText = new Promise<void>((r) => (onText = r));
  let req: http.ClientRequest | undefined;
  const ended = new Promise<{ status: number; events: string[]; transportError?: string }>((resolve) => {
    const data = JSON.stringify({ ...body, stream: true });
    let status = 0;
    req = http.request(
      { socketPath, path: "/v1/completions", method: "POST", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } },
      (res) => {
        status = res.statusCode ?? 0;
        let buf = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buf += chunk;
          let i: number;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (!block.startsWith("data: ")) continue;
            const ev = block.slice(6);
            events.push(ev);
            if (ev.includes('"text":"') && !ev.includes('"text":""')) onText();
          }
        });
        res.on("end", () => resolve({ status, events }));
        res.on("error", (err) => resolve({ status, events, transportError: err.message }));
        res.on("close", () => resolve({ status, events, transportError: res.complete ? undefined : "connection closed mid-stream" }));
      },
    );
    req.on("error", (err) => resolve({ status, events, transportError: err.message }));
    req.end(data);
  });
  return { events, firstText, ended, abort: () => req?.destroy() };
}
