// A gRPC fuzzer for kvbridge nodes, driven by fast-check: field-level hostile messages through the
// contract's serializers, and byte-level mutations of valid encodings with identity serializers, both
// sent by each method's path from the service definitions (the fuzzer sweeps every method of every
// service). After every input it checks that the node still answers Hello and GetStats, that every
// error is a status with a message and (unless justified) a kvbridge code other than INTERNAL, and
// runs the caller's extra check (the store invariants, for an in-process node).
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { CODE_METADATA_KEY } from "../../src/wire/error-status.js";
import type { Stats__Output } from "../../src/wire/generated/kvbridge/v1/Stats.js";
import { InspectClient } from "../../src/wire/inspect-client.js";
import { kvbridgeV1, PROTOCOL_VERSION } from "../../src/wire/proto.js";
import { ReceiverClient } from "../../src/wire/receiver-client.js";
import { ADMIN_TOKEN_METADATA_KEY } from "../../src/services/admin-service.js";
import { drive } from "./fuzz-drive.js";
import { describeInput, type FuzzTally } from "./fuzz-tally.js";
import { hostileBytes, hostileString, hostileUint32, hostileUint64, weighted } from "./fuzz-values.js";

export type FuzzService = "KvReceiver" | "Inspect" | "Admin" | "Decode" | "Prefill";

export interface RpcInput {
  service: FuzzService;
  method: string;
  request: Record<string, unknown>;
  /** Sent as the admin token metadata entry when set. */
  adminToken?: string;
}

export interface RawInput {
  service: FuzzService;
  method: string;
  /** What was mutated (for the finding's example). */
  from: RpcInput;
  mutations: string[];
  bytes: Buffer;
}

/** What the fuzzer learned from the node's Hello, and the names its inputs draw from. */
export interface FuzzContext {
  generation: number;
  fingerprint: string;
  slotsTotal: number;
  slotBytes: number;
  maxKeysPerAlloc: number;
  adminToken?: string;
  /** Request ids and keys most inputs use, so sequences reach deep states (batches, dedup, commits). */
  ids: string[];
  keys: string[];
  /** Decode targets a Prefill input may name: loopback only (the fuzzer never dials out). */
  decodeTargets: string[];
}

export type Outcome =
  | { kind: "ok"; response: unknown }
  | { kind: "status"; code: grpc.status; details: string; kvbridgeCode: string | undefined; clientSide: boolean }
  | { kind: "unsent"; reason: string };

// ------------------------------------------------------------------------------------- generators

function idArb(ctx: FuzzContext): fc.Arbitrary<string> {
  return weighted<string>([8, fc.constantFrom(...ctx.ids)], [2, hostileString({ huge: true })]);
}

function keysArb(ctx: FuzzContext): fc.Arbitrary<string[]> {
  return weighted<string[]>(
    [8, fc.uniqueArray(fc.constantFrom(...ctx.keys), { minLength: 1, maxLength: 5 })],
    [2, fc.array(weighted<string>([3, fc.constantFrom(...ctx.keys)], [2, hostileString()]), { maxLength: 6 })],
    [1, fc.constant([] as string[])],
    [1, fc.integer({ min: ctx.maxKeysPerAlloc - 1, max: ctx.maxKeysPerAlloc + 2 }).map((n) => Array.from({ length: n }, (_, i) => `${ctx.ids[0]}-many-${i}`))],
  );
}

