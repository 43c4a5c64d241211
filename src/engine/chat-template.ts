// Chat messages as a model's prompt text, rendered with the model's own chat template: the Jinja
// text of its GGUF's `tokenizer.chat_template`, run by @huggingface/jinja with the messages,
// `add_generation_prompt: true` and the model's BOS and EOS texts. A model without a template gets
// kvbridge's builtin format (`<|role|>\ncontent\n` per message, then `<|assistant|>\n`), the one
// the router used for every model before. The rendered text is a prompt like any other: Plan,
// Prefill and Generate tokenize it, adding the model's BOS themselves, so a leading BOS text the
// template writes is cut off here (tokenized as text it would be characters, not the BOS token),
// and the project's models give exactly the tokens of `tokenize(builtin format)`. The template is
// part of the model file, so the engine's fingerprint (which hashes the file) covers it.
import { Template } from "@huggingface/jinja";
import type { LlamaModel } from "node-llama-cpp";
import { MAX_CHAT_MESSAGES } from "../config/defaults.js";
import { KvbridgeError } from "../errors/kvbridge-error.js";

/** One chat turn as plain text. */
import { builtinChatPrompt, type ChatTurn } from "./builtin-chat-format.js";

export { builtinChatPrompt, type ChatTurn };

/** Which template rendered a chat: the model's own, or kvbridge's builtin format (the model has none). */
export type ChatTemplateKind = "model" | "builtin";

export interface RenderedChat {
  /** The prompt text, without a leading BOS text when tokenizing adds the BOS itself. */
  prompt: string;
  template: ChatTemplateKind;
}

/**
 * The roles a chat may carry. Tool and function turns are refused (kvbridge does no function
 * calling). `developer` (OpenAI's newer name for system instructions) is given to a model's
 * template as `system`, the role chat templates know; the builtin format writes it as is.
 */
export const CHAT_ROLES: readonly string[] = Object.freeze(["system", "developer", "user", "assistant"]);

/** What rendering needs to know about a model. */
export interface ChatTemplateSource {
  /** The model's tokenizer.chat_template; undefined or empty: the builtin format. */
  template: string | undefined;
  /** The text of the model's BOS and EOS tokens (bos_token / eos_token in the template), or null. */
  bosText: string | null;
  eosText: string | null;
  /** Tokenizing a prompt puts the BOS token first by itself (then a template's leading BOS text is cut). */
  tokenizeAddsBos: boolean;
}

/** The chat template facts of a loaded model (its GGUF metadata and tokenizer). */
export function chatTemplateSource(model: LlamaModel): ChatTemplateSource {
  const tokenizer = model.fileInfo.metadata.tokenizer as { chat_template?: unknown } | undefined;
  const template = typeof tokenizer?.chat_template === "string" ? tokenizer.chat_template : undefined;
  return {
    template,
    bosText: model.tokens.bosString,
    eosText: model.tokens.eosString,
    tokenizeAddsBos: model.tokens.bos !== null && model.tokens.shouldPrependBosToken,
  };
}

/** Renders chats for one model; its template is parsed once, on first use. */
export class ChatRenderer {
  private parsed: Template | KvbridgeError | undefined;

  constructor(
    private readonly source: ChatTemplateSource,
    /** Names the model in errors. */
    private readonly modelId: string,
  ) {}

  get kind(): ChatTemplateKind {
    return this.source.template ? "model" : "builtin";
  }

  /**
   * The messages' prompt text, or INVALID_ARGUMENT naming the field at fault (an empty chat, more
   * than MAX_CHAT_MESSAGES, a role outside CHAT_ROLES, a chat the template itself refuses with
   * raise_exception); FAILED_PRECONDITION when the model's template cannot be parsed.
   */
  render(messages: readonly ChatTurn[]): RenderedChat {
    checkMessages(messages);
    if (this.kind === "builtin") return { prompt: builtinChatPrompt(messages), template: "builtin" };
    const template = this.template();
    let text: string;
    try {
      text = template.render({
        messages: messages.map((m) => ({ role: m.role === "developer" ? "system" : m.role, content: m.content })),
        add_generation_prompt: true,
        bos_token: this.source.bosText ?? "",
        eos_token: this.source.eosText ?? "",
      });
    } catch (err) {
      throw new KvbridgeError("INVALID_ARGUMENT", `model ${this.modelId}'s chat template refused these messages: ${(err as Error).message}`, { cause: err, details: { param: "messages" } });
    }
    const bos = this.source.bosText;
    if (this.source.tokenizeAddsBos && bos && text.startsWith(bos)) text = text.slice(bos.length);
    return { prompt: text, template: "model" };
  }

  private template(): Template {
    if (this.parsed === undefined) {
      try {
        this.parsed = new Template(this.source.template!);
      } catch (err) {
        this.parsed = new KvbridgeError("FAILED_PRECONDITION", `model ${this.modelId}'s chat template (tokenizer.chat_template) cannot be parsed: ${(err as Error).message}`, {
          cause: err,
          details: { param: "model" },
        });
      }
    }
    if (this.parsed instanceof KvbridgeError) throw this.parsed;
    return this.parsed;
  }
}

function checkMessages(messages: readonly ChatTurn[]): void {
  if (messages.length === 0) throw new KvbridgeError("INVALID_ARGUMENT", "messages must not be empty", { details: { param: "messages" } });
  if (messages.length > MAX_CHAT_MESSAGES) {
    throw new KvbridgeError("INVALID_ARGUMENT", `messages holds ${messages.length} messages; at most ${MAX_CHAT_MESSAGES} are accepted`, {
      details: { reason: "prompt_too_long", param: "messages", limit: MAX_CHAT_MESSAGES },
    });
  }
  messages.forEach((m, i) => {
    if (!CHAT_ROLES.includes(m.role)) {
      throw new KvbridgeError("INVALID_ARGUMENT", `messages[${i}].role is ${JSON.stringify(m.role)}; a chat takes ${CHAT_ROLES.join(", ")} (kvbridge does no function calling)`, {
        details: { param: `messages[${i}].role` },
      });
    }
    if (typeof m.content !== "string") throw new KvbridgeError("INVALID_ARGUMENT", `messages[${i}].content must be a string`, { details: { param: `messages[${i}].content` } });
  });
}
