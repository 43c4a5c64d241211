// Declarative model loads on a node: a same-options load of a model already resident (answered from
// the registry, no engine touched) against a load with other options (drain and a real reload of the
// engine), measured in the same run on the project's model through the node's own model host.

import { ensureDefaultModel } from "../src/engine/index.js";
import { loadModelCatalog } from "../src/models/model-catalog.js";
import { NodeModels } from "../src/models/node-models.js";
import type { BenchFigure } from "./bench-figure.js";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function runModelLoadBench(opts: { rounds?: number; log?: (line: string) => void } = {}): Promise<BenchFigure[]> {
  const rounds = opts.rounds ?? 5;
  const catalog = await loadModelCatalog({ models: [`m=${await ensureDefaultModel()}`] });
  const models = new NodeModels({ catalog, maxResident: 2, defaults: { threads: 1 } });
  try {
    let threads = 1;
    await models.host.ensureLoaded("m", { threads });
    const same: number[] = [];
    const reload: number[] = [];
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      await models.host.ensureLoaded("m", { threads });
      same.push(performance.now() - t);
      // Other options: the model is drained (nothing in flight here) and loaded again.
      threads = threads === 1 ? 2 : 1;
      t = performance.now();
      await models.host.ensureLoaded("m", { threads });
      reload.push(performance.now() - t);
      opts.log?.(`model load round ${i + 1}/${rounds}: same options ${same.at(-1)!.toFixed(3)} ms, reload ${reload.at(-1)!.toFixed(1)} ms`);
    }
    const s = median(same);
    const r = median(reload);
    return [{ bench: "models.load.same_options", value: s, unit: "ms", baseline: r, baselineName: "load with other options (reload)", ratio: s / r }];
  } finally {
    await models.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await runModelLoadBench({ log: (l) => process.stderr.write(`${l}\n`) });
  for (const f of figures) process.stdout.write(`${JSON.stringify(f)}\n`);
}