function allocArb(ctx: FuzzContext): fc.Arbitrary<Record<string, unknown>> {
  const validSize = fc.integer({ min: 1, max: ctx.slotBytes });
  return keysArb(ctx).chain((keys) =>
    fc.record({
      requestId: idArb(ctx),
      keys: fc.constant(keys),
      // Mostly one valid size per key (the path that allocates); sometimes hostile or mismatched arrays.
      sizes: weighted<number[]>(
        [8, fc.array(validSize, { minLength: keys.length, maxLength: keys.length })],
        [1, fc.array(hostileUint64(validSize), { minLength: keys.length, maxLength: keys.length })],
        [1, fc.array(hostileUint64(validSize), { maxLength: 6 })],
      ),
      batchSeq: weighted<number>([7, fc.constant(0)], [2, fc.nat({ max: 3 })], [1, hostileUint32()]),
      totalChunks: weighted<number>([6, fc.constant(0)], [3, fc.nat({ max: 4 }).map((n) => keys.length + n)], [1, hostileUint32()]),
      isLastBatch: fc.boolean(),
      fingerprint: weighted<string>([9, fc.constant(ctx.fingerprint)], [1, hostileString()]),
      generation: weighted<number>([7, fc.constant(ctx.generation)], [1, fc.constant(0)], [2, hostileUint64()]),
    }),
  );
}

function tokenArb(ctx: FuzzContext): fc.Arbitrary<string | undefined> {
  const wrong = weighted<string>([4, fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 })], [1, fc.string({ unit: "binary", maxLength: 8 })], [1, fc.constant("t".repeat(10_000))]);
  return ctx.adminToken
    ? weighted<string | undefined>([5, fc.constant(ctx.adminToken)], [1, fc.constant(undefined)], [3, wrong])
    : weighted<string | undefined>([5, fc.constant(undefined)], [2, wrong]);
}

function rpc(service: FuzzService, method: string, request: fc.Arbitrary<Record<string, unknown>>, token?: fc.Arbitrary<string | undefined>): fc.Arbitrary<RpcInput> {
  if (!token) return request.map((r) => ({ service, method, request: r }));
  return fc.tuple(request, token).map(([r, t]) => (t === undefined ? { service, method, request: r } : { service, method, request: r, adminToken: t }));
}

