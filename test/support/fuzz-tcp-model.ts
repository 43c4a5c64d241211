// The fuzzer's independent model of a kvbridge TCP data-plane receiver, written from docs/protocol.md:
// which allocations exist (request, slot, size, token, phase), how a byte stream decodes into WRITE
// frames, which frame the receiver must admit or refuse (and with which code), which replies it must
// send, and what the pool must then hold. The fuzzer compares the real receiver against it.

export const MAGIC = Buffer.from("KVBT", "latin1");
export const TCP_VERSION = 1;
export const TYPE_WRITE = 1;
export const TYPE_ACK = 2;
export const TYPE_NACK = 3;
export const TYPE_CLOSE = 4;
export const WRITE_HEADER = 32;
export const REPLY_HEADER = 16;
export const MAX_ID_BYTES = 256;
export const MAX_REPLY_MESSAGE = 1024;
/** Wire error codes by number (docs/protocol.md, "Error codes"). */
export const WIRE_CODES = [
  "OK",
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "RESOURCE_EXHAUSTED",
  "DEADLINE_EXCEEDED",
  "CANCELLED",
  "UNAVAILABLE",
  "PERMISSION_DENIED",
  "INCOMPATIBLE",
  "KV_FAILED",
  "INTERNAL",
] as const;
export type WireCode = (typeof WIRE_CODES)[number];

export interface Allocation {
  requestId: string;
  key: string;
  slot: number;
  size: number;
  token: Buffer;
}

export type RequestPhase = "allocating" | "committed" | "gone";

export interface ModelRequest {
  id: string;
  phase: RequestPhase;
  allocs: Allocation[];
}

/** What the fuzzer knows the receiver holds. Only requests the fuzzer made are modelled. */
export class AllocationModel {
  readonly requests = new Map<string, ModelRequest>();
  readonly slotsTotal: number;
  readonly slotBytes: number;
  readonly maxFrameBytes: number;

  constructor(slotsTotal: number, slotBytes: number, maxFrameBytes: number) {
    this.slotsTotal = slotsTotal;
    this.slotBytes = slotBytes;
    this.maxFrameBytes = maxFrameBytes;
  }

  add(id: string, allocs: Allocation[]): ModelRequest {
    const r: ModelRequest = { id, phase: "allocating", allocs };
    this.requests.set(id, r);
    return r;
  }

  phaseOf(id: string): RequestPhase {
    return this.requests.get(id)?.phase ?? "gone";
  }

  setPhase(id: string, phase: RequestPhase): void {
    const r = this.requests.get(id);
    if (r) r.phase = phase;
  }

  inPhase(phase: RequestPhase): ModelRequest[] {
    return [...this.requests.values()].filter((r) => r.phase === phase);
  }

  /**
   * The receiver's verdict on one WRITE header, in the order the kvbridge store checks: unknown request,
   * committed request, slot range, slot ownership, token, bounds.
   */
  admit(id: string, slot: number, offset: number, length: number, token: Buffer): { ok: true; alloc: Allocation } | { ok: false; code: WireCode } {
    const r = this.requests.get(id);
    if (!r || r.phase === "gone") return { ok: false, code: "NOT_FOUND" };
    if (r.phase === "committed") return { ok: false, code: "FAILED_PRECONDITION" };
    if (slot >= this.slotsTotal) return { ok: false, code: "INVALID_ARGUMENT" };
    const alloc = r.allocs.find((a) => a.slot === slot);
    if (!alloc) return { ok: false, code: "PERMISSION_DENIED" };
    if (!alloc.token.equals(token)) return { ok: false, code: "PERMISSION_DENIED" };
    if (offset + length > alloc.size) return { ok: false, code: "INVALID_ARGUMENT" };
    return { ok: true, alloc };
  }
}

