// Running tokens through one context sequence: prompt evaluation in bounded pieces (so a cancel
// lands within one piece) and greedy decoding. The reference path and the disaggregated path
// both go through these two functions, in the same order with the same piece boundaries, which
// is what makes their outputs equal token for token.

import type { LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { throwIfAborted } from "./sequence-pool.js";
import { StopSequenceFilter } from "./stop-sequences.js";
import { TokenTextStream } from "./token-text-stream.js";

/**
 * Prompt pieces end at absolute multiples of this many tokens, and it is the context's batch
 * size, so every piece is one llama_decode call. Aligning to absolute positions (not to where an
 * evaluation starts) gives a recompute from chunk k the same batches the reference run had.
 */
export const PROMPT_PIECE_TOKENS = 512;

export type FinishReason = "length" | "stop" | "eos";

export interface DecodeResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
}

/** Evaluates tokens[from, to) into `sequence`, which must hold exactly tokens[0, from). */
export async function evaluatePromptRange(
  sequence: LlamaContextSequence,
  tokens: readonly number[],
  from: number,
  to: number,
  signal?: AbortSignal,
): Promise<void> {
  if (sequence.nextTokenIndex !== from) {
    throw new KvbridgeError("INTERNAL", `sequence holds ${sequence.nextTokenIndex} tokens; prompt evaluation expected ${from}`);
  }
  for (let start = from; start < to; ) {
    const end = Math.min(to, (Math.floor(start / PROMPT_PIECE_TOKENS) + 1) * PROMPT_PIECE_TOKENS);
    throwIfAborted(signal, "evaluating the prompt");
    await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(start, end) as Token[]);
    start = end;
  }
}

export interface DecodeOptions {
  model: LlamaModel;
  sequence: LlamaContextSequence;
  /** The whole prompt; the sequence holds all of it but the last token. */
  prompt: readonly number[];
  maxTokens: number;
  signal?: AbortSignal;
  onToken?: (text: string, token: number) => void;
  stop?: readonly string[];
}

/**
 * Evaluates the prompt's last token (its logits pick the first output token) and decodes
 * greedily. The last prompt token is always evaluated here, alone, on every path: its logits
 * then come from the same one-token batch whether the earlier tokens were evaluated locally or
 * loaded from chunks.
 */
export async function decodeGreedy(o: DecodeOptions): Promise<DecodeResult> {
  const n = o.prompt.length;
  if (o.sequence.nextTokenIndex !== n - 1) {
    throw new KvbridgeError("INTERNAL", `sequence holds ${o.sequence.nextTokenIndex} tokens; decoding expected ${n - 1}`);
  }
  const tokens: number[] = [];
  if (o.maxTokens === 0) return { text: "", tokens, finishReason: "length" };

  const textStream = new TokenTextStream(o.model, o.prompt);
  const stops = new StopSequenceFilter(o.stop);
  let text = "";
  let finishReason: FinishReason = "length";
  const emit = (delta: string, token: number): void => {
    text += delta;
    o.onToken?.(delta, token);
  };

  const generator = o.sequence.evaluate([o.prompt[n - 1]!] as Token[], { temperature: 0, yieldEogToken: true });
  try {
    for await (const token of generator) {
      throwIfAborted(o.signal, "generating");
      if (o.model.isEogToken(token)) {
        finishReason = "eos";
        const tail = stops.push(textStream.flush()) + stops.flush();
        if (tail) emit(tail, token); // text held back until the end, delivered with the EOS event
        break;
      }
      tokens.push(token);
      let delta = stops.push(textStream.push(token));
      if (stops.stopped) {
        finishReason = "stop";
        emit(delta, token);
        break;
      }
      const last = tokens.length >= o.maxTokens;
      if (last) delta += stops.push(textStream.flush()) + stops.flush();
      if (last && stops.stopped) finishReason = "stop";
      emit(delta, token);
      if (last) break;
    }
  } finally {
    await generator.return(undefined);
  }
  return { text, tokens, finishReason };
}