/** Field-level inputs for every RPC of the given services, weighted towards the stateful ones. */
export function rpcInputArb(ctx: FuzzContext, services: readonly FuzzService[]): fc.Arbitrary<RpcInput> {
  const id = idArb(ctx);
  const choices: Array<[number, fc.Arbitrary<RpcInput>]> = [];
  if (services.includes("KvReceiver")) {
    choices.push(
      [
        6,
        rpc(
          "KvReceiver",
          "Hello",
          fc.record({
            protocolVersion: weighted<number>([6, fc.constant(PROTOCOL_VERSION)], [2, hostileUint32()]),
            fingerprint: weighted<string>([6, fc.constant(ctx.fingerprint)], [2, hostileString({ huge: true })]),
            transports: fc.array(weighted<string>([4, fc.constantFrom("tcp", "ucx")], [1, hostileString()]), { maxLength: 4 }),
            senderId: hostileString({ huge: true }),
          }),
        ),
      ],
      [30, rpc("KvReceiver", "Alloc", allocArb(ctx))],
      [8, rpc("KvReceiver", "Commit", fc.record({ requestId: id }))],
      [8, rpc("KvReceiver", "Abort", fc.record({ requestId: id, reason: hostileString({ huge: true }) }))],
      [5, rpc("KvReceiver", "Renew", fc.record({ requestId: id }))],
      [4, rpc("KvReceiver", "AwaitReady", fc.record({ requestId: id, timeoutMs: weighted<number>([12, fc.integer({ min: 1, max: 20 })], [1, hostileUint32()]) }))],
      [5, rpc("KvReceiver", "Release", fc.record({ requestId: id }))],
    );
  }
  if (services.includes("Inspect")) {
    choices.push(
      [3, rpc("Inspect", "GetStats", fc.constant({}))],
      [
        5,
        rpc(
          "Inspect",
          "ListEntries",
          fc.record({
            state: weighted<string>([4, fc.constantFrom("", "writing", "ready", "failed")], [1, hostileString({ huge: true })]),
            pinnedOnly: fc.boolean(),
            prefix: weighted<string>([3, fc.constantFrom("", ctx.keys[0]!.slice(0, 4), ctx.keys[1]!)], [1, hostileString({ huge: true })]),
            limit: hostileUint32(),
          }),
        ),
      ],
      [3, rpc("Inspect", "ListRequests", fc.constant({}))],
      [
        5,
        rpc(
          "Inspect",
          "ChecksumKeys",
          fc.record({
            keys: weighted<string[]>(
              [6, fc.array(fc.constantFrom(...ctx.keys), { maxLength: 6 })],
              [2, fc.array(hostileString(), { maxLength: 6 })],
              [1, fc.integer({ min: 65_535, max: 65_538 }).map((n) => new Array<string>(n).fill(ctx.keys[0]!))],
            ),
          }),
        ),
      ],
    );
  }
  if (services.includes("Admin")) {
    const token = tokenArb(ctx);
    choices.push(
      [
        5,
        rpc(
          "Admin",
          "Evict",
          fc.record({ key: weighted<string>([4, fc.constantFrom(...ctx.keys)], [2, fc.constant("")], [2, hostileString({ huge: true })]), allUnpinned: fc.boolean() }),
          token,
        ),
      ],
      [6, rpc("Admin", "AbortRequest", fc.record({ requestId: id, reason: hostileString({ huge: true }) }), token)],
    );
  }
  if (services.includes("Decode")) {
    choices.push(
      [4, rpc("Decode", "MatchPrefix", fc.record({ keys: weighted<string[]>([4, fc.array(fc.constantFrom(...ctx.keys), { maxLength: 8 })], [1, fc.array(hostileString(), { maxLength: 8 })]) }))],
      [
        4,
        rpc(
          "Decode",
          "Generate",
          fc.record({
            requestId: id,
            prompt: weighted<string>([4, fc.constantFrom("kv cache prefill decode", "the model prompt is", "a")], [2, hostileString({ huge: true })]),
            maxTokens: weighted<number>([6, fc.integer({ min: 1, max: 4 })], [2, hostileUint32()]),
            stop: fc.array(hostileString(), { maxLength: 3 }),
            kvWaitMs: weighted<number>([6, fc.integer({ min: 1, max: 50 })], [1, hostileUint32()]),
          }),
        ),
      ],
    );
  }
  if (services.includes("Prefill")) {
    const target = weighted<string>([6, fc.constantFrom(...ctx.decodeTargets)], [2, fc.constantFrom("", ":", "127.0.0.1", "127.0.0.1:99999", "[::1]:x", "unix:/nonexistent/kvbridge.sock", "127.0.0.1:-1")]);
    const prompt = weighted<string>([4, fc.constantFrom("kv cache prefill decode", "the model prompt is", "a")], [2, hostileString({ huge: true })]);
    choices.push(
      [3, rpc("Prefill", "Plan", fc.record({ prompt }))],
      [3, rpc("Prefill", "Prefill", fc.record({ requestId: id, prompt, decodeTarget: target }))],
    );
  }
  if (choices.length === 0) throw new Error("rpcInputArb: no service to fuzz");
  return weighted(...choices);
}

// ---------------------------------------------------------------------------------- byte mutation

type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; length: number }
  | { op: "truncate"; at: number }
  | { op: "duplicate"; at: number; length: number }
  | { op: "field"; field: number; wireType: number; body: Uint8Array; lieAboutLength: boolean }
  | { op: "huge-length"; at: number }
  | { op: "replace"; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = weighted<Mutation>(
  [4, fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat({ max: 7 }) })],
  [3, fc.record({ op: fc.constant("set" as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x1a, 0x22) })],
  [2, fc.record({ op: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) })],
  [2, fc.record({ op: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) })],
  [2, fc.record({ op: fc.constant("truncate" as const), at: fc.nat() })],
  [1, fc.record({ op: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) })],
  [3, fc.record({ op: fc.constant("field" as const), field: weighted<number>([3, fc.integer({ min: 1, max: 9 })], [1, fc.integer({ min: 10, max: 536_870_911 })]), wireType: fc.nat({ max: 7 }), body: hostileBytes(24), lieAboutLength: fc.boolean() })],
  [1, fc.record({ op: fc.constant("huge-length" as const), at: fc.nat() })],
  [1, fc.record({ op: fc.constant("replace" as const), bytes: hostileBytes(48) })],
);

