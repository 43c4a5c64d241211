// `kvbridge send`: pushes synthetic KV chunks through the real sender to a decode node and reports
// throughput; a fabric check for operators. Exits non-zero on any failed or unverified request.
import { Command } from "commander";
import { LOG_LEVELS, TCP_CONNECTIONS, TOOL_LOG_LEVEL } from "../../config/defaults.js";
import { createLogger } from "../../observability/logger.js";
import { formatHostPort, type HostPort } from "../../roles/host-port.js";
import { runLoad } from "../../transfer/load-generator.js";
import { KvSender, type TransportPreference } from "../../transfer/sender.js";
import { envOption } from "../env-option.js";
import { bytesArg, choiceArg, fractionArg, hostPortArg, intArg } from "../option-parsers.js";
import { closeTransports, createSenderTransports } from "../sender-transports.js";
import { channelCredentialsFor } from "../../security/grpc-credentials.js";
import { diagnoseTls } from "../../security/tls-diagnosis.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, TLS_HELP, useTlsDataPlane, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

interface SendFlags extends TlsFlags, PlaintextUcxFlags {
  to: HostPort;
  transport: TransportPreference;
  requests: number;
  chunks: number;
  chunkBytes: number;
  concurrency: number;
  sharedPrefix: number;
  connections: number;
  verify: boolean;
  json: boolean;
  logLevel: string;
}

export function sendCommand(): Command {
  const cmd = new Command("send");
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  return cmd
    .description("push synthetic KV chunks to a decode node through the real sender and report throughput")
    .requiredOption("--to <host:port>", "the decode node's gRPC address", hostPortArg)
    .addOption(envOption("--transport <kind>", "tcp, ucx or auto (UCX when both ends have it)", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .option("--requests <n>", "requests to send", intArg(1, 10_000_000), 100)
    .option("--chunks <n>", "chunks per request", intArg(1, 65_536), 16)
    .option("--chunk-bytes <bytes>", "bytes per chunk; accepts KiB/MiB suffixes", bytesArg, 256 * 1024)
    .option("--concurrency <n>", "requests in flight at once", intArg(1, 4096), 4)
    .option("--shared-prefix <fraction>", "fraction of each request's leading chunks shared by all requests (dedup)", fractionArg, 0)
    .option("--connections <n>", "TCP data connections to the receiver", intArg(1, 64), TCP_CONNECTIONS)
    .option("--no-verify", "skip checking every chunk's sha256 on the receiver (chunk bytes are then made once per worker, not per request)")
    .option("--json", "print one JSON object instead of a table", false)
    .addOption(envOption("--log-level <level>", "pino log level (logs go to stderr)", choiceArg(LOG_LEVELS), TOOL_LOG_LEVEL))
    .addHelpText(
      "after",
      `${TLS_HELP}

Examples:
  kvbridge send --to 127.0.0.1:50061 --requests 200 --chunks 16 --chunk-bytes 1MiB --concurrency 8
  kvbridge send --to 10.0.0.7:50061 --transport ucx --shared-prefix 0.5 --json
  kvbridge send --to 10.0.0.7:50061 --tls-cert client.pem --tls-key client.key --tls-ca ca.pem`,
    )
    .action(async (flags: SendFlags) => {
      const log = createLogger({ name: "kvbridge-send", level: flags.logLevel });
      const tls = tlsFromFlags(flags);
      const transport = effectiveTransport(flags.transport, tls, flags, log);
      const credentials = channelCredentialsFor(tls);
      const transports = await createSenderTransports(transport, log, flags.connections);
      await useTlsDataPlane(transports, tls, log, flags.connections);
      const sender = new KvSender({ fingerprint: "", transports, preference: transport, logger: log, credentials });
      const ac = new AbortController();
      process.once("SIGINT", () => ac.abort());
      try {
        const res = await runLoad(sender, {
          target: formatHostPort(flags.to),
          requests: flags.requests,
          chunks: flags.chunks,
          chunkBytes: flags.chunkBytes,
          concurrency: flags.concurrency,
          sharedPrefix: flags.sharedPrefix,
          verify: flags.verify,
          credentials,
          signal: ac.signal,
        });
        // A TLS mismatch reaches us as grpc-js's bare "Failed to connect": say which side is wrong.
        const diagnosis = res.requests_failed > 0 ? await diagnoseTls(formatHostPort(flags.to), tls) : undefined;
        if (diagnosis) process.stderr.write(`kvbridge send: ${diagnosis.message}\n`);
        if (flags.json) {
          process.stdout.write(JSON.stringify(diagnosis ? { ...res, tls_diagnosis: diagnosis.message } : res) + "\n");
        } else {
          const rows: Array<[string, string]> = [
            ["transport", res.transport],
            ["requests ok", `${res.requests_ok} of ${flags.requests}`],
            ["bytes moved", `${res.bytes} (${(res.bytes / 2 ** 20).toFixed(1)} MiB)`],
            ["seconds", res.seconds.toFixed(3)],
            ["throughput", `${res.gbps.toFixed(3)} GB/s`],
            ["dedup hits", String(res.dedup_hits)],
            ["chunks verified", flags.verify ? String(res.chunks_verified) : "skipped"],
          ];
          for (const [k, v] of rows) process.stdout.write(`${k.padEnd(16)} ${v}\n`);
          for (const e of res.errors) process.stdout.write(`error: ${e}\n`);
        }
        if (res.requests_failed > 0 || res.requests_ok !== flags.requests) process.exitCode = 1;
      } finally {
        await sender.close();
        await closeTransports(transports);
      }
    });
}
