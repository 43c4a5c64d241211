// Where the router finds its nodes: static lists, and a DNS name resolving to many addresses (a
// Kubernetes headless Service), here `localhost`, which resolves through the machine's resolver.
import { describe, expect, it } from "vitest";
import { KvbridgeError } from "../../src/errors/kvbridge-error.js";
import { silentLogger } from "../../src/observability/logger.js";
import { PeerDiscovery, parsePeerSource } from "../../src/roles/router/peer-discovery.js";

describe("peer discovery", () => {
  it("parses a static list and refuses bad or conflicting sources with a message", () => {
    expect(parsePeerSource("127.0.0.1:1, [::1]:2", undefined, "decode")).toEqual({ kind: "static", targets: ["127.0.0.1:1", "[::1]:2"] });
    expect(() => parsePeerSource("a:1", "b:2", "decode")).toThrow(/not both/);
    expect(() => parsePeerSource(undefined, undefined, "prefill")).toThrow(/--prefill HOST:PORT/);
    expect(() => parsePeerSource("no-port", undefined, "decode")).toThrow(KvbridgeError);
  });

  it("resolves a DNS name to every address it has, with the given port", async () => {
    const d = new PeerDiscovery(parsePeerSource(undefined, "localhost:50061", "decode"), silentLogger());
    await d.start();
    try {
      const targets = d.targets();
      expect(targets.length).toBeGreaterThanOrEqual(1);
      expect(targets.every((t) => t.endsWith(":50061"))).toBe(true);
      expect(targets.some((t) => t.startsWith("127.0.0.1") || t.startsWith("[::1]"))).toBe(true);
    } finally {
      d.stop();
    }
  });

  it("a name that does not resolve leaves the peers empty, logs, and never throws", async () => {
    const d = new PeerDiscovery({ kind: "dns", name: "kvbridge-test.invalid", port: 9 }, silentLogger());
    await expect(d.refresh()).resolves.toBeUndefined();
    expect(d.targets()).toEqual([]);
  });
});
