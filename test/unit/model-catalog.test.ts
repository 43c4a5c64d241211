// The model catalog from --model, --models-dir and --model-alias: ids from file stems or ID=PATH,
// split GGUF parts named once, aliases, duplicate names and bad ids refused with INVALID_ARGUMENT
// naming both sides, lookups that never insert; a real directory read through loadModelCatalog.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { buildModelCatalog, loadModelCatalog, modelIdOfFile, parseModelArg } from "../../src/models/model-catalog.js";

function refusal(fn: () => unknown): KvbridgeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KvbridgeError);
    return err as KvbridgeError;
  }
  throw new Error("expected a refusal");
}

describe("model catalog", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  it("takes the id from the file stem, or from ID=PATH split at the first =", () => {
    expect(parseModelArg("/models/qwen-0.5b.gguf")).toEqual({ id: "qwen-0.5b", path: "/models/qwen-0.5b.gguf" });
    expect(parseModelArg("small=/m/a=b.gguf")).toEqual({ id: "small", path: "/m/a=b.gguf" });
    expect(modelIdOfFile("/m/big-00001-of-00003.gguf")).toBe("big");
    expect(refusal(() => parseModelArg("x=")).details.param).toBe("model");
    expect(refusal(() => parseModelArg("has space=/m/a.gguf")).message).toMatch(/not a valid model id/);
  });

  it("lists each .gguf of a directory by name, split models once, other files ignored", () => {
    const c = buildModelCatalog({ dirs: [{ dir: "/d", files: ["b.gguf", "a.GGUF", "notes.txt", "big-00002-of-00002.gguf", "big-00001-of-00002.gguf"] }] });
    expect(c.ids()).toEqual(["a", "b", "big"]);
    expect(c.resolve("big")?.path).toBe(path.join("/d", "big-00001-of-00002.gguf"));
    expect(refusal(() => buildModelCatalog({ dirs: [{ dir: "/empty", files: ["x.bin"] }] })).details.param).toBe("models-dir");
  });

  it("resolves ids and aliases to one frozen spec; a miss is undefined and inserts nothing", () => {
    const c = buildModelCatalog({ models: ["a=/m/a.gguf", "/m/b.gguf"], aliases: ["alpha=a", "first=a"] });
    expect(c.resolve("alpha")).toBe(c.resolve("a"));
    expect(c.resolve("a")?.aliases).toEqual(["alpha", "first"]);
    expect(Object.isFrozen(c.resolve("a"))).toBe(true);
    expect(c.resolve("zzz")).toBeUndefined();
    expect(c.resolve("zzz")).toBeUndefined();
    expect(c.ids()).toEqual(["a", "b"]);
  });

  it("refuses a name used twice (ids, a flag against a directory, an alias against an id) naming both models", () => {
    const twice = refusal(() => buildModelCatalog({ models: ["/x/m.gguf", "/y/m.gguf"] }));
    expect(twice.code).toBe("INVALID_ARGUMENT");
    expect(twice.message).toContain("/x/m.gguf");
    expect(twice.message).toContain("/y/m.gguf");
    expect(refusal(() => buildModelCatalog({ models: ["/x/a.gguf"], dirs: [{ dir: "/d", files: ["a.gguf"] }] })).message).toMatch(/"a" is used twice/);
    expect(refusal(() => buildModelCatalog({ models: ["/x/a.gguf", "/x/b.gguf"], aliases: ["b=a"] })).message).toMatch(/"b" is used twice/);
    expect(refusal(() => buildModelCatalog({ models: ["/x/a.gguf"], aliases: ["c=nope"] })).details.param).toBe("model-alias");
    expect(refusal(() => buildModelCatalog({})).message).toMatch(/no models to serve/);
  });

  it("reads a real models directory, following links to files and skipping subdirectories", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "kvbridge-models-"));
    dirs.push(dir);
    await writeFile(path.join(dir, "one.gguf"), "x");
    await writeFile(path.join(dir, "target.bin"), "x");
    await symlink(path.join(dir, "target.bin"), path.join(dir, "two.gguf"));
    await mkdir(path.join(dir, "sub.gguf"));
    const c = await loadModelCatalog({ modelsDirs: [dir], models: ["three=/elsewhere/3.gguf"] });
    expect(c.ids()).toEqual(["three", "one", "two"]);
    await expect(loadModelCatalog({ modelsDirs: [path.join(dir, "missing")] })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", details: { param: "models-dir" } });
  });
});
