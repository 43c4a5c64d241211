// Text from nodes that kvctl prints for people: request ids, keys, peers, node ids and error
// messages are chosen by callers, and a terminal acts on some characters instead of showing them
// (ESC starts a sequence that can clear the screen or move the cursor; a newline or carriage return
// can forge a table row; bidi controls reorder what is shown). Every such character is written as a
// visible escape, so what an operator sees is what the node holds.

/**
 * C0 controls (newline, tab and ESC included), DEL, C1 controls (8-bit CSI and friends), the Unicode
 * line and paragraph separators, and the bidi embedding, override, isolate and mark characters.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(c: string): string {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
}

/** One value as a single line with no character a terminal would act on ("\u001b[2J" -> "\\x1b[2J"). */
export function printable(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/**
 * Text kvctl assembled itself (a frame, a block of lines): each line made printable, the newlines
 * between them kept. Values inside were escaped where they were placed; this is the last guard.
 */
export function printableLines(text: string): string {
  return text.split("\n").map(printable).join("\n");
}

/** Characters JSON.stringify leaves raw (it escapes only C0) but a terminal may still act on. */
const JSON_UNSAFE = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** JSON for a terminal or a pipe: the same value when parsed, with no raw control character in the text. */
export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(JSON_UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
