// The models a node can serve, from `--model PATH`, `--model ID=PATH` (repeatable), `--models-dir DIR`
// (each .gguf file a model, its id the file stem) and `--model-alias ALIAS=ID`. Built once at start
// and never changed; lookups by id or alias never insert (a miss is undefined). Serving one of these
// models is the registry's business: being in the catalog loads nothing.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { KvbridgeError } from "../errors/kvbridge-error.js";

export interface ModelSpec {
  /** The name clients use (`"model"` in a request). */
  readonly id: string;
  /** Other names for the same model. */
  readonly aliases: readonly string[];
  /** The GGUF file (the first part, for a split model). */
  readonly path: string;
}

/** One `--models-dir` listing: the directory and the names of the regular files in it. */
export interface ModelsDirListing {
  readonly dir: string;
  readonly files: readonly string[];
}

export interface ModelCatalogInput {
  /** `--model` values, in order: `PATH` (id = file stem) or `ID=PATH`. */
  readonly models?: readonly string[];
  /** `--models-dir` listings. */
  readonly dirs?: readonly ModelsDirListing[];
  /** `--model-alias` values: `ALIAS=ID`. */
  readonly aliases?: readonly string[];
}

// Printable names that survive URLs (/v1/models/{id}), label values and logs: letters, digits and
// . _ - : + @ / ; no spaces, no "=" (the id/path separator), at most 128 characters.
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:+@/-]{0,127}$/;
// llama.cpp's split GGUF naming: NAME-00001-of-00003.gguf; the first part names the whole model.
const SPLIT_PART = /^(.+)-(\d{5})-of-(\d{5})$/;

export class ModelCatalog {
  /** Every model, in the order given (flags first, then each directory sorted by name). */
  readonly models: readonly ModelSpec[];
  private readonly byName: ReadonlyMap<string, ModelSpec>;

  constructor(models: readonly ModelSpec[]) {
    if (models.length === 0) {
      throw new KvbridgeError("INVALID_ARGUMENT", "no models to serve: pass --model PATH or --models-dir DIR with .gguf files in it", { details: { param: "model" } });
    }
    const frozen = models.map((m) => Object.freeze({ id: m.id, aliases: Object.freeze([...m.aliases]), path: m.path }));
    const byName = new Map<string, ModelSpec>();
    for (const spec of frozen) {
      for (const name of [spec.id, ...spec.aliases]) {
        const taken = byName.get(name);
        if (taken) {
          throw new KvbridgeError(
            "INVALID_ARGUMENT",
            `model name "${name}" is used twice (${describe(taken)} and ${describe(spec)}); give one of them another id with --model ID=PATH`,
            { details: { param: "model" } },
          );
        }
        byName.set(name, spec);
      }
    }
    this.models = Object.freeze(frozen);
    this.byName = byName;
  }

  /** The model a name (id or alias) stands for; undefined on a miss, and the catalog is unchanged. */
  resolve(name: string): ModelSpec | undefined {
    return this.byName.get(name);
  }

  ids(): string[] {
    return this.models.map((m) => m.id);
  }
}

function describe(spec: ModelSpec): string {
  return `${spec.id} = ${spec.path}`;
}

/** Checks a model id or alias; throws INVALID_ARGUMENT saying what is allowed. */
export function checkModelId(id: string, what: string): string {
  if (!ID_PATTERN.test(id)) {
    throw new KvbridgeError(
      "INVALID_ARGUMENT",
      `${what} ${JSON.stringify(id)} is not a valid model id: 1 to 128 of letters, digits and . _ - : + @ /, starting with a letter or digit`,
      { details: { param: "model" } },
    );
  }
  return id;
}

/** The id a GGUF file gets by default: its name without .gguf (and without a split suffix). */
export function modelIdOfFile(file: string): string {
  const stem = path.basename(file).replace(/\.gguf$/i, "");
  const split = SPLIT_PART.exec(stem);
  return split ? split[1]! : stem;
}

/** `PATH` or `ID=PATH` (split at the first "="; a path with "=" in it needs an explicit `ID=`). */
export function parseModelArg(arg: string): { id: string; path: string } {
  const eq = arg.indexOf("=");
  const id = eq >= 0 ? arg.slice(0, eq) : undefined;
  const file = eq >= 0 ? arg.slice(eq + 1) : arg;
  if (file === "") throw new KvbridgeError("INVALID_ARGUMENT", `--model ${JSON.stringify(arg)} names no file: use --model PATH or --model ID=PATH`, { details: { param: "model" } });
  return { id: checkModelId(id ?? modelIdOfFile(file), id === undefined ? `the file stem of ${file}:` : "--model id"), path: file };
}

/** The models of one directory listing: every *.gguf (first parts only for split models), by name. */
export function modelsOfDir(listing: ModelsDirListing): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const name of [...listing.files].sort()) {
    if (!/\.gguf$/i.test(name)) continue;
    const split = SPLIT_PART.exec(name.replace(/\.gguf$/i, ""));
    if (split && Number(split[2]) !== 1) continue;
    out.push({ id: checkModelId(modelIdOfFile(name), `the file ${path.join(listing.dir, name)} gives`), aliases: [], path: path.join(listing.dir, name) });
  }
  if (out.length === 0) {
    throw new KvbridgeError("INVALID_ARGUMENT", `--models-dir ${listing.dir} has no .gguf files`, { details: { param: "models-dir" } });
  }
  return out;
}

/** The catalog of flags already read (pure: directories come as listings). Throws INVALID_ARGUMENT on a duplicate or bad name. */
export function buildModelCatalog(input: ModelCatalogInput): ModelCatalog {
  const specs: Array<{ id: string; aliases: string[]; path: string }> = [];
  for (const arg of input.models ?? []) specs.push({ ...parseModelArg(arg), aliases: [] });
  for (const listing of input.dirs ?? []) for (const m of modelsOfDir(listing)) specs.push({ ...m, aliases: [] });
  for (const arg of input.aliases ?? []) {
    const eq = arg.indexOf("=");
    if (eq <= 0) throw new KvbridgeError("INVALID_ARGUMENT", `--model-alias ${JSON.stringify(arg)}: use ALIAS=ID`, { details: { param: "model-alias" } });
    const alias = checkModelId(arg.slice(0, eq), "--model-alias alias");
    const target = arg.slice(eq + 1);
    const spec = specs.find((s) => s.id === target);
    if (!spec) throw new KvbridgeError("INVALID_ARGUMENT", `--model-alias ${alias}=${target}: no model has id ${JSON.stringify(target)}`, { details: { param: "model-alias" } });
    spec.aliases.push(alias);
  }
  return new ModelCatalog(specs);
}

/** Lists `--models-dir` directories (regular files and links to them) and builds the catalog. */
export async function loadModelCatalog(input: { models?: readonly string[]; modelsDirs?: readonly string[]; aliases?: readonly string[] }): Promise<ModelCatalog> {
  const dirs: ModelsDirListing[] = [];
  for (const dir of input.modelsDirs ?? []) {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
      throw new KvbridgeError("INVALID_ARGUMENT", `--models-dir ${dir} cannot be read: ${(err as Error).message}`, { cause: err, details: { param: "models-dir" } });
    });
    const files: string[] = [];
    for (const e of entries) {
      if (e.isFile()) files.push(e.name);
      else if (e.isSymbolicLink() && (await stat(path.join(dir, e.name)).catch(() => null))?.isFile()) files.push(e.name);
    }
    dirs.push({ dir, files });
  }
  return buildModelCatalog({ models: input.models, dirs, aliases: input.aliases });
}
