// Turns generated tokens into text deltas as they come. A byte-level token can end in the middle
// of a UTF-8 character; its text is held back until the character completes, so a stream never
// shows a replacement character that the whole text would not have.

import type { LlamaModel, Token } from "node-llama-cpp";

/** Tokens of context kept for the detokenizer's continuation rules (leading spaces and the like). */
const CONTEXT_TOKENS = 8;
/** A UTF-8 character spans at most 4 bytes, hence at most 4 byte tokens. */
const MAX_HELD_TOKENS = 4;

export class TokenTextStream {
  private pending: Token[] = [];
  private context: Token[];

  /** `preceding`: the tokens before the first pushed one (the prompt's tail). */
  constructor(
    private readonly model: LlamaModel,
    preceding: readonly number[],
  ) {
    this.context = preceding.slice(-CONTEXT_TOKENS) as Token[];
  }

  /** The text that `token` completes ("" while a character is still incomplete). */
  push(token: number): string {
    this.pending.push(token as Token);
    const text = this.model.detokenize(this.pending, false, this.context);
    if (text.endsWith("\uFFFD") && this.pending.length < MAX_HELD_TOKENS) return "";
    this.context = [...this.context, ...this.pending].slice(-CONTEXT_TOKENS);
    this.pending = [];
    return text;
  }

  /** Whatever is still held (an incomplete character at the very end). */
  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.model.detokenize(this.pending, false, this.context);
    this.pending = [];
    return text;
  }
}
