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
