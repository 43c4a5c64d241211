// `kvbridge prefill`: the prefill node process.
import { Command } from "commander";
import type { HostPort } from "../../roles/host-port.js";
import { startPrefillRole } from "../../roles/prefill-role.js";
import { createLogger } from "../../observability/logger.js";
import { addNodeModelOptions, nodeModelsFromFlags, type NodeEngineFlags } from "../engine-options.js";
import { envOption } from "../env-option.js";
import { choiceArg, hostPortArg, intArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { closeTransports, createSenderTransports } from "../sender-transports.js";
import { grpcChannelCredentials, grpcServerCredentials } from "../../security/grpc-credentials.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, TLS_HELP, useTlsDataPlane, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

type PrefillFlags = NodeEngineFlags & TlsFlags & PlaintextUcxFlags & {
  listen: HostPort;
  transport: "auto" | "tcp" | "ucx";
  tcpConnections: number;
  metricsListen?: HostPort;
  healthListen?: HostPort;
  drainTimeout: number;
  nodeId?: string;
  logLevel: string;
};

export function prefillCommand(): Command {
  const cmd = new Command("prefill").description("run a prefill node: evaluates prompts and pushes their KV cache to decode nodes");
  addNodeModelOptions(cmd);
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  return cmd
    .addOption(envOption("--listen <host:port>", "gRPC address", hostPortArg, hostPortArg("127.0.0.1:50051"), "127.0.0.1:50051"))
    .addOption(envOption("--transport <kind>", "data plane to decode nodes: auto (UCX when both ends have it), ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--tcp-connections <n>", "TCP data connections per decode node", intArg(1, 64), 2))
    .addOption(envOption("--metrics-listen <host:port>", "HTTP address for /metrics", hostPortArg))
    .addOption(envOption("--health-listen <host:port>", "extra plaintext gRPC endpoint serving only grpc.health.v1 (kubelet probes when the node uses mTLS)", hostPortArg))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight prefills may take", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--node-id <id>", "name of this node in logs"))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "info"))
    .addHelpText(
      "after",
      `${TLS_HELP}
With mutual TLS, KV goes to decode nodes over TLS'd TCP only (--allow-plaintext-ucx allows UCX).

Examples:
  kvbridge prefill --listen 127.0.0.1:50051
  kvbridge prefill --model ./model.gguf --listen 0.0.0.0:50051 --transport ucx --threads 4
  kvbridge prefill --model a=./a.gguf --model b=./b.gguf --default-model a --models-max 2
  kvbridge prefill --models-dir /models --model-alias chat=qwen-0.5b`,
    )
    .action(async (flags: PrefillFlags) => {
      const log = createLogger({ name: "kvbridge-prefill", level: flags.logLevel });
      // Checked before the engine loads: a wrong certificate path fails the start at once.
      const tls = tlsFromFlags(flags);
      const transport = effectiveTransport(flags.transport, tls, flags, log);
      const models = await nodeModelsFromFlags(flags);
      const transports = await createSenderTransports(transport, log, flags.tcpConnections);
      await useTlsDataPlane(transports, tls, log, flags.tcpConnections);
      const node = await startPrefillRole({ listen: flags.listen, models, transports, transport, nodeId: flags.nodeId, logger: log,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
        metricsListen: flags.metricsListen,
        healthListen: flags.healthListen,
        // Fault injection for failure tests only (docs/operations.md); unset in production.
        faultDelayBeforeWriteMs: Number(process.env.KVBRIDGE_FAULT_DELAY_WRITE_MS ?? 0) || undefined,
      });
      if (tls) log.info({ certificate: tls.names, notAfter: tls.notAfter.toISOString() }, "mutual TLS on gRPC (served and to decode nodes) and the TCP data plane");
      onShutdownSignal(log, async () => {
        await node.drain(flags.drainTimeout);
        await closeTransports(transports);
      });
    });
}
