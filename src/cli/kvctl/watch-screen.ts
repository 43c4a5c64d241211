// The terminal side of `kvctl watch`: on a terminal, an alternate screen redrawn in place (like
// top) with keys read raw, so q or Ctrl-C quit at once and the terminal is restored on every exit
// path; anywhere else (a pipe, a log file), frames are appended one after another without escapes.
// Every line of a frame is made printable before it is drawn: the only escapes written are ours.
import { printableLines } from "./terminal-text.js";

const ESC = "\x1b[";
const ALT_SCREEN_ON = `${ESC}?1049h`;
const ALT_SCREEN_OFF = `${ESC}?1049l`;
const CURSOR_HIDE = `${ESC}?25l`;
const CURSOR_SHOW = `${ESC}?25h`;
const HOME = `${ESC}H`;
const CLEAR_LINE_END = `${ESC}K`;
const CLEAR_BELOW = `${ESC}J`;
const CTRL_C = "\x03";

export interface WatchScreen {
  /** True when frames are drawn in place (stdout is a terminal). */
  readonly live: boolean;
  /** Terminal height in rows, when known (a pseudo-terminal without a size reports 0). */
  rows(): number | undefined;
  draw(frame: string): void;
  /** Idempotent: leaves the alternate screen, shows the cursor, gives the keyboard back. */
  close(): void;
}

export function openWatchScreen(out: NodeJS.WriteStream, input: NodeJS.ReadStream, onQuit: () => void): WatchScreen {
  const live = out.isTTY === true;
  let closed = false;
  const onKey = (chunk: Buffer | string): void => {
    const s = chunk.toString();
    if (s.includes("q") || s.includes("Q") || s.includes(CTRL_C)) onQuit();
  };
  const onSignal = (): void => onQuit();
  const rawInput = input.isTTY === true;

  if (live) out.write(ALT_SCREEN_ON + CURSOR_HIDE);
  // Raw mode: keys arrive one by one without Enter, and Ctrl-C arrives as a byte instead of a
  // signal; restored in close() whatever ends the watch.
  if (rawInput) input.setRawMode(true);
  input.on("data", onKey);
  input.resume();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  return {
    live,
    rows: () => (live ? out.rows : undefined),
    draw(raw) {
      if (closed) return;
      const frame = printableLines(raw);
      if (!live) {
        out.write(frame.endsWith("\n") ? frame + "\n" : frame + "\n\n");
        return;
      }
      const lines = frame.replace(/\n$/, "").split("\n");
      out.write(HOME + lines.map((l) => l + CLEAR_LINE_END).join("\r\n") + "\r\n" + CLEAR_BELOW);
    },
    close() {
      if (closed) return;
      closed = true;
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      input.off("data", onKey);
      if (rawInput) input.setRawMode(false);
      input.pause();
      if (live) out.write(CURSOR_SHOW + ALT_SCREEN_OFF);
    },
  };
}
