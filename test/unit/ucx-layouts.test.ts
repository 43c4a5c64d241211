// The koffi declarations of UCX's parameter structs and constants against the UCX they were written
// for: the loaded library's version, koffi's own view of each layout, and (where a C compiler and
// the UCX headers are installed) the headers themselves.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { loadKoffi } from "../../native-bindings/koffi/load-koffi.js";
import * as constants from "../../native-bindings/ucx/ucx-constants.js";
import { loadUcx } from "../../native-bindings/ucx/ucx-library.js";
import { UCX_1_13_LAYOUT, ucxStructTypes } from "../../native-bindings/ucx/ucx-structs.js";
import * as amBindings from "../../src/transport/ucx/ucx-am-bindings.js";
import { UCX_1_13_AM_LAYOUT, ucxAmStructTypes } from "../../src/transport/ucx/ucx-am-bindings.js";

const loaded = loadUcx();
const koffi = (() => {
  const k = loadKoffi();
  if (!k.ok) throw new Error(k.reason);
  return k.koffi;
})();
/** Every struct kvbridge declares for koffi: the parameter structs and the active-message ones (data-plane commit). */
const LAYOUT = { ...UCX_1_13_LAYOUT, ...UCX_1_13_AM_LAYOUT };
type StructName = keyof typeof LAYOUT;
const structNames = Object.keys(LAYOUT) as StructName[];

function hasCompiler(): boolean {
  try {
    execFileSync("cc", ["--version"], { stdio: "ignore" });
    return existsSync("/usr/include/ucp/api/ucp.h");
  } catch {
    return false;
  }
}

describe("UCX struct layouts and constants", () => {
  test.skipIf(!loaded.available)("the loaded libucp is UCX 1.13.x, the version the layouts were written for (needs libucp)", () => {
    if (!loaded.available) return;
    const { major, minor, text } = loaded.ucx.version;
    // Loud on purpose: a different UCX may be fine at run time (field_mask keeps 1.x compatible),
    // but these layouts and constants must be re-checked against its headers before trusting it.
    expect(`${major}.${minor}`, `libucp ${text} at ${loaded.ucx.libraryPath}: re-verify native-bindings/ucx against its headers`).toBe("1.13");
    expect(loaded.ucx.fns.ucp_get_version_string()).toBe(text);
  });

  test("koffi lays out every UCX parameter struct with the sizes and offsets of the 1.13 headers", () => {
    const types = { ...ucxStructTypes(koffi), ...ucxAmStructTypes(koffi) };
    for (const name of structNames) {
      const want = LAYOUT[name];
      expect(koffi.sizeof(types[name]), `sizeof(${name})`).toBe(want.size);
      for (const [field, offset] of Object.entries(want.offsets)) {
        expect(koffi.offsetof(types[name], field), `offsetof(${name}, ${field})`).toBe(offset);
      }
    }
  });

  test.skipIf(!hasCompiler())("the layouts and every constant match the installed UCX headers (needs cc and libucx-dev)", () => {
    const lines: string[] = ["#include <stdio.h>", "#include <stddef.h>", "#include <ucp/api/ucp.h>", "int main(void) {"];
    for (const name of structNames) {
      lines.push(`printf("size ${name} %zu\\n", sizeof(${name}));`);
      for (const field of Object.keys(LAYOUT[name].offsets)) {
        lines.push(`printf("offset ${name}.${field} %zu\\n", offsetof(${name}, ${field}));`);
      }
    }
    const all: Record<string, unknown> = { ...constants, ...amBindings };
    const names = Object.keys(all).filter((n) => /^(UC[PS]_)/.test(n) && (typeof all[n] === "number" || typeof all[n] === "bigint"));
    for (const n of names) lines.push(`printf("const ${n} %lld\\n", (long long)(${n}));`);
    lines.push("return 0; }");

    const dir = mkdtempSync(path.join(tmpdir(), "kvbridge-ucx-layout-"));
    try {
      writeFileSync(path.join(dir, "layout.c"), lines.join("\n"));
      execFileSync("cc", ["-o", path.join(dir, "layout"), path.join(dir, "layout.c")], { stdio: "pipe" });
      const out = execFileSync(path.join(dir, "layout"), { encoding: "utf8" });
      const truth = new Map(out.trim().split("\n").map((l) => {
        const [kind, key, value] = l.split(" ");
        return [`${kind} ${key}`, value!] as const;
      }));
      for (const name of structNames) {
        expect(Number(truth.get(`size ${name}`)), `sizeof(${name}) in the headers`).toBe(LAYOUT[name].size);
        for (const [field, offset] of Object.entries(LAYOUT[name].offsets)) {
          expect(Number(truth.get(`offset ${name}.${field}`)), `offsetof(${name}, ${field}) in the headers`).toBe(offset);
        }
      }
      expect(names.length).toBeGreaterThan(30);
      for (const n of names) {
        const ours = all[n] as number | bigint;
        expect(BigInt(truth.get(`const ${n}`)!), `${n} in the headers`).toBe(BigInt(ours));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
