// A receiver's pool as shared memory maps it into this sender (ucp_rkey_ptr): writes are plain
// copies into it. Views are made once per 1 GiB window, not per write (a koffi view per write is an
// external ArrayBuffer V8 accounts and collects: measurable GC time at 1 MiB writes), and are bounded
// by the mapping's end from /proc/self/maps, so an offset outside the pool is an error, not a fault.
// On connect the mapping is pre-faulted in the background (MADV_POPULATE_WRITE on libuv's thread
// pool, 64 MiB per call), so the first write to each page does not take a page fault on the main
// thread (see docs/ucx.md: the first pass over a fresh mapping runs at a fraction of memcpy speed).
import { readFileSync } from "node:fs";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { loadKoffi } from "../../../native-bindings/koffi/load-koffi.js";
import type { UcxLibrary } from "../../../native-bindings/ucx/ucx-library.js";

const WINDOW = 1 << 30;
/** One madvise call populates at most this much, so a thread-pool thread is never held for long. */
const PREFAULT_STEP = 64 << 20;
/** <sys/mman.h>, Linux 5.14+: fault every page in writable without writing it. */
const MADV_POPULATE_WRITE = 23;

type MadviseAsync = (addr: bigint, length: number, advice: number, cb: (err: unknown, rc: number) => void) => void;
let madviseAsync: MadviseAsync | null | undefined;

function boundMadvise(): MadviseAsync | null {
  if (madviseAsync !== undefined) return madviseAsync;
  madviseAsync = null;
  const k = loadKoffi();
  if (k.ok && process.platform === "linux") {
    try {
      const fn = k.koffi.load("libc.so.6").func("madvise", "int", ["void *", "size_t", "int"]);
      madviseAsync = (addr, length, advice, cb) => fn.async(addr, length, advice, cb);
    } catch {
      madviseAsync = null;
    }
  }
  return madviseAsync;
}

/** Bytes from `address` to the end of the mapping holding it, from /proc/self/maps; null when unknown. */
export function mappingBytesFrom(address: bigint): number | null {
  let text: string;
  try {
    text = readFileSync("/proc/self/maps", "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s/.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    if (address >= start && address < end) return Number(end - address);
  }
  return null;
}

export interface PrefaultProgress {
  /** Bytes populated so far from the mapped base. */
  bytes: number;
  /** True once the whole mapping was populated, or prefaulting stopped (unsupported, closed). */
  done: boolean;
}

export class MappedTarget {
  /** Where the receiver's pool base is mapped in this process. */
  readonly local: bigint;
  /** Mapped bytes from `local` (the pool and whatever follows it in the segment); null when unknown. */
  readonly length: number | null;
  readonly prefault: PrefaultProgress = { bytes: 0, done: false };
  private readonly ucx: UcxLibrary;
  private readonly windows: Buffer[] = [];
  private closed = false;
  /** The madvise call on the thread pool, if any: the mapping must outlive it. */
  private inflight: Promise<void> | null = null;

  private readonly windowBytes: number;

  /** `windowBytes` (default 1 GiB) is how much one view covers; smaller only in tests. */
  constructor(ucx: UcxLibrary, local: bigint, length: number | null = mappingBytesFrom(local), windowBytes = WINDOW) {
    this.ucx = ucx;
    this.local = local;
    this.length = length;
    this.windowBytes = windowBytes;
  }

  /** Copies `data` to `offset` from the pool's base; throws INVALID_ARGUMENT outside the mapping. */
  copyIn(data: Uint8Array, offset: number): void {
    const len = data.length;
    if (len === 0) return;
    if (this.closed) throw new KvbridgeError("FAILED_PRECONDITION", "the receiver's mapped pool was released; connect again");
    if (this.length !== null && offset + len > this.length) {
      throw new KvbridgeError("INVALID_ARGUMENT", `a write of ${len} bytes at pool offset ${offset} ends past the receiver's mapped pool (${this.length} bytes)`);
    }
    let done = 0;
    while (done < len) {
      const at = offset + done;
      const w = Math.floor(at / this.windowBytes);
      const inWindow = at - w * this.windowBytes;
      const n = Math.min(len - done, this.windowBytes - inWindow);
      const view = this.windows[w] ?? this.window(w);
      view.set(done === 0 && n === len ? data : data.subarray(done, done + n), inWindow);
      done += n;
    }
  }

  private window(w: number): Buffer {
    const start = w * this.windowBytes;
    const size = this.length === null ? this.windowBytes : Math.min(this.windowBytes, this.length - start);
    const view = this.ucx.view(this.local + BigInt(start), size);
    this.windows[w] = view;
    return view;
  }

  /**
   * Populates the mapping's page tables writable in the background, 64 MiB per thread-pool call,
   * never touching the bytes (the receiver's data stays as it is). Stops at close, on the first
   * refusal (kernels before 5.14) or when the mapping's length is unknown.
   */
  startPrefault(): void {
    const madvise = boundMadvise();
    if (madvise === null || this.length === null) {
      this.prefault.done = true;
      return;
    }
    const total = this.length;
    const step = (): void => {
      if (this.closed || this.prefault.bytes >= total) {
        this.prefault.done = true;
        return;
      }
      const n = Math.min(PREFAULT_STEP, total - this.prefault.bytes);
      this.inflight = new Promise<void>((resolve) => {
        madvise(this.local + BigInt(this.prefault.bytes), n, MADV_POPULATE_WRITE, (err, rc) => {
          this.inflight = null;
          resolve();
          if (err || rc !== 0) {
            this.prefault.done = true;
            return;
          }
          this.prefault.bytes += n;
          step();
        });
      });
    };
    step();
  }

  /**
   * Drops the views and stops prefaulting. Resolves once no madvise call is running on the mapping
   * (at most one 64 MiB step): only then may the rkey, and with it the mapping, go.
   */
  close(): Promise<void> {
    this.closed = true;
    this.windows.length = 0;
    return this.inflight ?? Promise.resolve();
  }
}