function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function applyMutation(buf: Buffer, m: Mutation): Buffer {
  const at = (n: number): number => (buf.length === 0 ? 0 : n % (buf.length + 1));
  switch (m.op) {
    case "flip": {
      if (buf.length === 0) return buf;
      const out = Buffer.from(buf);
      out[m.at % out.length]! ^= 1 << m.bit;
      return out;
    }
    case "set": {
      if (buf.length === 0) return Buffer.from([m.value]);
      const out = Buffer.from(buf);
      out[m.at % out.length] = m.value;
      return out;
    }
    case "insert":
      return Buffer.concat([buf.subarray(0, at(m.at)), m.bytes, buf.subarray(at(m.at))]);
    case "delete":
      return Buffer.concat([buf.subarray(0, at(m.at)), buf.subarray(at(m.at) + m.length)]);
    case "truncate":
      return buf.subarray(0, at(m.at));
    case "duplicate": {
      const s = at(m.at);
      return Buffer.concat([buf, buf.subarray(s, s + m.length)]);
    }
    case "field": {
      const tag = varint((BigInt(m.field) << 3n) | BigInt(m.wireType));
      let body: Buffer;
      switch (m.wireType) {
        case 0:
          body = m.body.length > 0 ? Buffer.from(m.body.map((b, i) => (i < m.body.length - 1 ? b | 0x80 : b & 0x7f))) : Buffer.from([0]);
          break;
        case 1:
          body = Buffer.from(m.body.subarray(0, 8));
          break;
        case 2:
          body = Buffer.concat([varint(m.lieAboutLength ? m.body.length + 1 + (m.body[0] ?? 0) * 1000 : m.body.length), m.body]);
          break;
        case 5:
          body = Buffer.from(m.body.subarray(0, 4));
          break;
        default:
          body = Buffer.from(m.body.subarray(0, 2)); // groups (3, 4) and the invalid wire types 6, 7
      }
      return Buffer.concat([buf, tag, body]);
    }
    case "huge-length": {
      // A length-delimited field claiming 2^32 bytes, in the middle of the message.
      const s = at(m.at);
      return Buffer.concat([buf.subarray(0, s), Buffer.from([0x12]), varint(2 ** 32), buf.subarray(s)]);
    }
    case "replace":
      return Buffer.from(m.bytes);
  }
}

export function rawInputArb(ctx: FuzzContext, services: readonly FuzzService[]): fc.Arbitrary<RawInput | null> {
  return fc.tuple(rpcInputArb(ctx, services), fc.array(mutationArb, { minLength: 1, maxLength: 6 })).map(([from, mutations]) => {
    const def = methodDefinition(from.service, from.method);
    let bytes: Buffer;
    try {
      bytes = def.requestSerialize(from.request);
    } catch {
      return null; // a request protobufjs cannot even encode has no valid encoding to mutate
    }
    for (const m of mutations) bytes = applyMutation(bytes, m);
    return { service: from.service, method: from.method, from, mutations: mutations.map((m) => describeInput(m)), bytes };
  });
}

// ------------------------------------------------------------------------------------- transport

/** The contract's definition of each service the fuzzer can reach (paths and serializers of every method). */
function serviceDefinition(service: FuzzService): grpc.ServiceDefinition {
  const v1 = kvbridgeV1();
  const defs: Record<FuzzService, grpc.ServiceDefinition> = {
    KvReceiver: v1.KvReceiver.service,
    Inspect: v1.Inspect.service,
    Admin: v1.Admin.service,
    Decode: v1.Decode.service,
    Prefill: v1.Prefill.service,
  };
  return defs[service];
}

