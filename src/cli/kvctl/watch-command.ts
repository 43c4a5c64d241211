// `kvctl watch ADDR...`: status and the oldest in-flight requests of each node, refreshed in place
// every --interval; the transfer rate is measured between refreshes. q or Ctrl-C quits cleanly.
import { Command } from "commander";
import { KVCTL_NEAR_EXPIRY_MS, KVCTL_WATCH_INTERVAL_MS } from "../../config/defaults.js";
import type { RequestInfo__Output } from "../../wire/generated/kvbridge/v1/RequestInfo.js";
import { intArg } from "../option-parsers.js";
import { runFormatted, writeStructured } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { EXIT } from "./exit-codes.js";
import { formatDuration } from "./human-units.js";
import { NodeClient } from "./node-client.js";
import { collectReports, sleep } from "./node-reports.js";
import { resolveNodes } from "./node-targets.js";
import { isStructured, type OutputFormat } from "./output-format.js";
import { requestColumns, requestRow, sortRequests } from "./requests-command.js";
import { renderStatus, renderStatusWide, type NodeReport, type StatsSample } from "./status-report.js";
import { renderTable } from "./table.js";
import { printable, terminalJson } from "./terminal-text.js";
import { openWatchScreen } from "./watch-screen.js";

interface WatchFlags extends CommonFlags {
  interval: number;
  count?: number;
  nearExpiryMs: number;
}

/** One frame: a title line, then per node its status block and its oldest requests (up to `maxRequests`). */
export function renderWatchFrame(
  title: string,
  nodes: ReadonlyArray<{ report: NodeReport; requests: readonly RequestInfo__Output[] }>,
  maxRequests: number,
  format: OutputFormat = "table",
): string {
  const wide = format === "wide";
  const parts = [title + "\n"];
  for (const n of nodes) {
    parts.push("\n" + (wide ? renderStatusWide(n.report) : renderStatus(n.report)));
    if (!n.report.ok) continue;
    const rows = sortRequests(n.requests.map(requestRow));
    if (rows.length === 0) {
      parts.push("  no requests in flight\n");
      continue;
    }
    const shown = rows.slice(0, Math.max(1, maxRequests));
    parts.push("\n" + indent(renderTable(requestColumns(shown, wide), shown)));
    if (rows.length > shown.length) parts.push(`  ... ${rows.length - shown.length} more (kvctl requests ${printable(n.report.address)})\n`);
  }
  return parts.join("");
}

/** One refresh as a document of a stream: a JSON line, or a YAML document ended by `---`. */
function writeFrameDocument(format: "json" | "yaml", doc: unknown): void {
  if (format === "json") process.stdout.write(terminalJson(doc) + "\n");
  else {
    writeStructured("yaml", doc);
    process.stdout.write("---\n");
  }
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, "  ");
}

export function watchCommand(): Command {
  const cmd = new Command("watch")
    .description("live view of nodes (status + oldest in-flight requests), refreshed in place like top; q or Ctrl-C quits")
    .argument("[addr...]", "node gRPC addresses (host:port)")
    .option("--interval <ms>", "refresh period", intArg(100, 3_600_000), KVCTL_WATCH_INTERVAL_MS)
    .option("--count <n>", "quit after this many refreshes (default: until q)", intArg(1, 1_000_000))
    .option("--near-expiry-ms <ms>", "count allocating requests whose lease ends within this", intArg(1, 3_600_000), KVCTL_NEAR_EXPIRY_MS);
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `
On a terminal the view is redrawn in place; piped, frames are printed one after another.
-o json prints one JSON document per refresh, -o yaml one YAML document per refresh (separated by
---): {"time", "nodes": [status with its requests]}, for a log or a pipe.

Examples:
  kvctl watch 127.0.0.1:50061
  kvctl watch 10.0.0.7:50061 10.0.0.8:50061 --interval 500
  kvctl watch 127.0.0.1:50061 --count 3 > snapshot.txt
  kvctl watch 127.0.0.1:50061 -o json --interval 5000 >> kvbridge-watch.ndjson`,
    )
    .action(async (addrs: string[], flags: WatchFlags) => {
      await runFormatted(flags, async (format) => {
        const stop = new AbortController();
        const clients = resolveNodes(addrs, flags.node).map((a) => new NodeClient(a, clientOptions(flags, { signal: stop.signal })));
        // Structured output is a stream of documents for a pipe: never an in-place screen.
        const screen = isStructured(format) ? undefined : openWatchScreen(process.stdout, process.stdin, () => stop.abort());
        const onSignal = (): void => stop.abort();
        if (!screen) {
          process.on("SIGINT", onSignal);
          process.on("SIGTERM", onSignal);
        }
        const previous = new Map<string, StatsSample>();
        let frames = 0;
        let lastExit: number = EXIT.OK;
        try {
          while (!stop.signal.aborted) {
            const started = performance.now();
            const views = await collectReports(clients, { nearExpiryMs: flags.nearExpiryMs, previous, signal: stop.signal });
            if (stop.signal.aborted) break;
            if (!screen) {
              const nodes = views.map((v) => ({ ...v.report, requests: v.report.ok ? sortRequests(v.requests.map(requestRow)) : [] }));
              writeFrameDocument(format === "json" ? "json" : "yaml", { time: new Date().toISOString(), nodes });
              lastExit = views.some((v) => !v.report.ok) ? EXIT.UNREACHABLE : EXIT.OK;
              frames++;
              if (flags.count !== undefined && frames >= flags.count) break;
              await sleep(Math.max(0, flags.interval - (performance.now() - started)), stop.signal);
              continue;
            }
            const title = `kvctl watch  ${new Date().toISOString().slice(11, 19)}  every ${formatDuration(flags.interval)}  ${screen.live ? "q: quit" : `frame ${frames + 1}`}`;
            const rows = screen.rows();
            // Fit the requests into the terminal (a status block and table header take ~11 lines per
            // node); a terminal that reports no size (0 rows) gets the same 20 as a pipe.
            const room = !rows ? 20 : Math.max(3, Math.floor((rows - 2 - clients.length * 11) / clients.length));
            screen.draw(renderWatchFrame(title, views, room, format));
            lastExit = views.some((v) => !v.report.ok) ? EXIT.UNREACHABLE : EXIT.OK;
            frames++;
            if (flags.count !== undefined && frames >= flags.count) break;
            await sleep(Math.max(0, flags.interval - (performance.now() - started)), stop.signal);
          }
        } finally {
          screen?.close();
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
          for (const c of clients) c.close();
        }
        // Quitting with q is how a watch normally ends; --count runs report the last frame's state.
        return stop.signal.aborted ? EXIT.OK : lastExit;
      });
    });
}
