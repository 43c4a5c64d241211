// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by source file, and the
// inclusive time of functions whose name or file matches an optional filter. Used with
// bench/alloc-profile.ts:  node --import tsx bench/cpu-profile-summary.ts <file.cpuprofile> [top] [filter]

import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) throw new Error("usage: cpu-profile-summary.ts <file.cpuprofile> [top] [filter]");
const top = Number(topArg ?? 40);
const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
let totalUs = 0;
for (let i = 0; i < p.samples.length; i++) {
  const dt = p.timeDeltas[i] ?? 0;
  totalUs += dt;
  selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + dt);
}
const short = (url: string): string => url.replace(/^file:\/\//, "").replace(/.*node_modules\//, "nm/").replace(/.*\/work\/main\//, "");
const label = (n: ProfileNode): string => `${n.callFrame.functionName || "(anon)"} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

const add = (m: Map<string, number>, k: string, v: number): void => {
  m.set(k, (m.get(k) ?? 0) + v);
};
const fnSelf = new Map<string, number>();
const fileSelf = new Map<string, number>();
const fnTotal = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id)!;
  add(fnSelf, label(n), us);
  add(fileSelf, short(n.callFrame.url) || `(${n.callFrame.functionName})`, us);
  // Inclusive: every distinct frame on the stack gets the sample once.
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (!seen.has(l)) {
      seen.add(l);
      add(fnTotal, l, us);
    }
  }
}
const pct = (us: number): string => `${((100 * us) / totalUs).toFixed(1).padStart(5)}% ${(us / 1000).toFixed(0).padStart(6)} ms`;
const print = (title: string, m: Map<string, number>, keep: (k: string) => boolean = () => true): void => {
  process.stdout.write(`\n== ${title} (total ${(totalUs / 1000).toFixed(0)} ms)\n`);
  for (const [k, v] of [...m].filter(([k]) => keep(k)).sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(v)}  ${k}\n`);
};
print("self time by file", fileSelf);
print("self time by function", fnSelf);
print("inclusive time by function", fnTotal, filter ? (k) => k.includes(filter) : undefined);
