// `kvbridge decode`: the decode node process. The engine loads while the node already serves health
// (NOT_SERVING), inspection and metrics; the role attaches it when it is ready.
import { Command } from "commander";
import {
  DECODE_DATA_LISTEN,
  DECODE_LISTEN,
  DEFAULT_HOLD_MS,
  DEFAULT_KV_WAIT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_POOL_SLOTS,
  DEFAULT_QUARANTINE_MS,
  DEFAULT_SLOT_BYTES,
  DRAIN_TIMEOUT_MS,
  LOG_LEVELS,
  NODE_LOG_LEVEL,
} from "../../config/defaults.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { createLogger } from "../../observability/logger.js";
import { startDecodeRole } from "../../roles/decode-role.js";
import type { HostPort } from "../../roles/host-port.js";
import { grpcServerCredentials } from "../../security/grpc-credentials.js";
import { addNodeModelOptions, nodeModelsFromFlags, type NodeEngineFlags } from "../engine-options.js";
import { envOption } from "../env-option.js";
import { bytesArg, choiceArg, hostPortArg, intArg, lockArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { loadUcxReceiver } from "../ucx-loader.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, TLS_HELP, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

export type DecodeFlags = TlsFlags & PlaintextUcxFlags & NodeEngineFlags & {
  listen: HostPort;
  dataListen: HostPort;
  advertiseHost?: string;
  engine: boolean;
  poolSlots: number;
  slotBytes: number;
  leaseMs: number;
  quarantineMs: number;
  holdMs: number;
  transport: "auto" | "tcp" | "ucx";
  lockMemory: boolean | "auto";
  kvWaitMs: number;
  recomputePolicy: "recompute" | "fail";
  metricsListen?: HostPort;
  healthListen?: HostPort;
  drainTimeout: number;
  nodeId?: string;
  adminToken?: string;
  adminIdentity?: string;
  logLevel: string;
};

export function decodeCommand(): Command {
  const cmd = new Command("decode");
  addNodeModelOptions(cmd);
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  return cmd
    .description("run a decode node: receives KV chunks into a pinned pool and generates tokens from them")
    .addOption(envOption("--listen <host:port>", "gRPC control plane address", hostPortArg, hostPortArg(DECODE_LISTEN), DECODE_LISTEN))
    .addOption(envOption("--data-listen <host:port>", "TCP data plane address", hostPortArg, hostPortArg(DECODE_DATA_LISTEN), DECODE_DATA_LISTEN))
    .addOption(envOption("--advertise-host <host>", "address put in data-plane offers (default: env POD_IP, else the listen host)"))
    .addOption(envOption("--no-engine", "receiver only: no model, raw KV transfers (tests, benchmarks, fabric checks)"))
    .addOption(envOption("--pool-slots <n>", "number of KV slots in the pinned pool", intArg(1, 1 << 24), DEFAULT_POOL_SLOTS))
    .addOption(envOption("--slot-bytes <bytes>", "bytes per slot (largest chunk); accepts KiB/MiB suffixes", bytesArg, DEFAULT_SLOT_BYTES, `${DEFAULT_SLOT_BYTES / (1 << 20)}MiB`))
    .addOption(envOption("--lease-ms <ms>", "an allocation not renewed or committed within this is released", intArg(10, 3_600_000), DEFAULT_LEASE_MS))
    .addOption(envOption("--quarantine-ms <ms>", "slots of aborted or expired writes stay unused this long (late one-sided writes)", intArg(0, 3_600_000), DEFAULT_QUARANTINE_MS))
    .addOption(envOption("--hold-ms <ms>", "a committed request that is never consumed gives its pins back after this", intArg(10, 3_600_000), DEFAULT_HOLD_MS))
    .addOption(envOption("--transport <kind>", "data planes to offer: auto (UCX when available, and TCP), ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--lock-memory <mode>", "mlock the pool: auto (try, warn if not possible), true (fail if not possible), false", lockArg, "auto" as const))
    .addOption(envOption("--kv-wait-ms <ms>", "how long Generate waits for a request's KV chunks before recomputing or failing", intArg(1, 3_600_000), DEFAULT_KV_WAIT_MS))
    .addOption(envOption("--recompute-policy <policy>", "when a needed KV chunk is lost: recompute it locally or fail the request", choiceArg(["recompute", "fail"] as const), "recompute" as const))
    .addOption(envOption("--metrics-listen <host:port>", "HTTP address for /metrics", hostPortArg))
    .addOption(envOption("--health-listen <host:port>", "extra plaintext gRPC endpoint serving only grpc.health.v1 (kubelet probes when the node uses mTLS)", hostPortArg))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may take before they are released", intArg(0, 3_600_000), DRAIN_TIMEOUT_MS))
    .addOption(envOption("--admin-token <token>", "token kvctl must send for admin actions (evict, abort); without one, only loopback callers may"))
    .addOption(envOption("--admin-identity <names>", "with mutual TLS: client certificate names (CN, DNS or URI SAN; comma separated) allowed admin actions; default any from --tls-ca"))
    .addOption(envOption("--node-id <id>", "name of this node in logs and inspection"))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(LOG_LEVELS), NODE_LOG_LEVEL))
    .addHelpText(
      "after",
      `
${TLS_HELP}
A TLS node offers only the TLS'd TCP data plane: UCX carries no TLS (--allow-plaintext-ucx offers it).

Examples:
  kvbridge decode --no-engine --listen 127.0.0.1:50061 --pool-slots 1024 --slot-bytes 1MiB
  KVBRIDGE_POOL_SLOTS=4096 kvbridge decode --model ./model.gguf --listen 0.0.0.0:50061 --data-listen 0.0.0.0:50062
  kvbridge decode --models-dir /models --models-max 2 --default-model qwen-0.5b`,
    )
    .action(async (flags: DecodeFlags) => {
      const log = createLogger({ name: "kvbridge-decode", level: flags.logLevel });
      // TLS files are checked before the engine loads: a wrong path fails the start, not every peer.
      const tls = tlsFromFlags(flags);
      const transport = effectiveTransport(flags.transport, tls, flags, log);
      const adminIdentities = flags.adminIdentity?.split(",").map((n) => n.trim()).filter((n) => n.length > 0);
      if (adminIdentities?.length && !tls) {
        throw new KvbridgeError("INVALID_ARGUMENT", "--admin-identity names client certificates, which only mutual TLS has; add --tls-cert, --tls-key and --tls-ca, or use --admin-token");
      }
      // Each model's chunks are checked against --slot-bytes by the role when it loads.
      const models = flags.engine ? await nodeModelsFromFlags(flags) : undefined;
      const node = await startDecodeRole({
        listen: flags.listen,
        dataListen: flags.dataListen,
        advertiseHost: flags.advertiseHost,
        podIp: process.env.POD_IP || undefined,
        poolSlots: flags.poolSlots,
        slotBytes: flags.slotBytes,
        leaseMs: flags.leaseMs,
        quarantineMs: flags.quarantineMs,
        holdMs: flags.holdMs,
        transport,
        lockMemory: flags.lockMemory,
        nodeId: flags.nodeId,
        logger: log,
        models,
        recomputePolicy: flags.recomputePolicy,
        kvWaitMs: flags.kvWaitMs,
        ucxDataPlane: loadUcxReceiver,
        metricsListen: flags.metricsListen,
        healthListen: flags.healthListen,
        adminToken: flags.adminToken,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        dataTls: tls,
        adminIdentities,
      });
      if (tls) log.info({ certificate: tls.names, notAfter: tls.notAfter.toISOString(), adminIdentities }, "mutual TLS on gRPC and the TCP data plane");
      let stopping = false;
      // A node whose engine cannot load would never serve: say why and exit, so its supervisor sees it.
      node.engineReady.catch(async (err: unknown) => {
        if (stopping) return; // stopped while loading: the drain ends the process
        process.stderr.write(`kvbridge: ${(err as Error).message}\n`);
        await node.close();
        process.exit(1);
      });
      onShutdownSignal(log, async () => {
        stopping = true;
        await node.drain(flags.drainTimeout);
      });
    });
}
