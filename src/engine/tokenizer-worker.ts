// A tokenizer on a worker thread: the model's vocabulary (loaded vocab-only, no weights, no context)
// in a thread of its own, so tokenizing a long prompt, which costs more than linearly in its length
// inside llama.cpp, never blocks the event loop that serves other requests. Jobs run one at a time in
// arrival order; a job whose caller gave up before its turn is never started. The thread starts on
// first use and is restarted after a crash.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";

/** The thread's program (CommonJS, evaluated): load the vocabulary, then answer { id, text } with { id, tokens }. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  const { getLlama, LlamaLogLevel } = await import(workerData.llamaUrl);
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: workerData.modelPath, vocabOnly: true });
  parentPort.on("message", (job) => {
    if (job.close) {
      // Ends the thread from inside, after any job it was running: terminating it from outside while
      // llama.cpp runs aborts the whole process.
      parentPort.removeAllListeners("message");
      model.dispose().then(() => llama.dispose()).finally(() => process.exit(0));
      return;
    }
    try {
      const tokens = Uint32Array.from(model.tokenize(job.text, false));
      parentPort.postMessage({ id: job.id, tokens }, [tokens.buffer]);
    } catch (err) {
      parentPort.postMessage({ id: job.id, error: String(err && err.message || err) });
    }
  });
  parentPort.postMessage({ ready: true });
})().catch((err) => {
  parentPort.postMessage({ failed: String(err && err.message || err) });
  process.exit(1);
});
`;

/** How long close() waits for the thread to end by itself. */
const CLOSE_WAIT_MS = 10_000;

interface Job {
  id: number;
  text: string;
  signal?: AbortSignal;
  resolve(tokens: number[]): void;
  reject(err: KvbridgeError): void;
}

type WorkerReply = { ready: true } | { failed: string } | { id: number; tokens: Uint32Array } | { id: number; error: string };

function llamaModuleUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href;
}

export class TokenizerWorker {
  private worker: Worker | undefined;
  private ready = false;
  private running: Job | undefined;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(private readonly modelPath: string) {}

  /** Jobs waiting or running (a gauge for tests and logs). */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** The tokens of `text` as the model's own tokenize(text, false) gives them (no BOS added). */
  tokenize(text: string, signal?: AbortSignal): Promise<number[]> {
    if (this.closed) return Promise.reject(new KvbridgeError("UNAVAILABLE", "the engine is closing; retry on another node"));
    if (signal?.aborted) return Promise.reject(toKvbridgeError(signal.reason, "CANCELLED"));
    return new Promise<number[]>((resolve, reject) => {
      const job: Job = { id: this.nextId++, text, signal, resolve, reject };
      // A caller that gives up is answered at once; the thread skips its job if it has not begun it.
      signal?.addEventListener(
        "abort",
        () => {
          const i = this.queue.indexOf(job);
          if (i >= 0) this.queue.splice(i, 1);
          reject(toKvbridgeError(signal.reason, "CANCELLED"));
        },
        { once: true },
      );
      this.queue.push(job);
      this.pump();
    });
  }

  /**
   * Stops the thread: jobs not answered yet are refused UNAVAILABLE, and the thread is asked to end
   * (it finishes the tokenization it may be running first; waited for at most CLOSE_WAIT_MS).
   * Idempotent.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new KvbridgeError("UNAVAILABLE", "the engine is closing; retry on another node"));
    const w = this.worker;
    this.worker = undefined;
    if (!w) return;
    const exited = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      timer.unref();
      w.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    w.postMessage({ close: true });
    await exited;
  }

  private pump(): void {
    if (this.running || this.closed) return;
    if (!this.worker) {
      this.start();
      return;
    }
    if (!this.ready) return;
    let job = this.queue.shift();
    while (job?.signal?.aborted) job = this.queue.shift();
    if (!job) return;
    this.running = job;
    this.worker.postMessage({ id: job.id, text: job.text });
  }

  private start(): void {
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { llamaUrl: llamaModuleUrl(), modelPath: this.modelPath } });
    // An idle tokenizer never keeps the process alive.
    w.unref();
    this.worker = w;
    this.ready = false;
    w.on("message", (m: WorkerReply) => this.onReply(w, m));
    w.on("error", (err) => this.lost(w, new KvbridgeError("INTERNAL", `the tokenizer thread failed: ${err.message}`, { cause: err })));
    w.on("exit", (code) => this.lost(w, new KvbridgeError("INTERNAL", `the tokenizer thread exited (code ${code})`)));
  }

  private onReply(w: Worker, m: WorkerReply): void {
    if (w !== this.worker) return;
    if ("ready" in m) {
      this.ready = true;
    } else if ("failed" in m) {
      // The thread exits by itself.
      this.lost(w, new KvbridgeError("UNAVAILABLE", `the tokenizer thread could not load the vocabulary of ${this.modelPath}: ${m.failed}`));
      return;
    } else {
      const job = this.running;
      this.running = undefined;
      if (job && job.id === m.id) {
        if ("error" in m) job.reject(new KvbridgeError("INVALID_ARGUMENT", `the prompt could not be tokenized: ${m.error}`, { details: { param: "prompt" } }));
        else job.resolve(Array.from(m.tokens));
      }
    }
    this.pump();
  }

  /** The thread is gone: everything it owed fails, and the next job starts a new one. */
  private lost(w: Worker, err: KvbridgeError): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    this.ready = false;
    this.failAll(err);
  }

  private failAll(err: KvbridgeError): void {
    const owed = [...(this.running ? [this.running] : []), ...this.queue.splice(0)];
    this.running = undefined;
    for (const job of owed) job.reject(err);
  }
}
