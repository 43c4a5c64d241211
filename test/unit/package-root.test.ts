// The package root is found by name from the module's own location, and the wire contract under it.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../src/config/package-root.js";
import { protoDir } from "../../src/wire/proto.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("package root", () => {
  it("is the directory of kvbridge's package.json, and proto/ is found under it", () => {
    expect(packageRoot()).toBe(repo);
    expect((JSON.parse(readFileSync(path.join(packageRoot(), "package.json"), "utf8")) as { name: string }).name).toBe("kvbridge");
    expect(protoDir()).toBe(path.join(repo, "proto"));
  });
});