/** How one method is sent: its path, its (de)serializers, and whether the answer is a stream. */
type Wire<Req> = Pick<grpc.MethodDefinition<Req, unknown>, "path" | "requestSerialize" | "responseDeserialize" | "responseStream">;

function methodDefinition(service: FuzzService, method: string): grpc.MethodDefinition<object, object> {
  const def = serviceDefinition(service)[method];
  if (!def) throw new Error(`no method ${service}.${method}`);
  return def;
}

const identity = (b: Buffer): Buffer => b;

/** `method` of `service` sent and answered as raw bytes (the identity serializer). */
function rawWire(service: FuzzService, method: string): Wire<Buffer> {
  const def = methodDefinition(service, method);
  return { path: def.path, responseStream: def.responseStream, requestSerialize: identity, responseDeserialize: identity };
}

function statusOf(err: grpc.ServiceError): Outcome {
  const carried = err.metadata?.get(CODE_METADATA_KEY)[0];
  const details = err.details ?? "";
  // grpc-js answers locally (never reaching the server) for an unencodable request or our own deadline.
  if (/^Request message serialization failure/.test(details)) return { kind: "unsent", reason: details };
  const clientSide = err.code === grpc.status.DEADLINE_EXCEEDED && carried === undefined;
  return { kind: "status", code: err.code, details, kvbridgeCode: typeof carried === "string" ? carried : undefined, clientSide };
}

/**
 * Sends one request of a method named by the contract's definition (the fuzzer sweeps every method,
 * so it goes through grpc-js' generic calls rather than a typed client's).
 */
function invoke<Req>(client: grpc.Client, wire: Wire<Req>, request: Req, md: grpc.Metadata, deadlineMs: number): Promise<Outcome> {
  return new Promise<Outcome>((resolve) => {
    const opts: grpc.CallOptions = { deadline: Date.now() + deadlineMs };
    try {
      if (wire.responseStream) {
        const stream = client.makeServerStreamRequest(wire.path, wire.requestSerialize, wire.responseDeserialize, request, md, opts);
        const events: unknown[] = [];
        stream.on("data", (e: unknown) => events.push(e));
        stream.on("error", (err: grpc.ServiceError) => resolve(statusOf(err)));
        stream.on("end", () => resolve({ kind: "ok", response: events }));
        return;
      }
      client.makeUnaryRequest(wire.path, wire.requestSerialize, wire.responseDeserialize, request, md, opts, (err, res) =>
        resolve(err ? statusOf(err) : { kind: "ok", response: res }),
      );
    } catch (err) {
      resolve({ kind: "unsent", reason: err instanceof Error ? err.message : String(err) });
    }
  });
}

// ------------------------------------------------------------------------------------------ judge

/** How long a call may take before the fuzzer calls it a hang. Waits that the input asked for are longer. */
export interface Deadlines {
  unaryMs: number;
  /** AwaitReady with a hostile timeout, Generate and Prefill do real (bounded) waiting. */
  waitingMs: number;
}

const WAITING_METHODS = new Set(["AwaitReady", "Generate", "Prefill"]);

