// Learning, at open, the KV state layout this llama.cpp build writes for a model (and the KV
// stream count of the engine's contexts), so that a build or model whose state kvbridge cannot cut
// fails to open with the reason rather than on the first transfer.

import { GgmlType, type LlamaModel } from "node-llama-cpp";
import { KvbridgeError, toKvbridgeError } from "../errors/kvbridge-error.js";
import { parseSequenceState, type KvStateLayout } from "./kv-state-layout.js";
import type { SequenceSource } from "./sequence-pool.js";
import { saveSequenceState } from "./state-file.js";

/**
 * Learns the KV state layout this llama.cpp build writes for this model: evaluate one token,
 * save the sequence state and parse it. Doing it at open means a build or model whose layout
 * kvbridge cannot cut fails here, with the reason, rather than on the first transfer.
 */
export async function probeLayout(model: LlamaModel, pool: SequenceSource): Promise<{ layout: KvStateLayout; streams: number }> {
  const lease = await pool.acquire();
  try {
    const probeToken = model.tokens.bos ?? model.tokenize("a", false)[0];
    if (probeToken === undefined) throw new KvbridgeError("INVALID_ARGUMENT", "the model's tokenizer produced no token to probe its KV layout with");
    await lease.sequence.evaluateWithoutGeneratingNewTokens([probeToken]);
    const { layout, streams } = parseSequenceState(await saveSequenceState(lease.sequence, lease.exclusive));
    return { layout, streams };
  } catch (err) {
    const e = toKvbridgeError(err);
    throw new KvbridgeError(e.code, `this model's KV state cannot be moved between nodes: ${e.message}`, { cause: err });
  } finally {
    await lease.release();
  }
}

export function ggmlTypeName(id: number | undefined): string {
  if (id === undefined) return "none";
  return (GgmlType as unknown as Record<number, string>)[id] ?? `ggml-type-${id}`;
}
