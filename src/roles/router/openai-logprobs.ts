// Log-probabilities in OpenAI's two shapes: completions' (tokens, token_logprobs, top_logprobs as
// one { text: logprob } object per position, text_offset) and chat's (content: one entry per token
// with its UTF-8 bytes and top_logprobs). Built from the decode node's per-token log-probabilities.
import type { TokenLogprob__Output } from "../../wire/generated/kvbridge/v1/TokenLogprob.js";

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[] | null;
  text_offset: number[];
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export interface ChatLogprobs {
  content: ChatTokenLogprob[];
  refusal: null;
}

function bytesOf(text: string): number[] {
  return [...Buffer.from(text, "utf8")];
}

/** Completions' shape; `offset` is the text length already sent before these tokens (streaming). */
export function completionLogprobs(lp: readonly TokenLogprob__Output[], offset = 0): CompletionLogprobs {
  const text_offset: number[] = [];
  let at = offset;
  for (const l of lp) {
    text_offset.push(at);
    at += l.text.length;
  }
  const anyTop = lp.some((l) => l.top.length > 0);
  return {
    tokens: lp.map((l) => l.text),
    token_logprobs: lp.map((l) => l.logprob),
    // Several tokens may share a text (byte tokens of one character): the most likely is kept, as listed first.
    top_logprobs: anyTop ? lp.map((l) => Object.fromEntries([...l.top].reverse().map((t) => [t.text, t.logprob]))) : null,
    text_offset,
  };
}

/** Chat's shape. */
export function chatLogprobs(lp: readonly TokenLogprob__Output[]): ChatLogprobs {
  return {
    content: lp.map((l) => ({
      token: l.text,
      logprob: l.logprob,
      bytes: bytesOf(l.text),
      top_logprobs: l.top.map((t) => ({ token: t.text, logprob: t.logprob, bytes: bytesOf(t.text) })),
    })),
    refusal: null,
  };
}