/** Why an outcome breaks the fuzz contract, or null. `raw`: the bytes were mutated (undecodable is fine). */
export function judge(input: { service: FuzzService; method: string; request?: Record<string, unknown> }, outcome: Outcome, ctx: FuzzContext, raw: boolean): string | null {
  if (outcome.kind === "unsent") return null;
  if (outcome.kind === "ok") return raw ? null : checkResponse(input.method, input.request ?? {}, outcome.response, ctx);
  const { code, details, kvbridgeCode, clientSide } = outcome;
  const name = grpc.status[code] ?? String(code);
  if (clientSide) {
    // Our own deadline: only a call that was asked to wait may run into it.
    return WAITING_METHODS.has(input.method) ? null : `${input.method}: no answer before the client deadline (hang)`;
  }
  if (details.trim() === "") return `${input.method}: ${name} with an empty message`;
  if (code === grpc.status.UNKNOWN) return `${input.method}: UNKNOWN status: ${details}`;
  if (kvbridgeCode === undefined) {
    // Answers grpc-js gives before any kvbridge code runs, for bytes that are not a valid message.
    if (raw && code === grpc.status.INTERNAL && details.startsWith("Error deserializing request")) return null;
    if (code === grpc.status.CANCELLED || code === grpc.status.RESOURCE_EXHAUSTED) return null;
    return `${input.method}: ${name} without a kvbridge code (not from kvbridge's error mapping): ${details}`;
  }
  if (kvbridgeCode === "INTERNAL" || code === grpc.status.INTERNAL) return `${input.method}: INTERNAL from kvbridge: ${details}`;
  return null;
}

function checkResponse(method: string, req: Record<string, unknown>, res: unknown, ctx: FuzzContext): string | null {
  const r = res as Record<string, unknown>;
  switch (method) {
    case "Alloc": {
      const keys = (req.keys as string[] | undefined) ?? [];
      const remote = r.remoteIndexes as number[];
      const sent = r.alreadySentIndexes as number[];
      const tokens = r.writeTokens as Buffer[];
      if (remote.length + sent.length !== keys.length) return `Alloc OK answers ${remote.length}+${sent.length} positions for ${keys.length} keys`;
      if (tokens.length !== remote.length || tokens.some((t) => t.length !== 8)) return "Alloc OK with write tokens that are not one 8-byte token per slot";
      if (remote.some((s) => !Number.isInteger(s) || s < 0 || s >= ctx.slotsTotal)) return `Alloc OK with a slot outside 0..${ctx.slotsTotal - 1}`;
      if (new Set(remote).size !== remote.length) return "Alloc OK hands out one slot twice";
      return null;
    }
    case "AwaitReady": {
      const keys = r.keys as string[];
      const states = r.states as string[];
      if (keys.length !== states.length) return "AwaitReady OK with keys and states of different lengths";
      return null;
    }
    case "ListEntries": {
      const limit = Number(req.limit);
      const entries = r.entries as unknown[];
      if (Number.isInteger(limit) && limit > 0 && limit < 2 ** 32 && entries.length > limit) return `ListEntries returned ${entries.length} entries for limit ${limit}`;
      return null;
    }
    case "ChecksumKeys": {
      const keys = (req.keys as string[] | undefined) ?? [];
      const sums = r.checksums as unknown[];
      return sums.length === keys.length ? null : `ChecksumKeys answered ${sums.length} checksums for ${keys.length} keys`;
    }
    default:
      return null;
  }
}

// ----------------------------------------------------------------------------------------- runner

export interface GrpcFuzzOptions {
  /** host:port per service; KvReceiver and Inspect are required (the liveness probe uses them). */
  targets: Partial<Record<FuzzService, string>>;
  services: readonly FuzzService[];
  tally: FuzzTally;
  /** Prefix of the request ids and keys this fuzzer uses (distinct per run on a shared node). */
  namePrefix: string;
  adminToken?: string;
  deadlines?: Partial<Deadlines>;
  /** Extra check after every input (e.g. the store invariants); returns a problem or null. */
  afterInput?: () => string | null;
}

export class GrpcFuzzer {
  readonly ctx: FuzzContext;
  private readonly opts: GrpcFuzzOptions;
  private readonly deadlines: Deadlines;
  /** One channel per service target; field-level and raw inputs differ only in their serializers. */
  private readonly clients = new Map<FuzzService, grpc.Client>();
  private dead: string | null = null;

