// The TCP data plane's wire format, byte by byte as docs/protocol.md states it, and the receiver's
// frame reader fed in arbitrary pieces (no sockets).

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocateHeapPool } from "../../src/memory/pool-memory.js";
import {
  FrameType,
  MAX_REPLY_MESSAGE_BYTES,
  ReplyDecoder,
  decodeWriteHeader,
  encodeReply,
  encodeRequestId,
  encodeWriteHeader,
  errorCodeFromWire,
  errorCodeToWire,
  type ReplyFrame,
} from "../../src/transport/tcp/tcp-frame.js";
import { WriteFrameReader } from "../../src/transport/tcp/tcp-write-frame-reader.js";
import type { AdmitResult } from "../../src/transport/transport.js";
import { TableWriteGate } from "../support/tcp-gate.js";

describe("WRITE frame header", () => {
  it("has the documented layout", () => {
    const token = Buffer.from("0102030405060708", "hex");
    const h = encodeWriteHeader(Buffer.from("req-é"), 0x01020304, 7, 0x10000, 300_001, token);
    const expected = Buffer.concat([
      Buffer.from("4b564254", "hex"), // "KVBT"
      Buffer.from([1, 1]), // version 1, type WRITE
      Buffer.from([6, 0]), // id length 6 (UTF-8 of "req-é")
      Buffer.from([0x04, 0x03, 0x02, 0x01]), // seq, little-endian
      Buffer.from([7, 0, 0, 0]), // slot
      Buffer.from([0, 0, 1, 0]), // offset in slot 0x10000
      Buffer.from([0xe1, 0x93, 0x04, 0x00]), // payload length 300001
      token,
      Buffer.from("req-é", "utf8"),
    ]);
    expect(h.toString("hex")).toBe(expected.toString("hex"));
    const d = decodeWriteHeader(h, 1 << 20);
    expect(d.ok && { ...d.header, token: d.header.token.toString("hex") }).toEqual({
      requestIdBytes: 6,
      seq: 0x01020304,
      slot: 7,
      offsetInSlot: 0x10000,
      payloadBytes: 300_001,
      token: "0102030405060708",
    });
  });

  it("rejects bad magic, version, type, id length and oversize payloads with their reasons", () => {
    const good = encodeWriteHeader(Buffer.from("r"), 0, 0, 0, 100, Buffer.alloc(8));
    const mutate = (write: (b: Buffer) => void): string => {
      const b = Buffer.from(good);
      write(b);
      const d = decodeWriteHeader(b, 99);
      return d.ok ? "ok" : `${d.problem.code}: ${d.problem.message}`;
    };
    expect(mutate((b) => b.write("HTTP", 0, "latin1"))).toMatch(/^INVALID_ARGUMENT: bad frame magic 0x48545450/);
    expect(mutate((b) => b.writeUInt8(2, 4))).toMatch(/^INCOMPATIBLE: TCP data-plane protocol version 2/);
    expect(mutate((b) => b.writeUInt8(2, 5))).toMatch(/^INVALID_ARGUMENT: frame type 2 is not WRITE/);
    expect(mutate((b) => b.writeUInt16LE(0, 6))).toMatch(/request id length 0 is outside 1\.\.256/);
    expect(mutate((b) => b.writeUInt16LE(257, 6))).toMatch(/request id length 257/);
    expect(mutate(() => {})).toMatch(/100 bytes exceeds this receiver's limit of 99/);
  });

  it("bounds request ids to 1..256 UTF-8 bytes", () => {
    expect(encodeRequestId("x".repeat(256)).length).toBe(256);
    expect(() => encodeRequestId("é".repeat(129))).toThrow(/258 UTF-8 bytes/);
    expect(() => encodeRequestId("")).toThrow(/1\.\.256/);
  });
});

describe("replies", () => {
  it("ACK and NACK have the documented layout", () => {
    expect(encodeReply({ type: FrameType.ACK, seq: 258 }).toString("hex")).toBe("4b564254" + "0102" + "0000" + "02010000" + "00" + "000000");
    const nack = encodeReply({ type: FrameType.NACK, seq: 1, code: "PERMISSION_DENIED", message: "no" });
    expect(nack.toString("hex")).toBe("4b564254" + "0103" + "0200" + "01000000" + "09" + "000000" + Buffer.from("no").toString("hex"));
  });

  it("wire error codes are fixed numbers; unknown ones read as INTERNAL", () => {
    expect(errorCodeToWire("INVALID_ARGUMENT")).toBe(1);
    expect(errorCodeToWire("PERMISSION_DENIED")).toBe(9);
    expect(errorCodeToWire("INTERNAL")).toBe(12);
    expect(errorCodeFromWire(10)).toBe("INCOMPATIBLE");
    expect(errorCodeFromWire(200)).toBe("INTERNAL");
  });

  it("long messages are cut at a character boundary within the limit", () => {
    const reply = encodeReply({ type: FrameType.CLOSE, seq: 0, code: "INTERNAL", message: "€".repeat(400) });
    const len = reply.readUInt16LE(6);
    expect(len).toBeLessThanOrEqual(MAX_REPLY_MESSAGE_BYTES);
    expect(len % 3).toBe(0);
    const [decoded] = new ReplyDecoder().push(reply);
    expect(decoded!.type === FrameType.CLOSE && decoded!.message).toBe("€".repeat(len / 3));
  });

  it("the decoder reassembles replies split at any byte", () => {
    const frames: ReplyFrame[] = [
      { type: FrameType.ACK, seq: 1 },
      { type: FrameType.NACK, seq: 2, code: "NOT_FOUND", message: "slot 9 is not allocated" },
      { type: FrameType.ACK, seq: 0xffffffff },
      { type: FrameType.CLOSE, seq: 0, code: "INVALID_ARGUMENT", message: "bye" },
    ];
    const stream = Buffer.concat(frames.map(encodeReply));
    const decoder = new ReplyDecoder();
    const out: ReplyFrame[] = [];
    for (let i = 0; i < stream.length; i++) out.push(...decoder.push(stream.subarray(i, i + 1)));
    expect(out).toEqual(frames);
    expect(() => new ReplyDecoder().push(Buffer.from("HTTP/1.1 200 OK\r\n\r\n"))).toThrow(/bad reply magic/);
  });
});

describe("WriteFrameReader", () => {
  function fixture() {
    const memory = allocateHeapPool({ slots: 4, slotBytes: 1024 });
    const gate = new TableWriteGate(memory);
    const replies: ReplyFrame[] = [];
    const fatal: string[] = [];
    const admitted: string[] = [];
    const decoder = new ReplyDecoder();
    const reader = new WriteFrameReader({
      gate,
      memory,
      maxFrameBytes: 1024,
      sink: {
        reply: (b) => replies.push(...decoder.push(b)),
        fatal: (p) => fatal.push(`${p.code}: ${p.message}`),
        admitted: (id) => admitted.push(id),
        wroteHere: (id) => admitted.includes(id),
      },
    });
    return { memory, gate, reader, replies, fatal, admitted };
  }

  it("places frames identically whatever the read boundaries (copying and zero-copy paths)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 12 }), fc.boolean(), (cuts, zeroCopy) => {
        const { memory, gate, reader, replies, fatal } = fixture();
        const a = Buffer.alloc(1000, 0x11);
        const b = Buffer.alloc(333, 0x22);
        const ta = gate.allocate("a", 0, 1000);
        const tb = gate.allocate("b", 2, 333);
        const stream = Buffer.concat([
          encodeWriteHeader(Buffer.from("a"), 0, 0, 0, 600, ta),
          a.subarray(0, 600),
          encodeWriteHeader(Buffer.from("b"), 1, 2, 0, 333, Buffer.alloc(8)), // refused: wrong token
          b,
          encodeWriteHeader(Buffer.from("b"), 2, 2, 0, 333, tb),
          b,
          encodeWriteHeader(Buffer.from("a"), 3, 0, 600, 400, ta),
          a.subarray(600),
        ]);
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const n = Math.min(cuts[i % cuts.length]!, stream.length - pos);
          if (zeroCopy) {
            // As the socket does with onread: fill exactly what nextBuffer() offers, up to n bytes.
            let left = n;
            while (left > 0) {
              const dst = reader.nextBuffer();
              const k = Math.min(dst.length, left);
              stream.copy(dst, 0, pos, pos + k);
              pos += k;
              left -= k;
              reader.consumed(k);
            }
            reader.flushAck(); // the connection does this once per burst of reads
          } else {
            reader.push(stream.subarray(pos, pos + n));
            pos += n;
          }
        }
        expect(fatal).toEqual([]);
        expect(memory.slotView(0, 1000).equals(a)).toBe(true);
        expect(memory.slotView(2, 333).equals(b)).toBe(true);
        expect(memory.slotView(1).every((x) => x === 0)).toBe(true);
        // ACKs are cumulative and may be coalesced: the NACK for seq 1 and a final ACK for seq 3.
        expect(replies.find((r) => r.type === FrameType.NACK)).toMatchObject({ seq: 1, code: "PERMISSION_DENIED" });
        expect(replies.at(-1)).toEqual({ type: FrameType.ACK, seq: 3 });
        expect(reader.midFrame).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it("a gate that hands out a view outside the pool gets the frame refused as INTERNAL", () => {
    const { memory, gate, reader, replies, admitted } = fixture();
    const token = gate.allocate("r", 1, 10);
    gate.admit = (): AdmitResult => ({ ok: true, target: Buffer.alloc(10) });
    reader.push(Buffer.concat([encodeWriteHeader(Buffer.from("r"), 4, 1, 0, 10, token), Buffer.alloc(10, 0xff)]));
    expect(replies).toEqual([{ type: FrameType.NACK, seq: 4, code: "INTERNAL", message: expect.stringMatching(/outside the pool memory/) }]);
    expect(admitted).toEqual([]);
    expect(memory.bytes.every((x) => x === 0)).toBe(true);
  });

  it("invalid UTF-8 in a request id is fatal", () => {
    const { reader, fatal } = fixture();
    reader.push(encodeWriteHeader(Buffer.from([0xff, 0xfe]), 0, 0, 0, 0, Buffer.alloc(8)));
    expect(fatal).toEqual(["INVALID_ARGUMENT: request id is not valid UTF-8"]);
    expect(reader.dead).toBe(true);
  });
});