/** One WRITE frame as the receiver must see it. */
export interface RefFrame {
  seq: number;
  requestId: string;
  slot: number;
  offset: number;
  length: number;
  verdict: { ok: true; alloc: Allocation } | { ok: false; code: WireCode };
  token: Buffer;
  /** Admitted, then its allocation ended before the payload was all in: the rest is skipped, then NACKed. */
  lapsed: boolean;
  /** The receiver owes a reply for it: refused (header and id in) or admitted with its whole payload in. */
  answerable: boolean;
  /** Payload bytes of an admitted frame present in the stream so far. */
  got: number;
  /** Those bytes (for the pool model). */
  payload: Buffer;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Decodes one connection's byte stream the way the protocol says a receiver must, against the model's
 * allocations at the time each part is pushed. Knows nothing of kvbridge's implementation.
 */
export class ReferenceDecoder {
  readonly frames: RefFrame[] = [];
  /** The connection must be closed with this code (a CLOSE reply first). */
  close: { code: WireCode } | null = null;
  /** Request ids with at least one admitted frame on this connection (rule 7). */
  readonly admittedIds = new Set<string>();
  private buf = Buffer.alloc(0);
  private pos = 0;
  private current: { frame: RefFrame; left: number } | null = null;
  private skipLeft = 0;
  private lapsedFrame: RefFrame | null = null;

  constructor(private readonly model: AllocationModel) {}

  push(bytes: Buffer): void {
    this.buf = Buffer.concat([this.buf.subarray(this.pos), bytes]);
    this.pos = 0;
    this.step();
  }

  /**
   * The model changed (a request committed or ended): a frame whose payload is still arriving is
   * admitted again now, as the receiver does the moment it hears of it.
   */
  revalidate(): void {
    if (this.current) this.step();
  }

  /** Bytes pushed but not yet making a whole part (a header, an id). */
  get midFrame(): boolean {
    return this.close === null && (this.current !== null || this.skipLeft > 0 || this.buf.length - this.pos > 0);
  }

  private step(): void {
    for (;;) {
      if (this.close) return;
      if (this.current) {
        const f = this.current.frame;
        // The rest of the payload is admitted again before it lands (docs/protocol.md, receiver rule 4):
        // an allocation that ended meanwhile (committed, aborted) gets no more bytes.
        const again = this.model.admit(f.requestId, f.slot, f.offset + f.got, this.current.left, f.token);
        if (!again.ok) {
          f.verdict = again;
          f.lapsed = true;
          this.skipLeft = this.current.left;
          this.lapsedFrame = f;
          this.current = null;
          continue;
        }
        if (this.pos >= this.buf.length) return;
        const n = Math.min(this.current.left, this.buf.length - this.pos);
        f.payload = Buffer.concat([f.payload, this.buf.subarray(this.pos, this.pos + n)]);
        f.got += n;
        this.current.left -= n;
        this.pos += n;
        if (this.current.left > 0) return;
        f.answerable = true;
        this.current = null;
        continue;
      }
      if (this.skipLeft > 0) {
        const n = Math.min(this.skipLeft, this.buf.length - this.pos);
        this.skipLeft -= n;
        this.pos += n;
        if (this.skipLeft > 0) return;
        if (this.lapsedFrame) this.lapsedFrame.answerable = true;
        this.lapsedFrame = null;
        continue;
      }
      const avail = this.buf.length - this.pos;
      const h = this.buf.subarray(this.pos);
      if (avail >= 6) {
        if (!h.subarray(0, 4).equals(MAGIC)) return this.fatal("INVALID_ARGUMENT");
        if (h[4] !== TCP_VERSION) return this.fatal("INCOMPATIBLE");
        if (h[5] !== TYPE_WRITE) return this.fatal("INVALID_ARGUMENT");
      }
      if (avail < WRITE_HEADER) return;
      const idLen = h.readUInt16LE(6);
      const length = h.readUInt32LE(20);
      if (idLen === 0 || idLen > MAX_ID_BYTES) return this.fatal("INVALID_ARGUMENT");
      if (length > this.model.maxFrameBytes) return this.fatal("INVALID_ARGUMENT");
      if (avail < WRITE_HEADER + idLen) return;
      let requestId: string;
      try {
        requestId = utf8.decode(h.subarray(WRITE_HEADER, WRITE_HEADER + idLen));
      } catch {
        return this.fatal("INVALID_ARGUMENT");
      }
      const seq = h.readUInt32LE(8);
      const slot = h.readUInt32LE(12);
      const offset = h.readUInt32LE(16);
      const token = Buffer.from(h.subarray(24, 32));
      this.pos += WRITE_HEADER + idLen;
      const verdict = this.model.admit(requestId, slot, offset, length, token);
      const frame: RefFrame = { seq, requestId, slot, offset, length, verdict, token, lapsed: false, answerable: false, got: 0, payload: Buffer.alloc(0) };
      this.frames.push(frame);
      if (!verdict.ok) {
        frame.answerable = true;
        this.skipLeft = length;
        continue;
      }
      this.admittedIds.add(requestId);
      if (length === 0) {
        frame.answerable = true;
        continue;
      }
      this.current = { frame, left: length };
    }
  }

