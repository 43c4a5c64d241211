// Watching a worker's event fd from Node's own event loop (libuv poll through koffi): no thread,
// no CPU while nothing happens. Used with ucp_worker_arm: arm, then sleep until readable.
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { loadKoffi } from "../../../native-bindings/koffi/load-koffi.js";
import type { UcxWorker } from "./ucx-worker.js";

/** The part of koffi's libuv poll handle we use (koffi's typings describe it only partly). */
interface PollHandle {
  close(): void;
  unref(): void;
  ref(): void;
}
type PollFn = (fd: number, opts: { readable: boolean }, cb: (status: number) => void) => PollHandle;

export interface EventFdWatch {
  /** Whether the watch keeps the process alive (it does not by default). */
  ref(): void;
  unref(): void;
  /** Idempotent. */
  close(): void;
}

/**
 * Calls `onReadable` whenever the worker's event fd is readable (level-triggered: on every loop
 * turn while it stays readable). Throws UNAVAILABLE when koffi cannot poll fds.
 */
export function watchEventFd(worker: UcxWorker, onReadable: () => void): EventFdWatch {
  const k = loadKoffi();
  if (!k.ok) throw new KvbridgeError("UNAVAILABLE", k.reason);
  const poll = (k.koffi as unknown as { node?: { poll?: PollFn } }).node?.poll;
  if (typeof poll !== "function") {
    throw new KvbridgeError("UNAVAILABLE", "this koffi has no node.poll (libuv fd polling); kvbridge needs koffi >= 3.2");
  }
  // Held in the closure below: koffi closes the libuv handle when its JS object is collected.
  let handle: PollHandle | null = poll(worker.eventFd(), { readable: true }, () => onReadable());
  handle.unref();
  return {
    ref: () => handle?.ref(),
    unref: () => handle?.unref(),
    close: () => {
      handle?.close();
      handle = null;
    },
  };
}
