// `kvbridge router`: the OpenAI-compatible entry point in front of prefill and decode nodes.
import { Command } from "commander";
import type { HostPort } from "../../roles/host-port.js";
import { parsePeerSource } from "../../roles/router/peer-discovery.js";
import { startRouter } from "../../roles/router/router-role.js";
import { createLogger } from "../../observability/logger.js";
import { envOption } from "../env-option.js";
import { choiceArg, hostPortArg, intArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { grpcChannelCredentials } from "../../security/grpc-credentials.js";
import { addTlsOptions, tlsFromFlags, type TlsFlags } from "./tls-flags.js";

interface RouterFlags extends TlsFlags {
  listen: HostPort;
  prefill?: string;
  prefillDns?: string;
  decode?: string;
  decodeDns?: string;
  drainTimeout: number;
  logLevel: string;
}

export function routerCommand(): Command {
  return addTlsOptions(new Command("router"))
    .description("run the router: OpenAI-compatible HTTP API that sends each request through a prefill and a decode node")
    .addOption(envOption("--listen <host:port>", "HTTP address", hostPortArg, hostPortArg("127.0.0.1:8000"), "127.0.0.1:8000"))
    .addOption(envOption("--prefill <list>", "prefill nodes' gRPC addresses, comma separated"))
    .addOption(envOption("--prefill-dns <name:port>", "a DNS name resolving to every prefill node (headless Service)"))
    .addOption(envOption("--decode <list>", "decode nodes' gRPC addresses, comma separated"))
    .addOption(envOption("--decode-dns <name:port>", "a DNS name resolving to every decode node (headless Service)"))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may take", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "info"))
    .addHelpText(
      "after",
      `
With --tls-cert, --tls-key and --tls-ca the router calls prefill and decode nodes over mutual TLS,
presenting its certificate and verifying theirs (the OpenAI HTTP API itself stays plain HTTP).

Examples:
  kvbridge router --listen 0.0.0.0:8000 --prefill 127.0.0.1:50051 --decode 127.0.0.1:50061
  kvbridge router --prefill-dns kvbridge-prefill:50051 --decode-dns kvbridge-decode:50061`,
    )
    .action(async (flags: RouterFlags) => {
      const log = createLogger({ name: "kvbridge-router", level: flags.logLevel });
      const tls = tlsFromFlags(flags);
      if (tls) log.info({ certificate: tls.names, notAfter: tls.notAfter.toISOString(), serverName: tls.serverName }, "mutual TLS to prefill and decode nodes");
      const router = await startRouter({
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
        listen: flags.listen,
        prefill: parsePeerSource(flags.prefill, flags.prefillDns, "prefill"),
        decode: parsePeerSource(flags.decode, flags.decodeDns, "decode"),
        logger: log,
      });
      onShutdownSignal(log, () => router.drain(flags.drainTimeout));
    });
}