  private fatal(code: WireCode): void {
    this.close = { code };
  }
}

/** A reply as it came off the wire, checked against the layout in docs/protocol.md. */
export type WireReply =
  | { type: "ACK"; seq: number }
  | { type: "NACK" | "CLOSE"; seq: number; code: WireCode; message: string };

/** Incremental reply parser that reports every deviation from the documented layout as a problem. */
export class ReplyParser {
  private pending = Buffer.alloc(0);
  readonly problems: string[] = [];

  push(chunk: Buffer): WireReply[] {
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: WireReply[] = [];
    while (this.pending.length >= REPLY_HEADER) {
      const h = this.pending;
      const bad = (why: string): WireReply[] => {
        this.problems.push(`malformed reply (${why}): ${h.subarray(0, REPLY_HEADER).toString("hex")}`);
        this.pending = Buffer.alloc(0);
        return out;
      };
      if (!h.subarray(0, 4).equals(MAGIC)) return bad("magic");
      if (h[4] !== TCP_VERSION) return bad("version");
      const type = h[5]!;
      const msgLen = h.readUInt16LE(6);
      if (msgLen > MAX_REPLY_MESSAGE) return bad("message length above 1024");
      if (h.length < REPLY_HEADER + msgLen) break;
      const seq = h.readUInt32LE(8);
      const codeNum = h[12]!;
      if (h[13] !== 0 || h[14] !== 0 || h[15] !== 0) return bad("reserved bytes not zero");
      let message: string;
      try {
        message = utf8.decode(h.subarray(REPLY_HEADER, REPLY_HEADER + msgLen));
      } catch {
        return bad("message not UTF-8");
      }
      this.pending = h.subarray(REPLY_HEADER + msgLen);
      if (type === TYPE_ACK) {
        if (codeNum !== 0 || msgLen !== 0) return bad("ACK with a code or a message");
        out.push({ type: "ACK", seq });
      } else if (type === TYPE_NACK || type === TYPE_CLOSE) {
        const code = WIRE_CODES[codeNum];
        if (!code || code === "OK") return bad(`error reply with code ${codeNum}`);
        if (message.trim() === "") this.problems.push(`${type === TYPE_NACK ? "NACK" : "CLOSE"} ${code} without a message`);
        out.push({ type: type === TYPE_NACK ? "NACK" : "CLOSE", seq, code, message });
      } else {
        return bad(`type ${type}`);
      }
    }
    return out;
  }
}

/**
 * Matches the replies of one connection against the reference frames, in order: an ACK must cover a
 * run of admitted frames ending at one with its seq; a NACK must be the next frame, refused with that
 * seq and code (earlier frames were acknowledged first); a CLOSE must follow every answerable frame.
 */
export class ReplyMatcher {
  /** Index of the first frame not yet answered. */
  next = 0;
  closeSeen: { code: WireCode; message: string } | null = null;
  readonly problems: string[] = [];
  readonly counts = new Map<string, number>();

  constructor(private readonly ref: ReferenceDecoder) {}

  onReply(r: WireReply): void {
    const label = r.type === "ACK" ? "ACK" : `${r.type} ${r.code}`;
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    if (this.closeSeen) {
      this.problems.push(`${label} after CLOSE`);
      return;
    }
    const frames = this.ref.frames;
    if (r.type === "ACK") {
      for (let q = this.next; q < frames.length; q++) {
        const f = frames[q]!;
        if (!f.verdict.ok || !f.answerable) break;
        if (f.seq === r.seq) {
          this.next = q + 1;
          return;
        }
      }
      this.problems.push(`ACK ${r.seq} matches no admitted frame from #${this.next} (${describeFrame(frames[this.next])})`);
      return;
    }
    if (r.type === "NACK") {
      const f = frames[this.next];
      if (!f || f.verdict.ok || f.seq !== r.seq || f.verdict.code !== r.code) {
        this.problems.push(`NACK ${r.seq} ${r.code} "${r.message}" where the model expects ${describeFrame(f)}`);
        return;
      }
      this.next++;
      return;
    }
    this.closeSeen = { code: r.code, message: r.message };
    const expected = this.ref.close;
    if (!expected) this.problems.push(`CLOSE ${r.code} "${r.message}" where the model expects no close (${describeFrame(frames[this.next])})`);
    else if (expected.code !== r.code) this.problems.push(`CLOSE ${r.code} "${r.message}" where the model expects CLOSE ${expected.code}`);
    if (this.next !== this.answerableCount()) this.problems.push(`CLOSE before frames #${this.next}..#${this.answerableCount() - 1} were answered`);
  }

