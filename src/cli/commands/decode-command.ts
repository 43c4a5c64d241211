// `kvbridge decode`: the decode node process.
import type * as grpc from "@grpc/grpc-js";
import { Command } from "commander";
import type { LlamaEngine } from "../../engine/llama-engine.js";
import { decodeEngineService, lazyDecodeHandlers, type DecodeEngineService } from "../../services/decode-service.js";
import type { DecodeNode } from "../../roles/decode-role.js";
import type { KvReceiver } from "../../transfer/receiver.js";
import { kvbridgeV1 } from "../../wire/proto.js";
import { addEngineOptions, openEngine } from "../engine-options.js";
import { startDecodeNode } from "../../roles/decode-role.js";
import type { HostPort } from "../../roles/host-port.js";
import { createLogger } from "../../observability/logger.js";
import { envOption } from "../env-option.js";
import { loadUcxReceiver } from "../ucx-loader.js";
import { bytesArg, choiceArg, hostPortArg, intArg, lockArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { grpcServerCredentials } from "../../security/grpc-credentials.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, TLS_HELP, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

export interface DecodeFlags extends TlsFlags, PlaintextUcxFlags {
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
  threads: number;
  chunkTokens: number;
  maxSequences?: number;
  kvWaitMs: number;
  recomputePolicy: "recompute" | "fail";
  metricsListen?: HostPort;
  healthListen?: HostPort;
  drainTimeout: number;
  nodeId?: string;
  adminToken?: string;
  adminIdentity?: string;
  logLevel: string;
}

export function decodeCommand(): Command {
  const cmd = new Command("decode");
  addEngineOptions(cmd);
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  return cmd
    .description("run a decode node: receives KV chunks into a pinned pool and generates tokens from them")
    .addOption(envOption("--listen <host:port>", "gRPC control plane address", hostPortArg, hostPortArg("127.0.0.1:50061"), "127.0.0.1:50061"))
    .addOption(envOption("--data-listen <host:port>", "TCP data plane address", hostPortArg, hostPortArg("127.0.0.1:50062"), "127.0.0.1:50062"))
    .addOption(envOption("--advertise-host <host>", "address put in data-plane offers (default: env POD_IP, else the listen host)"))
    .addOption(envOption("--no-engine", "receiver only: no model, raw KV transfers (tests, benchmarks, fabric checks)"))
    .addOption(envOption("--pool-slots <n>", "number of KV slots in the pinned pool", intArg(1, 1 << 24), 256))
    .addOption(envOption("--slot-bytes <bytes>", "bytes per slot (largest chunk); accepts KiB/MiB suffixes", bytesArg, 1 << 20, "1MiB"))
    .addOption(envOption("--lease-ms <ms>", "an allocation not renewed or committed within this is released", intArg(10, 3_600_000), 10_000))
    .addOption(envOption("--quarantine-ms <ms>", "slots of aborted or expired writes stay unused this long (late one-sided writes)", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--hold-ms <ms>", "a committed request that is never consumed gives its pins back after this", intArg(10, 3_600_000), 60_000))
    .addOption(envOption("--transport <kind>", "data planes to offer: auto (UCX when available, and TCP), ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--lock-memory <mode>", "mlock the pool: auto (try, warn if not possible), true (fail if not possible), false", lockArg, "auto" as const))
    .addOption(envOption("--kv-wait-ms <ms>", "how long Generate waits for a request's KV chunks before recomputing or failing", intArg(1, 3_600_000), 30_000))
    .addOption(envOption("--recompute-policy <policy>", "when a needed KV chunk is lost: recompute it locally or fail the request", choiceArg(["recompute", "fail"] as const), "recompute" as const))
    .addOption(envOption("--metrics-listen <host:port>", "HTTP address for /metrics", hostPortArg))
    .addOption(envOption("--health-listen <host:port>", "extra plaintext gRPC endpoint serving only grpc.health.v1 (kubelet probes when the node uses mTLS)", hostPortArg))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may take before they are released", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--admin-token <token>", "token kvctl must send for admin actions (evict, abort); without one, only loopback callers may"))
    .addOption(envOption("--admin-identity <names>", "with mutual TLS: client certificate names (CN, DNS or URI SAN; comma separated) allowed admin actions; default any from --tls-ca"))
    .addOption(envOption("--node-id <id>", "name of this node in logs and inspection"))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "info"))
    .addHelpText(
      "after",
      `
${TLS_HELP}
A TLS node offers only the TLS'd TCP data plane: UCX carries no TLS (--allow-plaintext-ucx offers it).

Examples:
  kvbridge decode --no-engine --listen 127.0.0.1:50061 --pool-slots 1024 --slot-bytes 1MiB
  KVBRIDGE_POOL_SLOTS=4096 kvbridge decode --model ./model.gguf --listen 0.0.0.0:50061 --data-listen 0.0.0.0:50062`,
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
      let engine: LlamaEngine | undefined;
      let engineService: DecodeEngineService | undefined;
      let serving = false;
      let node: DecodeNode | undefined;
      // The node serves health (NOT_SERVING), inspection and metrics while the engine loads.
      const engineLoad = flags.engine
        ? openEngine(flags).then(async (e) => {
            if (e.maxChunkBytes > flags.slotBytes) {
              await e.close();
              throw new Error(
                `a ${flags.chunkTokens}-token KV chunk of this model is ${e.maxChunkBytes} bytes but --slot-bytes is ${flags.slotBytes}; raise --slot-bytes to at least ${e.maxChunkBytes} or lower --chunk-tokens`,
              );
            }
            engine = e;
            return e;
          })
        : undefined;
      const extraServices = flags.engine
        ? (rx: KvReceiver) => {
            const loaded = engineLoad!.then((e) => {
              rx.setFingerprint(e.fingerprint);
              engineService = decodeEngineService({ engine: e, receiver: rx, policy: flags.recomputePolicy, kvWaitMs: flags.kvWaitMs, logger: log, serving: () => serving });
            });
            loaded.catch(() => undefined);
            return [{ name: "kvbridge.v1.Decode", definition: kvbridgeV1().Decode.service, implementation: lazyDecodeHandlers(() => engineService) as unknown as grpc.UntypedServiceImplementation }];
          }
        : undefined;
      node = await startDecodeNode({
        ucxDataPlane: loadUcxReceiver,
        fingerprint: "",
        loading: engineLoad,
        extraServices,
        listen: flags.listen,
        dataListen: flags.dataListen,
        advertiseHost: flags.advertiseHost,
        poolSlots: flags.poolSlots,
        slotBytes: flags.slotBytes,
        leaseMs: flags.leaseMs,
        quarantineMs: flags.quarantineMs,
        holdMs: flags.holdMs,
        transport,
        lockMemory: flags.lockMemory,
        nodeId: flags.nodeId,
        logger: log,
        metricsListen: flags.metricsListen,
        healthListen: flags.healthListen,
        adminToken: flags.adminToken,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        dataTls: tls,
        adminIdentities,
      });
      if (tls) log.info({ certificate: tls.names, notAfter: tls.notAfter.toISOString(), adminIdentities }, "mutual TLS on gRPC and the TCP data plane");
      serving = true;
      const running = node;
      engineLoad?.then(
        (e) => log.info({ model: e.modelId, fingerprint: e.fingerprint }, "engine loaded: decode node serving"),
        async (err: unknown) => {
          log.error({ err: (err as Error).message }, "engine failed to load");
          process.stderr.write(`kvbridge: ${(err as Error).message}\n`);
          await running.close();
          process.exit(1);
        },
      );
      onShutdownSignal(log, async () => {
        serving = false;
        const deadline = Date.now() + flags.drainTimeout;
        while ((engineService?.activeRequests() ?? 0) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        await running.drain(Math.max(0, deadline - Date.now()));
        await engine?.close();
      });
    });
}
