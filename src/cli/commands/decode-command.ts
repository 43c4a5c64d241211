// `kvbridge decode`: the decode node process.
import { Command } from "commander";
import { startDecodeNode } from "../../nodes/decode-node.js";
import type { HostPort } from "../../nodes/host-port.js";
import { createLogger } from "../../observability/logger.js";
import { envOption } from "../env-option.js";
import { bytesArg, choiceArg, hostPortArg, intArg, lockArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";

export interface DecodeFlags {
  listen: HostPort;
  dataListen: HostPort;
  advertiseHost?: string;
  model?: string;
  engine: boolean;
  poolSlots: number;
  slotBytes: number;
  leaseMs: number;
  quarantineMs: number;
  holdMs: number;
  transport: "auto" | "tcp" | "ucx";
  lockMemory: boolean | "auto";
  threads?: number;
  chunkTokens?: number;
  recomputePolicy: "recompute" | "fail";
  metricsListen?: HostPort;
  drainTimeout: number;
  nodeId?: string;
  logLevel: string;
}

export function decodeCommand(): Command {
  return new Command("decode")
    .description("run a decode node: receives KV chunks into a pinned pool and generates tokens from them")
    .addOption(envOption("--listen <host:port>", "gRPC control plane address", hostPortArg, hostPortArg("127.0.0.1:50061"), "127.0.0.1:50061"))
    .addOption(envOption("--data-listen <host:port>", "TCP data plane address", hostPortArg, hostPortArg("127.0.0.1:50062"), "127.0.0.1:50062"))
    .addOption(envOption("--advertise-host <host>", "address put in data-plane offers (default: env POD_IP, else the listen host)"))
    .addOption(envOption("--model <path>", "GGUF model file (default: the model kvbridge writes itself)"))
    .addOption(envOption("--no-engine", "receiver only: no model, raw KV transfers (tests, benchmarks, fabric checks)"))
    .addOption(envOption("--pool-slots <n>", "number of KV slots in the pinned pool", intArg(1, 1 << 24), 256))
    .addOption(envOption("--slot-bytes <bytes>", "bytes per slot (largest chunk); accepts KiB/MiB suffixes", bytesArg, 1 << 20, "1MiB"))
    .addOption(envOption("--lease-ms <ms>", "an allocation not renewed or committed within this is released", intArg(10, 3_600_000), 10_000))
    .addOption(envOption("--quarantine-ms <ms>", "slots of aborted or expired writes stay unused this long (late one-sided writes)", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--hold-ms <ms>", "a committed request that is never consumed gives its pins back after this", intArg(10, 3_600_000), 60_000))
    .addOption(envOption("--transport <kind>", "data planes to offer: auto (UCX when available, and TCP), ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--lock-memory <mode>", "mlock the pool: auto (try, warn if not possible), true (fail if not possible), false", lockArg, "auto" as const))
    .addOption(envOption("--threads <n>", "engine threads", intArg(1, 256)))
    .addOption(envOption("--chunk-tokens <n>", "tokens per KV chunk (must match the prefill nodes)", intArg(1, 65_536)))
    .addOption(envOption("--recompute-policy <policy>", "when a needed KV chunk is lost: recompute it locally or fail the request", choiceArg(["recompute", "fail"] as const), "recompute" as const))
    .addOption(envOption("--metrics-listen <host:port>", "HTTP address for /metrics", hostPortArg))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may take before they are released", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--node-id <id>", "name of this node in logs and inspection"))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "info"))
    .addHelpText(
      "after",
      `
Examples:
  kvbridge decode --no-engine --listen 127.0.0.1:50061 --pool-slots 1024 --slot-bytes 1MiB
  KVBRIDGE_POOL_SLOTS=4096 kvbridge decode --model ./model.gguf --listen 0.0.0.0:50061 --data-listen 0.0.0.0:50062`,
    )
    .action(async (flags: DecodeFlags) => {
      const log = createLogger({ name: "kvbridge-decode", level: flags.logLevel });
      if (flags.engine) {
        throw new Error("the decode engine is not wired into this build yet; start with --no-engine");
      }
      const node = await startDecodeNode({
        listen: flags.listen,
        dataListen: flags.dataListen,
        advertiseHost: flags.advertiseHost,
        poolSlots: flags.poolSlots,
        slotBytes: flags.slotBytes,
        leaseMs: flags.leaseMs,
        quarantineMs: flags.quarantineMs,
        holdMs: flags.holdMs,
        transport: flags.transport,
        lockMemory: flags.lockMemory,
        nodeId: flags.nodeId,
        logger: log,
        metricsListen: flags.metricsListen,
      });
      onShutdownSignal(log, () => node.drain(flags.drainTimeout));
    });
}