  answerableCount(): number {
    let n = 0;
    for (const f of this.ref.frames) if (f.answerable) n++;
    return n;
  }

  /** Every frame that owes a reply has one (and the CLOSE came, if one is due). */
  get settled(): boolean {
    if (this.ref.close) return this.closeSeen !== null;
    return this.next >= this.answerableCount();
  }
}

function describeFrame(f: RefFrame | undefined): string {
  if (!f) return "no further frame";
  const v = f.verdict.ok ? "admitted" : `refused ${f.verdict.code}`;
  return `frame seq ${f.seq} ${JSON.stringify(f.requestId.slice(0, 40))} slot ${f.slot} [${f.offset}, +${f.length}) ${v}${f.answerable ? "" : " (incomplete)"}`;
}

/**
 * What the pool must hold: exact bytes where every write is known, and, where a write may or may not
 * have landed (a torn frame), either the old byte or the one that frame carried.
 */
export class PoolModel {
  readonly expected: Buffer;
  /** Offset -> the bytes frames that may have landed there carried (any of them may be the last). */
  private readonly loose = new Map<number, Set<number>>();
  /** Bytes that some allocation ever covered: everything else must keep the initial pattern forever. */
  readonly everAllocated: Uint8Array;

  constructor(
    initial: Buffer,
    private readonly slotBytes: number,
  ) {
    this.expected = Buffer.from(initial);
    this.everAllocated = new Uint8Array(initial.length);
  }

  allocated(a: Allocation): void {
    const s = a.slot * this.slotBytes;
    this.everAllocated.fill(1, s, s + a.size);
  }

  /** An admitted frame whose payload was all read: its bytes are in the pool. */
  written(f: RefFrame): void {
    const s = f.slot * this.slotBytes + f.offset;
    f.payload.copy(this.expected, s, 0, f.got);
  }

  /** An admitted frame that may have landed partly or not at all. */
  maybeWritten(f: RefFrame): void {
    const s = f.slot * this.slotBytes + f.offset;
    for (let i = 0; i < f.got; i++) {
      let alts = this.loose.get(s + i);
      if (!alts) this.loose.set(s + i, (alts = new Set()));
      alts.add(f.payload[i]!);
    }
  }

  /**
   * Compares the pool with the model; loose bytes become whatever they are (one of the two allowed).
   * Returns up to `max` problems, each naming the offset, slot and bytes.
   */
  check(pool: Buffer, max = 5): string[] {
    const problems: string[] = [];
    for (const [i, alts] of this.loose) {
      const actual = pool[i]!;
      if (actual !== this.expected[i] && !alts.has(actual) && problems.length < max) problems.push(this.describe(i, actual, `${this.expected[i]} or one of ${[...alts].join("/")}`));
      this.expected[i] = actual;
    }
    this.loose.clear();
    if (pool.equals(this.expected)) return problems;
    for (let i = 0; i < pool.length && problems.length < max; i++) {
      if (pool[i] !== this.expected[i]) problems.push(this.describe(i, pool[i]!, String(this.expected[i])));
    }
    return problems;
  }

  /** Bytes never covered by an allocation that differ from the initial pattern. */
  outsideAllocations(pool: Buffer, patternAt: (i: number) => number, max = 5): string[] {
    const problems: string[] = [];
    for (let i = 0; i < pool.length && problems.length < max; i++) {
      if (!this.everAllocated[i] && pool[i] !== patternAt(i)) problems.push(this.describe(i, pool[i]!, `pattern ${patternAt(i)}`) + " (never allocated)");
    }
    return problems;
  }

  private describe(i: number, actual: number, want: string): string {
    return `pool byte ${i} (slot ${Math.floor(i / this.slotBytes)} +${i % this.slotBytes}) is ${actual}, model says ${want}`;
  }
}
