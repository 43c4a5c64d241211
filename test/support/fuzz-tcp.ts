// A fuzzer for the TCP data port of a kvbridge decode node, driven by fast-check. Each episode
// allocates real slots through Alloc, opens one or many connections and sends each a script: WRITE
// frames built from recipes (own, foreign, committed, released and unknown requests; right and wrong
// tokens; in and out of bounds; lying lengths; flipped header bits), then an ending (clean, a torn
// frame, garbage, a fatal header, or an abrupt reset), all cut into random pieces. The reference model
// (fuzz-tcp-model.ts) says what the receiver must answer and what the pool must then hold; the
// fuzzer checks the replies, rule 7 (a torn connection aborts exactly its admitted requests), that a
// Commit is accepted exactly when the request's completed frames wrote every byte of its chunks
// (else refused commit_unproven, nothing READY), the committed bytes through ChecksumKeys and, in
// process, every byte of the pool.
import { createHash } from "node:crypto";
import net from "node:net";
import fc from "fast-check";
import type { AllocResponse__Output } from "../../src/wire/generated/kvbridge/v1/AllocResponse.js";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { nodeClients, type NodeClients } from "./node-clients.js";
import { drive } from "./fuzz-drive.js";
import { describeInput, type FuzzTally } from "./fuzz-tally.js";
import { weighted } from "./fuzz-values.js";
import {
  AllocationModel,
  MAGIC,
  PoolModel,
  ReferenceDecoder,
  ReplyMatcher,
  ReplyParser,
  TCP_VERSION,
  TYPE_WRITE,
  WRITE_HEADER,
  type Allocation,
  type ModelRequest,
} from "./fuzz-tcp-model.js";

// ------------------------------------------------------------------------------------ recipes

type IdFrom = "own" | "bystander" | "committed" | "gone" | "unknown";
type SlotFrom = "same" | "other-own" | "bystander" | "committed" | "any" | "out-of-range";
type TokenFrom = "match" | "random" | "zero" | "other";
type RangeKind = "inside" | "zero" | "exact" | "past-end" | "huge-offset";

/** An abstract WRITE frame, resolved against the allocations of the episode. */
export interface FrameRecipe {
  id: IdFrom;
  slot: SlotFrom;
  token: TokenFrom;
  range: RangeKind;
  pick: number;
  a: number;
  b: number;
  /** Payload bytes appended minus those declared (0: honest; else the stream desynchronises). */
  lie: number;
  /** Bits flipped in the header and id after encoding. */
  flips: Array<{ at: number; bit: number }>;
  payloadSeed: number;
}

type Fatal = "magic" | "version" | "type" | "id-empty" | "id-long" | "id-utf8" | "oversized";

export type Ending =
  | { kind: "clean" }
  | { kind: "torn"; frame: FrameRecipe; cut: number }
  | { kind: "garbage"; bytes: Uint8Array }
  | { kind: "fatal"; how: Fatal; frame: FrameRecipe }
  | { kind: "reset"; after: number };

export interface ConnectionScript {
  /** Own requests to allocate for this connection: keys per request. */
  own: number[];
  frames: FrameRecipe[];
  /** Commit the own requests once every frame is answered, before the ending (they survive it). */
  commit: boolean;
  /**
   * Before that Commit, write honestly every byte the frames left unwritten, so the Commit is proven
   * and its bytes compared; without it, a Commit of a partly written request must be refused unproven.
   */
  fill: boolean;
  release: boolean;
  /**
   * Stop inside the last frame's bytes, wait until the receiver answered what came before, then let
   * the own requests end under the half-sent frame (commit them, or abort them and hand their slots to
   * a new request) before sending the rest: the rest must not land.
   */
  interrupt: { back: number; event: "commit" | "abort" } | null;
  ending: Ending;
  /** Cut points (fractions of the stream) where the write is split, and whether to yield between pieces. */
  cuts: number[];
  yieldBetween: boolean;
}

export interface Episode {
  connections: ConnectionScript[];
  /** A swarm: every connection is opened before any byte is sent. */
  swarm: boolean;
  /** Replace one bystander (abort it: its slots go to quarantine, its id becomes "gone"). */
  churnBystander: boolean;
}

const recipeArb: fc.Arbitrary<FrameRecipe> = fc.record({
  id: weighted<IdFrom>([20, fc.constant("own")], [2, fc.constant("bystander")], [2, fc.constant("committed")], [2, fc.constant("gone")], [2, fc.constant("unknown")]),
  slot: weighted<SlotFrom>([20, fc.constant("same")], [2, fc.constant("other-own")], [2, fc.constant("bystander")], [1, fc.constant("committed")], [2, fc.constant("any")], [1, fc.constant("out-of-range")]),
  token: weighted<TokenFrom>([20, fc.constant("match")], [2, fc.constant("random")], [1, fc.constant("zero")], [1, fc.constant("other")]),
  range: weighted<RangeKind>([8, fc.constant("inside")], [2, fc.constant("zero")], [2, fc.constant("exact")], [2, fc.constant("past-end")], [1, fc.constant("huge-offset")]),
  pick: fc.nat(),
  a: fc.nat(),
  b: fc.nat(),
  lie: weighted<number>([40, fc.constant(0)], [1, fc.integer({ min: -64, max: 64 })]),
  flips: weighted<Array<{ at: number; bit: number }>>([25, fc.constant([])], [1, fc.array(fc.record({ at: fc.nat({ max: 40 }), bit: fc.nat({ max: 7 }) }), { minLength: 1, maxLength: 3 })]),
  payloadSeed: fc.nat(),
});