  private constructor(opts: GrpcFuzzOptions, ctx: FuzzContext) {
    this.opts = opts;
    this.ctx = ctx;
    this.deadlines = { unaryMs: 5_000, waitingMs: 400, ...opts.deadlines };
    for (const s of new Set<FuzzService>([...opts.services, "KvReceiver", "Inspect"])) {
      const target = opts.targets[s];
      if (!target) throw new Error(`GrpcFuzzer: no target for ${s}`);
      this.clients.set(s, new grpc.Client(target, grpc.credentials.createInsecure()));
    }
  }

  /** Handshakes with the node to learn its generation, fingerprint and pool shape. */
  static async open(opts: GrpcFuzzOptions, fingerprint = ""): Promise<GrpcFuzzer> {
    const probe = new ReceiverClient(opts.targets.KvReceiver!);
    try {
      const hello = await probe.hello({ protocolVersion: PROTOCOL_VERSION, fingerprint }, { timeoutMs: 10_000 });
      const p = opts.namePrefix;
      const ctx: FuzzContext = {
        generation: hello.generation,
        fingerprint,
        slotsTotal: hello.slotsTotal,
        slotBytes: hello.slotBytes,
        maxKeysPerAlloc: hello.maxKeysPerAlloc,
        adminToken: opts.adminToken,
        ids: Array.from({ length: 8 }, (_, i) => `${p}-r${i}`),
        keys: Array.from({ length: 12 }, (_, i) => `${p}-k${i}`),
        decodeTargets: opts.targets.Decode ? [opts.targets.Decode, opts.targets.KvReceiver!, "127.0.0.1:1"] : [opts.targets.KvReceiver!, "127.0.0.1:1"],
      };
      return new GrpcFuzzer(opts, ctx);
    } finally {
      probe.close();
    }
  }

  /** Set once the node stopped answering the liveness probe; no input runs after that. */
  get deadReason(): string | null {
    return this.dead;
  }

  /** Sends one field-level input through the normal client and judges it. */
  async sendField(input: RpcInput): Promise<void> {
    const t0 = performance.now();
    const md = new grpc.Metadata();
    let outcome: Outcome;
    try {
      if (input.adminToken !== undefined) md.set(ADMIN_TOKEN_METADATA_KEY, input.adminToken);
      outcome = await invoke(this.clients.get(input.service)!, methodDefinition(input.service, input.method), input.request, md, this.deadlineFor(input));
    } catch (err) {
      outcome = { kind: "unsent", reason: err instanceof Error ? err.message : String(err) };
    }
    await this.settle(`${input.service}.${input.method}`, input, outcome, false, () => describeInput(input));
    this.opts.tally.latency(performance.now() - t0, () => describeInput(input));
  }

  /** Sends one mutated encoding through the raw client and judges it. */
  async sendRaw(input: RawInput): Promise<void> {
    const t0 = performance.now();
    const outcome = await invoke(this.clients.get(input.service)!, rawWire(input.service, input.method), input.bytes, new grpc.Metadata(), this.deadlineFor(input.from));
    await this.settle(`raw ${input.service}.${input.method}`, input, outcome, true, () => describeInput({ method: input.method, mutations: input.mutations, bytes: input.bytes, from: input.from }));
    this.opts.tally.latency(performance.now() - t0, () => `raw ${describeInput(input.from)}`);
  }

  /** Runs `count` field-level inputs (fast-check drives generation from `seed`). */
  async runFieldLevel(count: number, seed: number, timeLimitMs?: number): Promise<void> {
    await this.run(rpcInputArb(this.ctx, this.opts.services), (i) => this.sendField(i), count, seed, timeLimitMs);
  }

  /** Runs `count` byte-level inputs: valid encodings of every RPC, mutated. */
  async runRawBytes(count: number, seed: number, timeLimitMs?: number): Promise<void> {
    await this.run(rawInputArb(this.ctx, this.opts.services), async (i) => (i ? this.sendRaw(i) : undefined), count, seed, timeLimitMs);
  }

