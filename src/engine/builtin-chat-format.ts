// kvbridge's builtin chat format: `<|role|>\ncontent\n` per message, then `<|assistant|>\n`. The
// project's generated models carry it as their template; a model without a template of its own is
// rendered with it, and the router measures a chat's length with it before the node renders it.

export interface ChatTurn {
  role: string;
  content: string;
}

export function builtinChatPrompt(messages: readonly ChatTurn[]): string {
  return messages.map((m) => `<|${m.role}|>\n${m.content}\n`).join("") + "<|assistant|>\n";
}