const endingArb: fc.Arbitrary<Ending> = weighted<Ending>(
  [6, fc.constant({ kind: "clean" as const })],
  [2, fc.record({ kind: fc.constant("torn" as const), frame: recipeArb, cut: fc.nat() })],
  [2, fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) })],
  [2, fc.record({ kind: fc.constant("fatal" as const), how: fc.constantFrom<Fatal>("magic", "version", "type", "id-empty", "id-long", "id-utf8", "oversized"), frame: recipeArb })],
  [1, fc.record({ kind: fc.constant("reset" as const), after: fc.nat() })],
);

function scriptArb(maxFrames: number, ownWeight: number): fc.Arbitrary<ConnectionScript> {
  return fc.record({
    own: weighted<number[]>([ownWeight, fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 })], [1, fc.constant([] as number[])]),
    frames: fc.array(recipeArb, { maxLength: maxFrames }),
    commit: weighted<boolean>([1, fc.constant(true)], [3, fc.constant(false)]),
    fill: fc.boolean(),
    interrupt: weighted<{ back: number; event: "commit" | "abort" } | null>(
      [3, fc.constant(null)],
      [1, fc.record({ back: fc.nat(), event: fc.constantFrom<"commit" | "abort">("commit", "abort") })],
    ),
    release: fc.boolean(),
    ending: endingArb,
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
    yieldBetween: fc.boolean(),
  });
}

export const episodeArb: fc.Arbitrary<Episode> = weighted<Episode>(
  [12, fc.record({ connections: fc.array(scriptArb(10, 6), { minLength: 1, maxLength: 4 }), swarm: fc.constant(false), churnBystander: fc.boolean() })],
  [1, fc.record({ connections: fc.array(scriptArb(3, 1), { minLength: 30, maxLength: 120 }), swarm: fc.constant(true), churnBystander: fc.constant(false) })],
);

// ------------------------------------------------------------------------------------ encoding

