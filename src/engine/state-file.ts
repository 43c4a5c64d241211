// Moving a context sequence's KV state in and out of JavaScript memory. node-llama-cpp exposes
// sequence state only as files (llama_state_seq_save_file / _load_file), so the bytes pass
// through a file in /dev/shm (RAM-backed on Linux: no disk I/O), removed at once after use.
// Only the llama.cpp call runs as the lease's exclusive operation (it takes the context's lock);
// writing and reading the file happen while the context's other sequences go on decoding. A state
// to load can be written from pieces (views of the chunks, sequence-state-pieces.ts) with writev
// in the thread pool, so the event loop never copies the whole state (writeStateFile).

import { randomBytes } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { open, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { LlamaContextSequence } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { runDirectly, type Exclusive } from "./exclusive-gate.js";
import type { KvStateLayout, StatePart } from "./kv-state-layout.js";
import { GatherBlocks, sequenceStatePieces } from "./sequence-state-pieces.js";
import { writeVectored } from "./vectored-write.js";

let stateDir: string | null = null;

function scratchDir(): string {
  if (stateDir) return stateDir;
  try {
    accessSync("/dev/shm", constants.W_OK);
    stateDir = "/dev/shm";
  } catch {
    stateDir = os.tmpdir(); // no RAM-backed tmpfs (macOS): a temp file still works, just slower
  }
  return stateDir;
}

function scratchPath(): string {
  return path.join(scratchDir(), `kvbridge-state-${process.pid}-${randomBytes(8).toString("hex")}.ggsq`);
}

/** The sequence's state (its tokens and KV cells) as llama.cpp serializes it. */
export async function saveSequenceState(sequence: LlamaContextSequence, exclusive: Exclusive = runDirectly): Promise<Buffer> {
  const file = scratchPath();
  try {
    await exclusive(() => sequence.saveStateToFile(file));
    return await readFile(file);
  } catch (err) {
    throw new KvbridgeError("INTERNAL", `saving the sequence KV state failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(file, { force: true });
  }
}

/** A state file written for loading; remove() deletes it (idempotent). */
export interface StateFile {
  readonly path: string;
  readonly bytes: number;
  remove(): Promise<void>;
}

/**
 * Writes the pieces of a state file image (in order) to a new scratch file with writev, off the
 * event loop. The pieces are copied into the file when this resolves: the buffers they view are
 * free again. A failure removes the file and is RESOURCE_EXHAUSTED (no space) or the abort reason.
 */
export async function writeStateFile(pieces: Iterable<Buffer>, signal?: AbortSignal, onWritten?: (pieces: readonly Buffer[]) => void): Promise<StateFile> {
  const file = scratchPath();
  let removed: Promise<void> | null = null;
  const remove = (): Promise<void> => (removed ??= rm(file, { force: true }));
  try {
    const handle = await open(file, "wx", 0o600);
    let bytes: number;
    try {
      bytes = await writeVectored(handle, pieces, { signal, onWritten });
    } finally {
      await handle.close();
    }
    return { path: file, bytes, remove };
  } catch (err) {
    await remove();
    if (signal?.aborted || err instanceof KvbridgeError) throw err;
    throw new KvbridgeError("RESOURCE_EXHAUSTED", `writing KV state to ${file} failed (${(err as Error).message}); free space in ${scratchDir()}`, { cause: err });
  }
}

/** Replaces the sequence's state with the file's (written by writeStateFile), then removes the file. */
export async function loadStateFile(sequence: LlamaContextSequence, file: StateFile, exclusive: Exclusive = runDirectly): Promise<void> {
  try {
    await exclusive(() => sequence.loadStateFromFile(file.path, { acceptRisk: true }));
  } catch (err) {
    if (err instanceof KvbridgeError) throw err;
    throw new KvbridgeError("INCOMPATIBLE", `llama.cpp refused the assembled KV state: ${(err as Error).message}`, { cause: err });
  } finally {
    await file.remove();
  }
}

/**
 * Replaces the sequence's state with `state` (a ggsq file image). The caller has validated the
 * bytes against this engine's layout: llama.cpp trusts them.
 */
export async function loadSequenceState(sequence: LlamaContextSequence, state: Buffer, exclusive: Exclusive = runDirectly): Promise<void> {
  const file = scratchPath();
  try {
    await writeFile(file, state).catch((err: unknown) => {
      throw new KvbridgeError("RESOURCE_EXHAUSTED", `writing ${state.length} bytes of KV state to ${file} failed (${(err as Error).message}); free space in ${scratchDir()}`, { cause: err });
    });
    await exclusive(() => sequence.loadStateFromFile(file, { acceptRisk: true }));
  } catch (err) {
    if (err instanceof KvbridgeError) throw err;
    throw new KvbridgeError("INCOMPATIBLE", `llama.cpp refused the assembled KV state: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(file, { force: true });
  }
}

/** writeStateFile of the state holding `tokens` and the parts' first tokens.length cells, its gather blocks reused batch to batch. */
export function writePartsStateFile(layout: KvStateLayout, tokens: ArrayLike<number>, parts: readonly StatePart[], streams: number, signal?: AbortSignal): Promise<StateFile> {
  const blocks = new GatherBlocks();
  return writeStateFile(sequenceStatePieces(layout, tokens, parts, streams, blocks), signal, (written) => blocks.written(written));
}
