// A prefill/decode/router cluster of real processes on fixed loopback ports, on the project's model,
// whose roles a fault test can kill (SIGKILL) and start again under the same address.
import { spawnKvbridge, type RunningProcess } from "./processes.js";
import { freePort } from "./free-port.js";

export type Role = "prefill" | "decode" | "router";

export interface FaultClusterOptions {
  decodeArgs?: string[];
  prefillArgs?: string[];
  prefillEnv?: NodeJS.ProcessEnv;
}

export interface FaultCluster {
  decodeGrpc: string;
  prefillGrpc: string;
  url: string;
  /** The role's current process (a new one after restart). */
  proc(role: Role): RunningProcess;
  /** Starts the role again on its address (after a kill), with other args if given. */
  restart(role: Role, args?: { extraArgs?: string[]; env?: NodeJS.ProcessEnv }): Promise<RunningProcess>;
  /** Stops every role still running. Idempotent. */
  stop(): Promise<void>;
}


export async function startFaultCluster(o: FaultClusterOptions = {}): Promise<FaultCluster> {
  const [decodePort, dataPort, prefillPort, routerPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const decodeGrpc = `127.0.0.1:${decodePort}`;
  const prefillGrpc = `127.0.0.1:${prefillPort}`;
  const base: Record<Role, string[]> = {
    decode: ["decode", "--listen", decodeGrpc, "--data-listen", `127.0.0.1:${dataPort}`, "--pool-slots", "128", "--slot-bytes", "512KiB"],
    prefill: ["prefill", "--listen", prefillGrpc],
    router: ["router", "--listen", `127.0.0.1:${routerPort}`, "--prefill", prefillGrpc, "--decode", decodeGrpc],
  };
  // The decode node listens before its engine has loaded (health NOT_SERVING until then).
  const ready: Record<Role, RegExp> = { decode: /engine loaded: decode node serving/, prefill: /prefill node serving/, router: /router serving/ };
  const current: Partial<Record<Role, RunningProcess>> = {};
  const start = async (role: Role, extraArgs: string[], env: NodeJS.ProcessEnv): Promise<RunningProcess> => {
    const p = spawnKvbridge([...base[role], ...extraArgs], env);
    current[role] = p;
    await p.waitForLine(ready[role], 90_000);
    return p;
  };
  const stop = async (): Promise<void> => {
    await Promise.all(Object.values(current).map((p) => p.stop()));
  };
  try {
    await Promise.all([start("decode", o.decodeArgs ?? [], {}), start("prefill", o.prefillArgs ?? [], o.prefillEnv ?? {})]);
    await start("router", [], {});
  } catch (err) {
    await Promise.all(Object.values(current).map((p) => p.kill9()));
    throw err;
  }
  return {
    decodeGrpc,
    prefillGrpc,
    url: `http://127.0.0.1:${routerPort}`,
    proc: (role) => current[role]!,
    async restart(role, args = {}) {
      await current[role]?.kill9();
      const defaults = role === "decode" ? o.decodeArgs : role === "prefill" ? o.prefillArgs : [];
      return start(role, args.extraArgs ?? defaults ?? [], args.env ?? (role === "prefill" ? (o.prefillEnv ?? {}) : {}));
    },
    stop,
  };
}

export interface CompletionStream {
  /** Every SSE `data:` payload seen so far. */
  events: string[];
  /** Resolves at the first event that carries generated text. */
  firstText: Promise<void>;
  /** Resolves when the stream ends, however it ends (never rejects). */
  ended: Promise<{ status: number; events: string[]; transportError?: string }>;
  /** The client goes away: closes its connection mid-stream. */
  abort(): void;
}

/** A streaming /v1/completions call read event by event. */
export function streamCompletion(url: string, body: object): CompletionStream {
  const events: string[] = [];
  const ac = new AbortController();
  let onText: () => void = () => undefined;
  const firstText = new Promise<void>((r) => (onText = r));
  const ended = (async () => {
    let status = 0;
    try {
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...body, stream: true }),
        signal: ac.signal,
      });
      status = res.status;
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (!block.startsWith("data: ")) continue;
          const data = block.slice(6);
          events.push(data);
          if (data.includes('"text":"') && !data.includes('"text":""')) onText();
        }
      }
      return { status, events };
    } catch (err) {
      return { status, events, transportError: err instanceof Error ? err.message : String(err) };
    }
  })();
  return { events, firstText, ended, abort: () => ac.abort() };
}