  /**
   * Ends every request on the node (Abort releases writes and pins of any phase), then waits, at most
   * `timeoutMs`, for nothing to be held: no request, writing slot, reservation or quarantine. Requests
   * whose hostile ids cannot be named back are left to their lease. Returns the last stats.
   */
  async releaseEverything(timeoutMs: number): Promise<Partial<Stats__Output>> {
    const inspect = new InspectClient(this.opts.targets.Inspect!);
    const receiver = new ReceiverClient(this.opts.targets.KvReceiver!);
    const opts = { timeoutMs: this.deadlines.unaryMs };
    const deadline = Date.now() + timeoutMs;
    let stats: Partial<Stats__Output> = {};
    try {
      for (;;) {
        const listed = await inspect.listRequests({}, opts).catch(() => undefined);
        for (const r of listed?.requests ?? []) {
          await receiver.abort({ requestId: r.requestId, reason: "fuzz cleanup" }, opts).catch(() => undefined);
        }
        stats = (await inspect.getStats({}, opts).catch(() => undefined)) ?? stats;
        const idle = stats.activeRequests === 0 && stats.slotsWriting === 0 && stats.slotsReserved === 0 && stats.slotsQuarantined === 0;
        if (idle || Date.now() > deadline) return stats;
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      inspect.close();
      receiver.close();
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }

  private deadlineFor(input: RpcInput): number {
    return WAITING_METHODS.has(input.method) ? this.deadlines.waitingMs : this.deadlines.unaryMs;
  }

  private async run<T>(arb: fc.Arbitrary<T>, send: (input: T) => Promise<void>, count: number, seed: number, timeLimitMs?: number): Promise<void> {
    await drive(arb, count, seed, send, { timeLimitMs, stop: () => this.dead !== null });
  }

  private async settle(category: string, input: { service: FuzzService; method: string; request?: Record<string, unknown> }, outcome: Outcome, raw: boolean, example: () => string): Promise<void> {
    const { tally } = this.opts;
    tally.inputs++;
    // kvbridge's own code where it answered; "grpc:" for statuses grpc-js gave (undecodable bytes, deadlines).
    const label =
      outcome.kind === "ok" ? "OK" : outcome.kind === "unsent" ? "UNSENT" : (outcome.kvbridgeCode ?? `grpc:${grpc.status[outcome.code] ?? outcome.code}`) + (outcome.clientSide ? "(client)" : "");
    tally.count(category, label);
    const problem = judge(input, outcome, this.ctx, raw);
    if (problem) tally.finding(problem, `${example()} -> ${describeInput(outcome)}`);
    const after = this.opts.afterInput?.();
    if (after) tally.finding(after, `after ${example()} -> ${describeInput(outcome)}`);
    const alive = await this.probe();
    if (alive) {
      this.dead = alive;
      tally.finding(`node stopped answering: ${alive}`, example());
    }
  }

  /** Hello + GetStats must both answer OK; returns what went wrong, or null. */
  private async probe(): Promise<string | null> {
    const md = (): grpc.Metadata => new grpc.Metadata();
    const [hello, stats] = await Promise.all([
      invoke(this.clients.get("KvReceiver")!, methodDefinition("KvReceiver", "Hello"), { protocolVersion: PROTOCOL_VERSION, fingerprint: this.ctx.fingerprint }, md(), this.deadlines.unaryMs),
      invoke(this.clients.get("Inspect")!, methodDefinition("Inspect", "GetStats"), {}, md(), this.deadlines.unaryMs),
    ]);
    if (hello.kind !== "ok") return `Hello -> ${describeInput(hello)}`;
    if (stats.kind !== "ok") return `GetStats -> ${describeInput(stats)}`;
    if ((hello.response as { generation: number }).generation !== this.ctx.generation) return "the node restarted (new generation)";
    return null;
  }
}
