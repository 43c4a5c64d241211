// Stop sequences over a text stream (OpenAI `stop`): generation ends at the first occurrence of
// any stop string, which is not part of the output. Text that might be the start of a stop string
// is held back, so a streamed delta never shows text that the final answer then drops.

export class StopSequenceFilter {
  private held = "";
  private readonly stops: readonly string[];
  private stoppedAt = false;

  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.stoppedAt;
  }

  /** Feeds generated text; returns the part that is now safe to emit. */
  push(text: string): string {
    if (this.stoppedAt) return "";
    if (this.stops.length === 0) return text;
    const buf = this.held + text;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.stoppedAt = true;
      this.held = "";
      return buf.slice(0, cut);
    }
    // Hold the longest tail of buf that is a proper prefix of some stop string.
    let keep = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > keep; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
      }
    }
    this.held = buf.slice(buf.length - keep);
    return buf.slice(0, buf.length - keep);
  }

  /** At the end of generation: held text that never became a stop string is output after all. */
  flush(): string {
    const rest = this.stoppedAt ? "" : this.held;
    this.held = "";
    return rest;
  }
}
