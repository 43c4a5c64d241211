// A static reading of deploy/Dockerfile and .dockerignore: stages, instructions, COPY sources,
// and which paths of the build context Docker would send. No Docker daemon is needed.
import path from "node:path";

export interface Instruction {
  keyword: string;
  /** Everything after the keyword, continuation lines joined. */
  rest: string;
  line: number;
}

export interface Stage {
  image: string;
  name?: string;
  instructions: Instruction[];
}

export interface CopySpec {
  from?: string;
  sources: string[];
  dest: string;
}

/** Splits a Dockerfile into stages of instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? "";
    if (line.trim() === "" || line.trim().startsWith("#")) continue;
    while (line.trimEnd().endsWith("\\") && i + 1 < lines.length) {
      line = line.trimEnd().slice(0, -1);
      i++;
      const next = lines[i] ?? "";
      // Docker drops comment lines inside a continued instruction.
      if (!next.trim().startsWith("#")) line += ` ${next.trim()}`;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/s.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start + 1}: cannot parse "${line}"`);
    const instruction: Instruction = { keyword: (m[1] ?? "").toUpperCase(), rest: (m[2] ?? "").trim(), line: start + 1 };
    if (instruction.keyword === "FROM") {
      const [image = "", as, name] = instruction.rest.split(/\s+/);
      stages.push({ image, ...(as?.toUpperCase() === "AS" && name ? { name } : {}), instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile line ${start + 1}: ${instruction.keyword} before FROM`);
      stage.instructions.push(instruction);
    }
  }
  return stages;
}

/** The arguments of an exec-form (JSON array) instruction, or undefined for shell form. */
export function execForm(rest: string): string[] | undefined {
  if (!rest.startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(rest);
  if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === "string")) throw new Error(`not a JSON string array: ${rest}`);
  return parsed;
}

export function parseCopy(rest: string): CopySpec {
  const words = rest.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith("--")) {
    const flag = words.shift() ?? "";
    if (flag.startsWith("--from=")) from = flag.slice("--from=".length);
  }
  const list = execForm(words.join(" ")) ?? words;
  const dest = list.at(-1);
  if (dest === undefined || list.length < 2) throw new Error(`COPY needs a source and a destination: ${rest}`);
  return { ...(from !== undefined ? { from } : {}), sources: list.slice(0, -1), dest };
}

/** The last WORKDIR of a stage before instruction `index` (Docker's default is /). */
export function workdirAt(stage: Stage, index: number): string {
  let dir = "/";
  for (const ins of stage.instructions.slice(0, index)) if (ins.keyword === "WORKDIR") dir = path.posix.resolve(dir, ins.rest);
  return dir;
}

/** Where each source of a COPY lands inside the image. */
export function copyTargets(stage: Stage, index: number, spec: CopySpec): string[] {
  const dest = path.posix.resolve(workdirAt(stage, index), spec.dest);
  // "COPY a b ./" copies into the directory; "COPY src ./src" names the target itself.
  const intoDirectory = spec.dest.endsWith("/") || spec.sources.length > 1;
  return spec.sources.map((s) => (intoDirectory ? path.posix.join(dest, path.posix.basename(s)) : dest));
}

interface IgnorePattern {
  regex: RegExp;
  exception: boolean;
}

function globToRegex(pattern: string): RegExp {
  let out = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? "";
    if (c === "*" && pattern[i + 1] === "*") {
      // "**/" matches zero or more whole directories; a trailing "**" matches everything.
      if (pattern[i + 2] === "/") {
        out += "(?:.*/)?";
        i += 2;
      } else {
        out += ".*";
        i += 1;
      }
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

/** .dockerignore semantics (moby patternmatcher): the last pattern matching a path or one of
 *  its parent directories decides; "!" patterns re-include. */
export function dockerIgnore(text: string): (relativePath: string) => boolean {
  const patterns: IgnorePattern[] = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const exception = l.startsWith("!");
      const body = path.posix.normalize((exception ? l.slice(1) : l).trim()).replace(/^\/+/, "");
      return { regex: globToRegex(body), exception };
    });
  return (relativePath) => {
    const parts = path.posix.normalize(relativePath).split("/");
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const p of patterns) if (candidates.some((c) => p.regex.test(c))) excluded = !p.exception;
    return excluded;
  };
}
