// Collects status reports from several nodes at once: one failing node becomes a NodeFailure in
// its place and never hides the others (at 3 a.m. a partial answer beats none).
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import type { NodeClient } from "./node-client.js";
import { buildStatus, failureReport, type NodeReport, type StatsSample } from "./status-report.js";

export interface ReportOptions {
  nearExpiryMs: number;
  /** Wait between two GetStats to measure the transfer rate; 0 skips the rate. */
  sampleMs?: number;
  /** Earlier samples by address (watch keeps them between frames); updated in place. */
  previous?: Map<string, StatsSample>;
  signal?: AbortSignal;
}

export interface NodeView {
  report: NodeReport;
  /** The node's requests as listed for the report (empty when it failed). */
  requests: RequestInfo__Output[];
}

export async function collectReports(clients: readonly NodeClient[], o: ReportOptions): Promise<NodeView[]> {
  return Promise.all(
    clients.map(async (c): Promise<NodeView> => {
      try {
        const [first, health, requests] = await Promise.all([sample(c), c.health(), c.requests()]);
        let previous = o.previous?.get(c.address);
        let last = first;
        if (o.sampleMs && o.sampleMs > 0) {
          await sleep(o.sampleMs, o.signal);
          previous = first;
          last = await sample(c);
        }
        o.previous?.set(c.address, last);
        return { report: buildStatus(c.address, last, health, requests, { nearExpiryMs: o.nearExpiryMs, previous }), requests };
      } catch (err) {
        return { report: failureReport(c.address, err), requests: [] };
      }
    }),
  );
}

async function sample(c: NodeClient): Promise<StatsSample> {
  const stats = await c.stats();
  return { stats, at: performance.now() };
}

/** A bounded pause that ends early (without error) when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
