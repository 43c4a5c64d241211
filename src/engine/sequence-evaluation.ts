// Running tokens through one context sequence: prompt evaluation in bounded pieces (so a cancel
// lands within one piece) and decoding with node-llama-cpp's sampler (greedy, or sampled with a
// seed). The reference path and the disaggregated path both go through these two functions, in
// the same order with the same piece boundaries, which is what makes their outputs equal token
// for token.

import type { EvaluationPriority, LlamaContextSequence, LlamaGrammarEvaluationState, LlamaModel, Token } from "node-llama-cpp";
import { KvbridgeError } from "../errors/kvbridge-error.js";
import { samplerOptions } from "./sampler-options.js";
import type { EngineSampling } from "./sampling.js";
import { throwIfAborted, type SequenceLease } from "./sequence-pool.js";
import { StopSequenceFilter } from "./stop-sequences.js";
import { TokenTextStream } from "./token-text-stream.js";

/**
 * Prompt pieces end at absolute multiples of this many tokens, and it is the context's batch
 * size, so every piece is one llama_decode call. Aligning to absolute positions (not to where an
 * evaluation starts) gives a recompute from chunk k the same batches the reference run had.
 */
export const PROMPT_PIECE_TOKENS = 512;

export type FinishReason = "length" | "stop" | "eos";

/** One generated token's log-probability, and the most likely alternatives at its position. */
export interface TokenLogprob {
  token: number;
  /** Natural log of the token's probability in the distribution it was drawn from (see docs/engine.md). */
  logprob: number;
  /** The topLogprobs most likely tokens at this position, most likely first ([] unless asked for). */
  top: { token: number; logprob: number }[];
}

export interface DecodeResult {
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  /** Per generated token, when sampling.logprobs was set. */
  logprobs?: TokenLogprob[];
}

/**
 * Evaluates tokens[from, to) into the lease's sequence, which must hold exactly tokens[0, from).
 * Each piece waits for the lease's turn first (a pending state load or save of the context goes ahead).
 */
export async function evaluatePromptRange(
  lease: Pick<SequenceLease, "sequence" | "priority" | "turn">,
  tokens: readonly number[],
  from: number,
  to: number,
  signal?: AbortSignal,
): Promise<void> {
  const { sequence, priority } = lease;
  if (sequence.nextTokenIndex !== from) {
    throw new KvbridgeError("INTERNAL", `sequence holds ${sequence.nextTokenIndex} tokens; prompt evaluation expected ${from}`);
  }
  for (let start = from; start < to; ) {
    const end = Math.min(to, (Math.floor(start / PROMPT_PIECE_TOKENS) + 1) * PROMPT_PIECE_TOKENS);
    await lease.turn();
    throwIfAborted(signal, "evaluating the prompt");
    await sequence.evaluateWithoutGeneratingNewTokens(tokens.slice(start, end) as Token[], { evaluationPriority: priority as EvaluationPriority });
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
  sampling?: EngineSampling;
  /** The seed of a sampled request (resolveSeed); ignored when greedy. */
  seed?: number;
  /** A fresh grammar state for constrained output (ResponseGrammars.stateFor). */
  grammar?: LlamaGrammarEvaluationState;
  /** Orders this sequence's rows within a shared batch (batch-order.ts). */
  evaluationPriority?: number;
  /**
   * Awaited (when it returns a promise) before each evaluation is queued, the first one and each
   * next token: a pending exclusive operation on the shared context goes first (exclusive-gate.ts).
   */
  turn?: () => Promise<void> | undefined;
}

/**
 * Evaluates the prompt's last token (its logits pick the first output token) and decodes with
 * one node-llama-cpp sampler for the whole output. The last prompt token is always evaluated
 * here, alone, on every path: its logits then come from the same one-token evaluation whether
 * the earlier tokens were evaluated locally or loaded from chunks.
 */
export async function decodeTokens(o: DecodeOptions): Promise<DecodeResult> {
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

  const sampling = o.sampling ?? {};
  const top = sampling.topLogprobs ?? 0;
  const logprobs: TokenLogprob[] | undefined = sampling.logprobs ? [] : undefined;
  // With a grammar, node-llama-cpp samples in one of two orders depending on whether metadata is
  // asked for; always asking keeps a seeded request's draws the same with or without logprobs.
  const metadata = { confidence: logprobs !== undefined || o.grammar !== undefined, probabilities: top > 0 };
  const options = samplerOptions(o.model, sampling, o.seed, tokens, o.grammar);
  await o.turn?.();
  throwIfAborted(o.signal, "generating");
  const generator = o.sequence.evaluateWithMetadata([o.prompt[n - 1]!] as Token[], metadata, {
    ...options,
    yieldEogToken: true,
    evaluationPriority: o.evaluationPriority as EvaluationPriority | undefined,
  });
  try {
    for await (const step of generator) {
      throwIfAborted(o.signal, "generating");
      const token = step.token;
      if (o.model.isEogToken(token)) {
        finishReason = "eos";
        const tail = stops.push(textStream.flush()) + stops.flush();
        if (tail) emit(tail, token); // text held back until the end, delivered with the EOS event
        break;
      }
      tokens.push(token);
      if (logprobs) logprobs.push(logprobOf(step, top));
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
      // The generator queues the next token when asked for it: a pending exclusive operation first.
      const turn = o.turn?.();
      if (turn) await turn;
    }
  } finally {
    await generator.return(undefined);
  }
  return logprobs ? { text, tokens, finishReason, logprobs } : { text, tokens, finishReason };
}

function logprobOf(step: { token: Token; confidence?: number; probabilities?: Map<Token, number> }, top: number): TokenLogprob {
  const alternatives: { token: number; logprob: number }[] = [];
  if (top > 0 && step.probabilities) {
    for (const [token, p] of step.probabilities) {
      if (alternatives.length >= top || p <= 0) break;
      alternatives.push({ token, logprob: Math.log(p) });
    }
  }
  return { token: step.token, logprob: Math.log(step.confidence ?? 1), top: alternatives };
}
