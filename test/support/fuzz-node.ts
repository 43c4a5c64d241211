// An in-process decode node for the fuzzers, with a small pool the test can read directly: filled
// with a known pattern at start, so any byte that changes where no write was allowed shows up.
import { startDecodeRole, type DecodeRole } from "../../src/roles/decode-role.js";
import { parseHostPort } from "../../src/roles/host-port.js";
import { silentLogger } from "../../src/observability/logger.js";

export interface FuzzNodeOptions {
  poolSlots: number;
  slotBytes: number;
  leaseMs: number;
  quarantineMs: number;
  holdMs?: number;
  adminToken?: string;
}

export interface FuzzNode {
  node: DecodeRole;
  grpcAddress: string;
  dataPort: number;
  /** The pool as the node sees it (zero-copy). */
  pool(): Buffer;
  /** The byte the pattern put at pool offset `i`. */
  patternAt(i: number): number;
  /** The store invariants, as a problem string or null. */
  invariantProblem(): string | null;
  /** Nothing held by any request (quarantined slots allowed): what the pool returns to after all requests end. */
  atBaseline(): boolean;
  /**
   * Writes `data` into `slot` for `requestId` through the receiver's write gate, as the TCP data
   * plane does (admit, copy, record): an admitted write the store counts towards the Commit's proof.
   */
  writeThroughGate(requestId: string, slot: number, token: Buffer, data: Buffer): void;
  close(): Promise<void>;
}

/** A position-dependent byte, so a write shifted by any offset still differs from what it replaced. */
export function patternByte(i: number): number {
  return (Math.imul(i + 0x9e37, 0x85ebca6b) >>> 23) & 0xff;
}

export async function startFuzzNode(o: FuzzNodeOptions): Promise<FuzzNode> {
  const node = await startDecodeRole({
    listen: parseHostPort("127.0.0.1:0", "listen"),
    dataListen: parseHostPort("127.0.0.1:0", "data"),
    poolSlots: o.poolSlots,
    slotBytes: o.slotBytes,
    leaseMs: o.leaseMs,
    quarantineMs: o.quarantineMs,
    holdMs: o.holdMs,
    transport: "tcp",
    lockMemory: false,
    adminToken: o.adminToken ?? "",
    logger: silentLogger(),
  });
  const pool = node.receiver.memory.bytes;
  for (let i = 0; i < pool.length; i++) pool[i] = patternByte(i);
  const offer = node.receiver.getOffers().find((x) => x.kind === "tcp");
  if (!offer || offer.kind !== "tcp") throw new Error("fuzz node: no TCP data plane");
  return {
    node,
    grpcAddress: node.grpcAddress,
    dataPort: offer.port,
    pool: () => node.receiver.memory.bytes,
    patternAt: patternByte,
    invariantProblem() {
      try {
        node.receiver.checkInvariants();
        return null;
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    },
    atBaseline() {
      const s = node.receiver.stats();
      return s.activeRequests === 0 && s.slotsWriting === 0 && s.slotsReserved === 0 && s.slotsFree + s.slotsReady + s.slotsQuarantined === s.slotsTotal;
    },
    writeThroughGate(requestId, slot, token, data) {
      const gate = node.receiver.admit(requestId, slot, 0, data.length, token);
      if (!gate.ok) throw new Error(`write gate refused ${requestId} slot ${slot}: ${gate.code} ${gate.message}`);
      data.copy(gate.target);
      node.receiver.written(requestId, slot, data.length, 0);
    },
    close: () => node.close(),
  };
}

/** Flags for a `kvbridge decode --no-engine` process (startDecodeProcess) shaped like an in-process fuzz node. */
export function decodeProcessArgs(o: FuzzNodeOptions): string[] {
  const args = ["--pool-slots", String(o.poolSlots), "--slot-bytes", String(o.slotBytes), "--lease-ms", String(o.leaseMs), "--quarantine-ms", String(o.quarantineMs)];
  if (o.holdMs !== undefined) args.push("--hold-ms", String(o.holdMs));
  if (o.adminToken) args.push("--admin-token", o.adminToken);
  return [...args, "--transport", "tcp", "--lock-memory", "false"];
}
