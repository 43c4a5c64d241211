// kvctl's output format choice (-o, --json) and its YAML for terminals: the same value when parsed,
// and no raw character a terminal would act on (C0, C1, bidi controls, line separators).
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { outputOf, structuredText, terminalYaml } from "../../src/cli/kvctl/output-format.js";

const EVIL = "evil-\u001b[2J\u202e\u2028\u0085\u009bforged\nline";

describe("kvctl output formats", () => {
  it("-o picks the format, --json is -o json, and the two disagreeing is a usage error", () => {
    expect(outputOf({ json: false })).toBe("table");
    expect(outputOf({ json: false, output: "wide" })).toBe("wide");
    expect(outputOf({ json: true })).toBe("json");
    expect(outputOf({ json: true, output: "json" })).toBe("json");
    expect(() => outputOf({ json: true, output: "yaml" })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });

  it("YAML round-trips a value whose strings hold terminal controls, and shows none of them raw", () => {
    const value = { nodes: [{ address: "a:1", ok: true, request_id: EVIL, n: 3, none: null, list: [EVIL, "plain"] }] };
    const text = terminalYaml(value);
    expect(parse(text)).toEqual(value);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e\u2028]/);
  });

  it("JSON and YAML documents end with a newline and parse to the same value", () => {
    const value = { error: { code: "UNAVAILABLE", message: EVIL, node: null } };
    expect(JSON.parse(structuredText("json", value))).toEqual(value);
    expect(parse(structuredText("yaml", value))).toEqual(value);
    expect(structuredText("yaml", value).endsWith("\n")).toBe(true);
  });
});