function prngBytes(seed: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = (seed | 0) || 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

interface EpisodeView {
  own: ModelRequest[];
  bystanders: ModelRequest[];
  committed: ModelRequest[];
  gone: string[];
  prefix: string;
  model: AllocationModel;
}

function pickFrom<T>(list: readonly T[], n: number): T | undefined {
  return list.length === 0 ? undefined : list[n % list.length];
}

/** Encodes a recipe into the bytes of one WRITE frame (header, id, payload). */
function encodeRecipe(r: FrameRecipe, seq: number, v: EpisodeView): Buffer {
  const { model } = v;
  let req: ModelRequest | undefined;
  let id: string;
  switch (r.id) {
    case "own":
      req = pickFrom(v.own, r.pick);
      break;
    case "bystander":
      req = pickFrom(v.bystanders, r.pick);
      break;
    case "committed":
      req = pickFrom(v.committed, r.pick);
      break;
    default:
      req = undefined;
  }
  if (req) id = req.id;
  else if (r.id === "gone" && v.gone.length > 0) id = pickFrom(v.gone, r.pick)!;
  else id = `${v.prefix}-nobody-${r.pick % 1000}`;

  const allocOf = (list: readonly ModelRequest[]): Allocation | undefined => pickFrom(list.flatMap((q) => q.allocs), r.a);
  let alloc: Allocation | undefined;
  let slot: number;
  switch (r.slot) {
    case "same":
      alloc = req ? pickFrom(req.allocs, r.a) : undefined;
      break;
    case "other-own":
      alloc = allocOf(v.own.filter((q) => q !== req));
      break;
    case "bystander":
      alloc = allocOf(v.bystanders);
      break;
    case "committed":
      alloc = allocOf(v.committed);
      break;
    default:
      alloc = undefined;
  }
  if (alloc) slot = alloc.slot;
  else if (r.slot === "out-of-range") slot = pickFrom([model.slotsTotal, model.slotsTotal + 1, 0xffffffff, 0x80000000], r.a)!;
  else slot = r.a % model.slotsTotal;

  let token: Buffer;
  switch (r.token) {
    case "match":
      token = alloc ? alloc.token : prngBytes(r.b, 8);
      break;
    case "zero":
      token = Buffer.alloc(8);
      break;
    case "other":
      token = (allocOf([...v.own, ...v.bystanders, ...v.committed].filter((q) => q !== req)) ?? { token: prngBytes(r.b + 1, 8) }).token;
      break;
    default:
      token = prngBytes(r.b, 8);
  }
  // Only a connection's own requests may be written validly: a right token for another request would
  // be a legitimate write (the token is the capability), which is not what these frames test.
  if (r.id !== "own" && alloc && req && alloc.requestId === req.id && token.equals(alloc.token)) token = prngBytes(r.b ^ 0x5a5a, 8);

  const size = alloc?.size ?? model.slotBytes;
  let offset: number;
  let length: number;
  switch (r.range) {
    case "inside":
      offset = r.a % size;
      length = 1 + (r.b % (size - offset));
      break;
    case "zero":
      offset = r.a % (size + 1);
      length = 0;
      break;
    case "exact":
      offset = 0;
      length = size;
      break;
    case "past-end":
      offset = r.a % size;
      length = Math.min(size - offset + 1 + (r.b % 16), model.maxFrameBytes);
      if (offset + length <= size) offset = size - length + 1;
      break;
    case "huge-offset":
      offset = 0xffffffff - (r.a % 8);
      length = 1 + (r.b % 64);
      break;
  }
  const head = writeHead(id, seq, slot, offset, length, token);
  for (const f of r.flips) head[f.at % head.length]! ^= 1 << f.bit;
  return Buffer.concat([head, prngBytes(r.payloadSeed, Math.max(0, length + r.lie))]);
}

/** A WRITE frame's header and request id, as docs/protocol.md lays them out. */
function writeHead(id: string, seq: number, slot: number, offset: number, length: number, token: Buffer): Buffer {
  const idBytes = Buffer.from(id, "utf8");
  const header = Buffer.alloc(WRITE_HEADER);
  MAGIC.copy(header, 0);
  header[4] = TCP_VERSION;
  header[5] = TYPE_WRITE;
  header.writeUInt16LE(idBytes.length, 6);
  header.writeUInt32LE(seq >>> 0, 8);
  header.writeUInt32LE(slot >>> 0, 12);
  header.writeUInt32LE(offset >>> 0, 16);
  header.writeUInt32LE(length >>> 0, 20);
  token.copy(header, 24, 0, 8);
  return Buffer.concat([header, idBytes]);
}

function encodeFatal(how: Fatal, frame: Buffer, maxFrameBytes: number): Buffer {
  const out = Buffer.from(frame);
  switch (how) {
    case "magic":
      out[0] = 0x47; // 'G', as in an HTTP probe
      break;
    case "version":
      out[4] = TCP_VERSION + 1 + (out[4]! % 200);
      break;
    case "type":
      out[5] = [0, 2, 3, 4, 255][out[6]! % 5]!;
      break;
    case "id-empty":
      out.writeUInt16LE(0, 6);
      break;
    case "id-long":
      out.writeUInt16LE(257 + (out[8]! % 1000), 6);
      break;
    case "id-utf8":
      out[WRITE_HEADER] = 0xff;
      break;
    case "oversized":
      out.writeUInt32LE(Math.min(0xffffffff, maxFrameBytes + 1 + out[9]!), 20);
      break;
  }
  return out;
}

// ------------------------------------------------------------------------------------ connection

class FuzzConnection {
  readonly socket: net.Socket;
  readonly parser = new ReplyParser();
  readonly matcher: ReplyMatcher;
  readonly closed: Promise<void>;
  isClosed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket, ref: ReferenceDecoder) {
    this.socket = socket;
    this.matcher = new ReplyMatcher(ref);
    socket.on("data", (chunk: Buffer) => {
      for (const r of this.parser.push(chunk)) this.matcher.onReply(r);
      this.wake();
    });
    socket.on("error", () => {
      // A reset by the receiver is one of the outcomes under test; `closed` reports it.
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async open(port: number, ref: ReferenceDecoder): Promise<FuzzConnection> {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new FuzzConnection(socket, ref);
  }

  async send(bytes: Buffer, cuts: number[], yieldBetween: boolean): Promise<void> {
    const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].filter((p) => p > 0 && p < bytes.length).sort((x, y) => x - y);
    let at = 0;
    for (const p of [...points, bytes.length]) {
      if (this.socket.destroyed) return;
      this.socket.write(bytes.subarray(at, p));
      at = p;
      if (yieldBetween) await new Promise((r) => setImmediate(r));
    }
  }

  /** Waits until `done()` or the connection closes; false after timeoutMs. */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done() && !this.isClosed) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return done() || this.isClosed;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

// ------------------------------------------------------------------------------------ runner

export interface TcpFuzzTarget {
  grpcAddress: string;
  dataPort: number;
  /** In process: the pool itself, its initial pattern and the store invariants. */
  pool?: () => Buffer;
  patternAt?: (i: number) => number;
  invariantProblem?: () => string | null;
  /** In process: data connections the receiver still has open (it must get to 0 once ours are closed). */
  openConnections?: () => number;
}

export interface TcpFuzzOptions {
  target: TcpFuzzTarget;
  tally: FuzzTally;
  namePrefix: string;
  /** Largest payload the receiver accepts (the decode node uses its slot size). */
  maxFrameBytes?: number;
  replyTimeoutMs?: number;
  /** Receives a line per allocation and per finished connection (frames, verdicts, replies), for replaying a finding. */
  trace?: (line: string) => void;
}

export class TcpFuzzer {
  readonly model: AllocationModel;
  readonly clients: NodeClients;
  private readonly opts: TcpFuzzOptions;
  private readonly poolModel: PoolModel | null;
  private readonly gone: string[] = [];
  private episodes = 0;
  private nextKey = 0;
  /** Connections, frames, bytes: the input counts a run reports. */
  readonly counts = { episodes: 0, connections: 0, frames: 0, endings: 0, bytes: 0, allocs: 0, commits: 0 };
  /** The node's generation (Hello): every Alloc carries it. */
  private readonly generation: number;

  private constructor(opts: TcpFuzzOptions, model: AllocationModel, clients: NodeClients, generation: number) {
    this.opts = opts;
    this.model = model;
    this.clients = clients;
    this.generation = generation;
    const pool = opts.target.pool?.();
    this.poolModel = pool ? new PoolModel(pool, model.slotBytes) : null;
  }

  static async open(opts: TcpFuzzOptions): Promise<TcpFuzzer> {
    const clients = nodeClients(opts.target.grpcAddress);
    const hello = await clients.receiver.hello({ protocolVersion: 1, fingerprint: "" }, { timeoutMs: 10_000 });
    const model = new AllocationModel(hello.slotsTotal, hello.slotBytes, opts.maxFrameBytes ?? hello.slotBytes);
    return new TcpFuzzer(opts, model, clients, hello.generation);
  }

  /** Runs `count` episodes generated from `seed`. */
  async run(count: number, seed: number, timeLimitMs?: number): Promise<void> {
    await drive(episodeArb, count, seed, (ep) => this.episode(ep), { timeLimitMs });
  }

  /** Ends every request the fuzzer holds (committed ones released, others aborted). */
  async releaseAll(): Promise<void> {
    for (const r of this.model.requests.values()) {
      if (r.phase === "gone" || this.unproven.has(r.id)) continue;
      await (r.phase === "committed"
        ? this.clients.receiver.release({ requestId: r.id }, { timeoutMs: 10_000 })
        : this.clients.receiver.abort({ requestId: r.id, reason: "fuzz done" }, { timeoutMs: 10_000 })
      ).catch(() => undefined);
      this.markGone(r.id);
    }
  }

  /** Bytes a legitimate writer outside the fuzzer (a real transfer) put at the start of `slot`. */
  noteWrite(slot: number, data: Buffer): void {
    if (!this.poolModel) return;
    this.poolModel.allocated({ requestId: "", key: "", slot, size: data.length, token: Buffer.alloc(8) });
    data.copy(this.poolModel.expected, slot * this.model.slotBytes);
  }

  /** The in-process pool checks: the model's bytes, and the pattern outside every allocation. */
  checkPool(context: string): void {
    const pool = this.opts.target.pool?.();
    if (!pool || !this.poolModel) return;
    for (const p of this.poolModel.check(pool)) this.finding(`pool differs from the model: ${p.replace(/\d+/g, "#")}`, `${context}: ${p}`);
    const patternAt = this.opts.target.patternAt;
    if (patternAt) for (const p of this.poolModel.outsideAllocations(pool, patternAt)) this.finding("byte written outside every allocation", `${context}: ${p}`);
  }

  close(): void {
    this.clients.close();
  }

  private finding(signature: string, example: string): void {
    this.opts.tally.finding(signature, example);
  }

  private markGone(id: string): void {
    if (this.model.phaseOf(id) === "gone") return;
    this.model.setPhase(id, "gone");
    this.gone.push(id);
    if (this.gone.length > 32) this.gone.shift();
  }

  private async alloc(requestId: string, sizes: number[]): Promise<ModelRequest | null> {
    const keys = sizes.map(() => `${this.opts.namePrefix}-key-${this.nextKey++}`);
    let res: AllocResponse__Output;
    try {
      res = await this.clients.receiver.alloc({ requestId, keys, sizes, batchSeq: 0, totalChunks: 0, isLastBatch: true, fingerprint: "", generation: this.generation }, { timeoutMs: 10_000 });
    } catch (err) {
      const code = err instanceof KvbridgeError ? err.code : "?";
      this.opts.tally.count("tcp setup Alloc", code);
      if (code !== "RESOURCE_EXHAUSTED") this.finding(`setup Alloc failed with ${code}`, err instanceof Error ? err.message : String(err));
      return null;
    }
    this.counts.allocs++;
    if (res.alreadySentIndexes.length !== 0 || res.remoteIndexes.length !== keys.length) {
      this.finding("setup Alloc of fresh keys deduped or lost keys", describeInput(res));
      return null;
    }
    const allocs = keys.map((key, i) => ({ requestId, key, slot: res.remoteIndexes[i]!, size: sizes[i]!, token: Buffer.from(res.writeTokens[i]!) }));
    this.opts.trace?.(`alloc ${requestId}: ${allocs.map((a) => `slot ${a.slot} size ${a.size} token ${a.token.toString("hex")}`).join(", ")}`);
    for (const a of allocs) this.poolModel?.allocated(a);
    return this.model.add(requestId, allocs);
  }

  private async episode(ep: Episode): Promise<void> {
    const n = this.episodes++;
    this.counts.episodes++;
    const prefix = `${this.opts.namePrefix}-e${n}`;
    const { model } = this;

    // Bystanders: allocated, never written on any connection; frames naming them are all refused, and
    // no torn connection may abort them.
    if (ep.churnBystander) {
      const victim = model.inPhase("allocating").find((r) => r.id.includes("-by"));
      if (victim) {
        await this.clients.receiver.abort({ requestId: victim.id, reason: "fuzz churn" }, { timeoutMs: 10_000 }).catch(() => undefined);
        this.markGone(victim.id);
      }
    }
    const bystanders = (): ModelRequest[] => model.inPhase("allocating").filter((r) => r.id.includes("-by"));
    if (bystanders().length < 2) await this.alloc(`${prefix}-by`, [1 + (n * 37) % model.slotBytes]);
    // Foreign targets must not change while the episode runs, or a frame's verdict would race with
    // another connection's Commit, Release or Abort: committed and ended requests of earlier episodes only.
    const stableCommitted = model.inPhase("committed");
    const stableGone = [...this.gone];

    const conns: Array<{ script: ConnectionScript; own: ModelRequest[]; heirs: ModelRequest[]; ref: ReferenceDecoder; conn?: FuzzConnection; body: Buffer; cut?: number; label: string }> = [];
    for (let i = 0; i < ep.connections.length; i++) {
      const script = ep.connections[i]!;
      const own: ModelRequest[] = [];
      // In a swarm only the first few connections own requests (the pool is small).
      if (!ep.swarm || i < 3) {
        for (let j = 0; j < script.own.length; j++) {
          const sizes = Array.from({ length: script.own[j]! }, (_, k) => 1 + ((n * 131 + i * 17 + j * 7 + k * 1031) % model.slotBytes));
          const r = await this.alloc(`${prefix}-c${i}-r${j}`, sizes);
          if (r) own.push(r);
        }
      }
      conns.push({ script, own, heirs: [], ref: new ReferenceDecoder(model), body: Buffer.alloc(0), label: `episode ${n} connection ${i}` });
    }
    const view = (c: (typeof conns)[number]): EpisodeView => ({
      own: c.own,
      bystanders: bystanders(),
      committed: stableCommitted,
      gone: stableGone,
      prefix,
      model,
    });
    for (const c of conns) {
      const encoded = c.script.frames.map((r, seq) => encodeRecipe(r, seq, view(c)));
      c.body = Buffer.concat(encoded);
      const last = encoded[encoded.length - 1];
      if (c.script.interrupt && last) c.cut = c.body.length - 1 - (c.script.interrupt.back % Math.max(1, last.length - WRITE_HEADER));
      this.counts.frames += c.script.frames.length;
    }

    const timeout = this.opts.replyTimeoutMs ?? 10_000;
    const runOne = async (c: (typeof conns)[number], conn: FuzzConnection): Promise<void> => {
      c.conn = conn;
      this.counts.connections++;
      this.counts.bytes += c.body.length;
      const { script } = c;
      const ending = script.ending;
      if (c.cut !== undefined && ending.kind !== "reset" && script.interrupt) {
        // The body up to inside its last frame, answered; then the own requests end; then the rest.
        const head = c.body.subarray(0, c.cut);
        c.body = c.body.subarray(c.cut);
        c.ref.push(head);
        await conn.send(head, script.cuts, script.yieldBetween);
        if (!(await conn.until(() => conn.matcher.settled, timeout))) {
          this.finding("receiver did not answer every frame in time", `${c.label}: ${conn.matcher.next} of ${conn.matcher.answerableCount()} answered (before the interrupt)`);
        }
        this.applyAnswered(c.ref);
        // A connection the receiver already closed aborted its requests: nothing left to interrupt.
        if (!c.ref.close && !conn.isClosed) {
          this.opts.tally.count("tcp interrupts", script.interrupt.event);
          // Released too, the frame's refusal code would race with the release (committed vs unknown).
          if (script.interrupt.event === "commit") await this.commitOwn(c, false);
          else await this.abortOwnAndReallocate(c);
        }
      }
      c.ref.push(c.body);
      if (ending.kind === "reset") {
        // Part of the body, then an abrupt reset: the receiver may have read any prefix of it.
        const cut = c.body.length === 0 ? 0 : ending.after % (c.body.length + 1);
        await conn.send(c.body.subarray(0, cut), script.cuts, script.yieldBetween);
        conn.socket.resetAndDestroy();
        await this.awaitClose(c, conn, timeout);
        this.traceConnection(`${c.label} (reset after ${cut} of ${c.body.length} bytes)`, c.ref, conn, ending);
        this.settleReset(c);
        return;
      }
      await conn.send(c.body, script.cuts, script.yieldBetween);
      if (!(await conn.until(() => conn.matcher.settled, timeout))) {
        this.finding("receiver did not answer every frame in time", `${c.label}: ${conn.matcher.next} of ${conn.matcher.answerableCount()} answered`);
      }
      this.applyAnswered(c.ref);
      if (script.commit && script.fill && !c.ref.close && !conn.isClosed) await this.fillGaps(c, conn, timeout);
      if (script.commit && !c.ref.close && !conn.isClosed) await this.commitOwn(c, script.release);
      let tail: Buffer = Buffer.alloc(0);
      if (!c.ref.close && !conn.isClosed) {
        const v = view(c);
        const seq = script.frames.length;
        switch (ending.kind) {
          case "torn": {
            const whole = encodeRecipe(ending.frame, seq, v);
            tail = whole.subarray(0, ending.cut % whole.length);
            break;
          }
          case "garbage":
            tail = Buffer.from(ending.bytes);
            break;
          case "fatal":
            tail = encodeFatal(ending.how, encodeRecipe({ ...ending.frame, lie: 0, flips: [] }, seq, v), this.model.maxFrameBytes);
            break;
          case "clean":
            break;
        }
        if (tail.length > 0) {
          this.counts.endings++;
          c.ref.push(tail);
          this.counts.bytes += tail.length;
          await conn.send(tail, [], false);
          if (!(await conn.until(() => conn.matcher.settled, timeout))) {
            this.finding("receiver did not answer the ending in time", `${c.label}: ${describeInput(ending)}`);
          }
        }
      }
      const torn = c.ref.midFrame;
      if (c.ref.close) {
        if (!conn.matcher.closeSeen) this.finding(`no CLOSE ${c.ref.close.code} for a stream the receiver cannot decode`, `${c.label}: ${describeInput(ending)}`);
      } else {
        conn.socket.end();
      }
      await this.awaitClose(c, conn, timeout);
      for (const p of [...conn.parser.problems, ...conn.matcher.problems]) this.finding(p.replace(/"[^"]*"/g, '"..."'), `${c.label}: ${p}; ending ${describeInput(ending).slice(0, 300)}`);
      for (const [label, k] of conn.matcher.counts) this.opts.tally.count("tcp replies", label, k);
      this.opts.tally.count("tcp endings", c.ref.close ? `CLOSE ${c.ref.close.code}` : torn ? "torn" : ending.kind);
      this.countFrames(c.ref);
      this.traceConnection(c.label, c.ref, conn, ending);
      this.applyAnswered(c.ref);
      // A frame cut by the ending, or stopped because its allocation ended, may be in the pool in part.
      for (const f of c.ref.frames) if (!this.applied.has(f) && (f.verdict.ok || f.lapsed)) this.poolModel?.maybeWritten(f);
      this.settleLost(c.ref.admittedIds);
    };

    if (ep.swarm) {
      const opened = await Promise.all(conns.map((c) => FuzzConnection.open(this.opts.target.dataPort, c.ref)));
      await Promise.all(conns.map((c, i) => runOne(c, opened[i]!)));
    } else {
      await Promise.all(conns.map(async (c) => runOne(c, await FuzzConnection.open(this.opts.target.dataPort, c.ref))));
    }
    this.opts.tally.inputs += conns.length;
    // A reset connection closes on our side at once; the receiver may still be reading what it got.
    const open = this.opts.target.openConnections;
    if (open) {
      const deadline = Date.now() + timeout;
      while (open() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      if (open() > 0) this.finding("receiver kept data connections open after their peers closed", `episode ${n}: ${open()} open`);
    }
    await this.checkPhases(`episode ${n}`);
    await this.endEpisode(conns.flatMap((c) => [...c.own, ...c.heirs]));
    this.checkPool(`episode ${n}`);
    const inv = this.opts.target.invariantProblem?.();
    if (inv) this.finding(inv, `episode ${n}`);
  }

  private async awaitClose(c: { label: string }, conn: FuzzConnection, timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const ok = await Promise.race([conn.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!ok) {
      this.finding("receiver kept a finished connection open", c.label);
      conn.socket.destroy();
    }
  }

  private traceConnection(label: string, ref: ReferenceDecoder, conn: FuzzConnection, ending: Ending): void {
    const t = this.opts.trace;
    if (!t) return;
    t(`${label} ending ${ending.kind}${ref.close ? ` close ${ref.close.code}` : ""}, replies ${[...conn.matcher.counts].map(([k, v]) => `${k}=${v}`).join(" ")}`);
    for (const f of ref.frames) {
      const v = f.lapsed ? `lapsed ${f.verdict.ok ? "" : f.verdict.code}` : f.verdict.ok ? "admitted" : `refused ${f.verdict.code}`;
      t(`  seq ${f.seq} ${f.requestId.slice(0, 40)} slot ${f.slot} [${f.offset}, +${f.length}) token ${f.token.toString("hex")} ${v} got ${f.got}${f.answerable ? "" : " unanswered"}`);
    }
  }

  /** What the model says became of each frame (written, refused with a code, stopped mid-payload, torn). */
  private countFrames(ref: ReferenceDecoder): void {
    for (const f of ref.frames) {
      const what = f.lapsed ? `stopped mid-payload ${f.verdict.ok ? "" : f.verdict.code}` : f.verdict.ok ? (f.answerable ? "written" : "torn") : `refused ${f.verdict.code}`;
      this.opts.tally.count("tcp frames (model)", what);
    }
  }

  /** Admitted frames the receiver answered are in the pool, whole. */
  private applyAnswered(ref: ReferenceDecoder): void {
    for (const f of ref.frames) {
      if (this.applied.has(f) || !f.verdict.ok || !f.answerable) continue;
      this.poolModel?.written(f);
      this.noteWritten(f.requestId, f.slot, f.offset, f.length);
      this.applied.add(f);
    }
  }

  private readonly applied = new WeakSet<object>();

  /** After a reset the receiver read an unknown prefix: every admitted frame may have landed. */
  private settleReset(c: { ref: ReferenceDecoder; conn?: FuzzConnection }): void {
    this.opts.tally.count("tcp endings", "reset");
    this.countFrames(c.ref);
    for (const f of c.ref.frames) if (f.verdict.ok || f.lapsed) this.poolModel?.maybeWritten(f);
    for (const p of c.conn!.parser.problems) this.finding(p, "reset connection");
    for (const p of c.conn!.matcher.problems) this.finding(p, "reset connection");
    // Which of its requests the receiver saw a frame for is unknown: ask it (checkPhases syncs).
    for (const id of c.ref.admittedIds) {
      this.maybeLost.add(id);
      this.resetIds.add(id);
    }
  }

  private readonly maybeLost = new Set<string>();
  /** Requests written on a reset connection: the receiver may abort them at any time after the episode. */
  private readonly resetIds = new Set<string>();

  /** Rule 7: a closed connection aborts its admitted requests that are still allocating, nothing else. */
  private settleLost(ids: ReadonlySet<string>): void {
    for (const id of ids) if (this.model.phaseOf(id) === "allocating") this.markGone(id);
  }

  /** Aborts the connection's own requests and allocates as many slots to a new request (quarantine 0: the same slots). */
  private async abortOwnAndReallocate(c: { own: ModelRequest[]; heirs: ModelRequest[]; ref: ReferenceDecoder; label: string }): Promise<void> {
    for (const r of c.own) {
      if (r.phase !== "allocating") continue;
      // The model first: the receiver may answer the half-sent frame before the Abort call returns.
      this.markGone(r.id);
      c.ref.revalidate();
      await this.clients.receiver.abort({ requestId: r.id, reason: "fuzz interrupt" }, { timeoutMs: 10_000 }).catch((err: unknown) => this.finding("Abort of a live request failed", String(err)));
      this.markGone(r.id);
      const heir = await this.alloc(`${r.id}-heir`, r.allocs.map((a) => a.size));
      if (heir) c.heirs.push(heir);
    }
  }

  private async commitOwn(c: { own: ModelRequest[]; ref: ReferenceDecoder; label: string }, release: boolean): Promise<void> {
    for (const r of c.own) {
      if (r.phase !== "allocating") continue;
      // A frame of it still arriving may have put part of its bytes in: those chunks are not compared.
      const inFlight = new Set(c.ref.frames.filter((f) => f.verdict.ok && !f.answerable && f.requestId === r.id).map((f) => f.slot));
      // The store makes a chunk READY only if its owner's admitted, completed writes covered every byte.
      const proven = r.allocs.every((a) => this.covered(r.id, a.slot, a.size));
      // The model first: the receiver may answer the half-sent frame before the Commit call returns.
      // Refused or not, the request takes no more writes (FAILED_PRECONDITION, as for a committed one).
      this.model.setPhase(r.id, "committed");
      c.ref.revalidate();
      try {
        await this.clients.receiver.commit({ requestId: r.id }, { timeoutMs: 10_000 });
      } catch (err) {
        const e = err instanceof KvbridgeError ? err : undefined;
        if (!proven && e?.code === "FAILED_PRECONDITION" && e.details.reason === "commit_unproven") {
          this.unproven.add(r.id);
          this.opts.tally.count("tcp commits", "refused unproven");
          await this.checkNotReady(r, c.label);
          continue;
        }
        this.finding(`Commit of a ${proven ? "fully written" : "partly written"} request failed: ${e ? `${e.code} ${e.details.reason ?? ""}` : "?"}`, `${c.label}: ${err instanceof Error ? err.message : String(err)}`);
        continue;
      }
      if (!proven) this.finding("Commit of a partly written request made it READY", `${c.label}: ${r.id}`);
      this.opts.tally.count("tcp commits", "ready");
      this.counts.commits++;
      await this.checkCommitted(r, c.label, inFlight);
      if (release) {
        await this.clients.receiver.release({ requestId: r.id }, { timeoutMs: 10_000 }).catch((err: unknown) => this.finding("Release of a committed request failed", String(err)));
        this.markGone(r.id);
      }
    }
  }

  /**
   * Requests whose Commit was refused unproven. The model keeps them "committed" (a frame naming one
   * is refused FAILED_PRECONDITION, as the store answers for that end) but the node no longer lists them.
   */
  private readonly unproven = new Set<string>();
  /** Byte ranges [start, end) of each request's slot that admitted frames wrote whole ("id\0slot"). */
  private readonly writtenRanges = new Map<string, Array<[number, number]>>();

  private noteWritten(requestId: string, slot: number, offset: number, length: number): void {
    if (length <= 0) return;
    const k = `${requestId}\0${slot}`;
    const ranges = this.writtenRanges.get(k) ?? [];
    ranges.push([offset, offset + length]);
    this.writtenRanges.set(k, ranges);
  }

  /** Every byte of [0, size) of `slot` was written by `requestId`'s admitted frames. */
  private covered(requestId: string, slot: number, size: number): boolean {
    const ranges = [...(this.writtenRanges.get(`${requestId}\0${slot}`) ?? [])].sort((x, y) => x[0] - y[0]);
    let upTo = 0;
    for (const [start, end] of ranges) {
      if (start > upTo) break;
      upTo = Math.max(upTo, end);
    }
    return upTo >= size;
  }

  /** Writes, with honest frames on the connection, every byte of its own allocating requests that no frame wrote. */
  private async fillGaps(c: { own: ModelRequest[]; ref: ReferenceDecoder; script: ConnectionScript; label: string }, conn: FuzzConnection, timeoutMs: number): Promise<void> {
    const frames: Buffer[] = [];
    let seq = c.script.frames.length + 1;
    for (const r of c.own) {
      if (r.phase !== "allocating") continue;
      for (const a of r.allocs) {
        const ranges = [...(this.writtenRanges.get(`${r.id}\0${a.slot}`) ?? [])].sort((x, y) => x[0] - y[0]);
        let at = 0;
        const gaps: Array<[number, number]> = [];
        for (const [start, end] of ranges) {
          if (start > at) gaps.push([at, start]);
          at = Math.max(at, end);
        }
        if (at < a.size) gaps.push([at, a.size]);
        for (const [start, end] of gaps) {
          const length = Math.min(end - start, this.model.maxFrameBytes);
          frames.push(Buffer.concat([writeHead(r.id, seq, a.slot, start, length, a.token), prngBytes(seq * 7919 + start, length)]));
          seq++;
          if (start + length < end) gaps.push([start + length, end]);
        }
      }
    }
    if (frames.length === 0) return;
    this.opts.tally.count("tcp fills", "frames", frames.length);
    const body = Buffer.concat(frames);
    c.ref.push(body);
    this.counts.bytes += body.length;
    await conn.send(body, [], false);
    if (!(await conn.until(() => conn.matcher.settled, timeoutMs))) {
      this.finding("receiver did not answer the filling frames in time", `${c.label}: ${conn.matcher.next} of ${conn.matcher.answerableCount()} answered`);
    }
    this.applyAnswered(c.ref);
  }

  /** A request refused unproven left nothing READY: none of its keys reads as READY. */
  private async checkNotReady(r: ModelRequest, label: string): Promise<void> {
    const res = await this.clients.inspect.checksumKeys({ keys: r.allocs.map((a) => a.key) }, { timeoutMs: 10_000 });
    for (const got of res.checksums) {
      if (got.state === "ready") this.finding("key of a Commit refused unproven is READY", `${label}: ${got.key}`);
    }
  }

  /** The committed bytes, read back through ChecksumKeys, are what the model says the pool holds. */
  private async checkCommitted(r: ModelRequest, label: string, inFlight: ReadonlySet<number>): Promise<void> {
    const res = await this.clients.inspect.checksumKeys({ keys: r.allocs.map((a) => a.key) }, { timeoutMs: 10_000 });
    for (let i = 0; i < r.allocs.length; i++) {
      const a = r.allocs[i]!;
      const got = res.checksums[i];
      if (!got || got.state !== "ready") {
        this.finding("committed key not READY in ChecksumKeys", `${label}: ${a.key} -> ${describeInput(got)}`);
        continue;
      }
      if (inFlight.has(a.slot)) {
        this.opts.tally.count("tcp committed chunks", "not compared (frame in flight)");
        continue;
      }
      if (this.poolModel) {
        const s = a.slot * this.model.slotBytes;
        const want = createHash("sha256").update(this.poolModel.expected.subarray(s, s + a.size)).digest("hex");
        if (got.sha256 !== want) this.finding("committed chunk bytes differ from what was written", `${label}: ${a.key} slot ${a.slot}`);
      }
      this.opts.tally.count("tcp committed chunks", "checked");
    }
  }

  /**
   * The node's requests match the model: rule 7 aborted exactly the torn connections' requests. The
   * receiver hears of a closed connection a moment after its peer does, so a mismatch is re-read a
   * few times before it counts.
   */
  private async checkPhases(context: string): Promise<void> {
    let mismatches: string[] = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 25));
      const listed = await this.clients.inspect.listRequests({}, { timeoutMs: 10_000 });
      const actual = new Map(listed.requests.map((r) => [r.requestId, r.phase]));
      mismatches = [];
      for (const r of this.model.requests.values()) {
        const got = (actual.get(r.id) ?? "gone") as string;
        if (this.maybeLost.has(r.id) && r.phase === "allocating" && got === "gone") {
          this.markGone(r.id);
          continue;
        }
        const want = this.unproven.has(r.id) ? "gone" : r.phase;
        if (got !== want) mismatches.push(`${r.id}: node says ${got}, model says ${want}`);
      }
      if (mismatches.length === 0) break;
    }
    for (const m of mismatches) this.finding(`request phase differs from the model: ${m.replace(/^[^:]*: /, "")}`, `${context}: ${m}`);
    this.maybeLost.clear();
  }

  /**
   * Frees what the episode's own requests still hold (aborting the unfinished ones), keeping the two
   * latest committed requests as targets for stale frames, so the small pool serves the next episode.
   */
  private async endEpisode(own: ModelRequest[]): Promise<void> {
    for (const r of own) {
      if (r.phase !== "allocating") continue;
      await this.clients.receiver.abort({ requestId: r.id, reason: "fuzz episode over" }, { timeoutMs: 10_000 }).catch((err: unknown) => {
        if (!(this.resetIds.has(r.id) && err instanceof KvbridgeError && err.code === "NOT_FOUND")) this.finding("Abort of a live request failed", String(err));
      });
      this.markGone(r.id);
    }
    this.resetIds.clear();
    // Requests refused unproven are over already (and stay "committed" in the model, see `unproven`).
    const committed = this.model.inPhase("committed").filter((r) => !this.unproven.has(r.id));
    for (const r of committed.slice(0, Math.max(0, committed.length - 2))) {
      await this.clients.receiver.release({ requestId: r.id }, { timeoutMs: 10_000 }).catch((err: unknown) => this.finding("Release of a committed request failed", String(err)));
      this.markGone(r.id);
    }
  }
}
