// After a request's Commit: the deduped chunks other requests were still writing are watched until
// READY, and those whose writer failed are allocated again for this request (repair rounds) and
// written from the sender's own copy. Part of the sender (sender.ts), in a file of its own.

import type { Logger } from "pino";
import { AWAIT_READY_MS } from "../config/defaults.js";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import type { SlotWrite, TransportKind } from "../transport/transport.js";
import type { CommitResponse__Output } from "../wire/generated/kvbridge/v1/CommitResponse.js";
import type { ReceiverClient } from "../wire/receiver-client.js";
import { chunkCrc32, type WireChunkProof } from "./commit-proof.js";
import { MAX_REPAIR_ROUNDS } from "./repair-groups.js";
import type { PushChunk } from "./sender.js";

/** A slot write that remembers its chunk's key (for its Commit proof). */
export type KeyedWrite = SlotWrite & { key: string };

/** What a repair needs of the push it belongs to: the peer's client and answers, and its writer. */
export interface DependencyContext {
  client: ReceiverClient;
  slotBytes: number;
  generation: number;
  fingerprint: string;
  waitMs: number;
  rpcTimeoutMs: number;
  logger?: Logger;
  /** Writes over the push's transport (UCX, falling back to TCP); resolves with the one used. */
  write(writes: KeyedWrite[]): Promise<TransportKind>;
}

/** CRC-32 proofs of chunks put one-sided (UCX): the receiver checks each against its slot at Commit. */
export function proveWrites(writes: readonly KeyedWrite[]): WireChunkProof[] {
  return writes.map((w) => ({ key: w.key, crc32: chunkCrc32(w.data) }));
}

/**
 * After Commit: waits until the deduped chunks other requests were still writing are READY. One
 * whose writer failed (aborted by its client, expired) is allocated again for this request (a
 * repair round) and written from this push's own copy of it, then committed: a cancelled
 * neighbour costs this request neither its KV nor a recompute. Bounded by
 * SenderOptions.dependencyWaitMs and MAX_REPAIR_ROUNDS; past them (or if the receiver cannot be reached) the push returns what it
 * has and the decode node applies its recompute policy. Only this request's cancel throws.
 */
export async function awaitDependencies(
  ctx: DependencyContext,
  requestId: string,
  chunks: readonly PushChunk[],
  commit: CommitResponse__Output,
  signal?: AbortSignal,
): Promise<{ commit: CommitResponse__Output; repaired: number }> {
  const byKey = new Map(chunks.map((c) => [c.key, c]));
  const deadline = performance.now() + ctx.waitMs;
  let round = 0;
  let repaired = 0;
  let last = commit;
  try {
    for (;;) {
      const left = Math.floor(deadline - performance.now());
      if (left <= 0) return { commit: last, repaired };
      const wait = Math.min(left, AWAIT_READY_MS);
      const st = await ctx.client.awaitReady({ requestId, timeoutMs: wait }, { timeoutMs: wait + ctx.rpcTimeoutMs, signal });
      const count = (s: string): number => st.states.filter((x) => x === s).length;
      last = { keysReady: count("KEY_STATE_READY"), keysPending: count("KEY_STATE_WRITING"), keysFailed: count("KEY_STATE_FAILED") };
      if (st.allReady) return { commit: last, repaired };
      const failed = st.keys.filter((k, i) => st.states[i] === "KEY_STATE_FAILED" && byKey.has(k));
      if (failed.length === 0) continue;
      if (round >= MAX_REPAIR_ROUNDS) return { commit: last, repaired };
      round++;
      const res = await ctx.client.alloc(
        {
          requestId,
          keys: failed,
          sizes: failed.map((k) => byKey.get(k)!.data.length),
          batchSeq: 0,
          totalChunks: 0,
          isLastBatch: true,
          fingerprint: ctx.fingerprint,
          generation: ctx.generation,
          repairRound: round,
        },
        { timeoutMs: ctx.rpcTimeoutMs, signal },
      );
      const skip = new Set(res.alreadySentIndexes);
      const writes: KeyedWrite[] = [];
      let r = 0;
      failed.forEach((key, j) => {
        if (skip.has(j)) return;
        const slot = res.remoteIndexes[r]!;
        writes.push({ slot, poolOffset: slot * ctx.slotBytes, token: res.writeTokens[r]!, data: byKey.get(key)!.data, key });
        r++;
      });
      const proofs: WireChunkProof[] = [];
      if (writes.length > 0 && (await ctx.write(writes)) === "ucx") proofs.push(...proveWrites(writes));
      last = await ctx.client.commit({ requestId, proofs }, { timeoutMs: ctx.rpcTimeoutMs, signal });
      repaired += writes.length;
      ctx.logger?.info({ requestId, round, keys: failed.length, written: writes.length }, "deduped chunks whose writer failed were written again by this request");
    }
  } catch (err) {
    if (signal?.aborted) throw err;
    // Committed already: what is READY stays usable; the decode node covers the rest by its policy.
    ctx.logger?.warn({ requestId, err: toKvbridgeError(err).message }, "waiting for deduped chunks failed; the decode node applies its recompute policy");
    return { commit: last, repaired };
  }
}
