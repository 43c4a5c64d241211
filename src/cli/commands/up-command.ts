// `kvbridge up`: router + one prefill node + one decode node on loopback with the default model (or
// the models of --model / --models-dir, each node holding its own),
// in one process (each still talks to the others over loopback gRPC and the data plane). The decode
// role is built exactly as `kvbridge decode` builds it, with its engine already loaded.
import { Command } from "commander";
import {
  DEFAULT_KV_WAIT_MS,
  DEFAULT_LEASE_MS,
  DEFAULT_QUARANTINE_MS,
  DEFAULT_UP_POOL_SLOTS,
  LOG_LEVELS,
  SLOT_ALIGNMENT_BYTES,
  TOOL_LOG_LEVEL,
  UP_DRAIN_TIMEOUT_MS,
  UP_PORT,
} from "../../config/defaults.js";
import { startDecodeRole } from "../../roles/decode-role.js";
import { hostPortArg as hp } from "../option-parsers.js";
import { startPrefillNode } from "../../roles/prefill-role.js";
import { startRouter } from "../../roles/router/router-role.js";
import { createLogger } from "../../observability/logger.js";
import { nodeMetrics } from "../../observability/metrics.js";
import { addNodeModelOptions, nodeModelsFromFlags, type NodeEngineFlags } from "../engine-options.js";
import { envOption } from "../env-option.js";
import { loadUcxReceiver } from "../ucx-loader.js";
import { choiceArg, intArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { closeTransports, createSenderTransports } from "../sender-transports.js";
import { grpcChannelCredentials, grpcServerCredentials } from "../../security/grpc-credentials.js";
import { addHttpEdgeOptions, httpEdgeFromFlags, type HttpEdgeFlags } from "./http-edge-flags.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, useTlsDataPlane, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

type UpFlags = NodeEngineFlags & TlsFlags & PlaintextUcxFlags & HttpEdgeFlags & {
  port: number;
  host: string;
  transport: "auto" | "tcp" | "ucx";
  poolSlots: number;
  logLevel: string;
};

export function upCommand(): Command {
  const cmd = new Command("up").description("start router + prefill + decode on loopback with the default model (a laptop or a demo)");
  addNodeModelOptions(cmd);
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  addHttpEdgeOptions(cmd);
  return cmd
    .addOption(envOption("--port <n>", "router HTTP port", intArg(0, 65_535), UP_PORT))
    .addOption(envOption("--host <host>", "address the router listens on", undefined, "127.0.0.1"))
    .addOption(envOption("--transport <kind>", "data plane between the nodes: auto, ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--pool-slots <n>", "KV slots in the decode node's pool", intArg(1, 1 << 24), DEFAULT_UP_POOL_SLOTS))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(LOG_LEVELS), TOOL_LOG_LEVEL))
    .addHelpText("after", "\nExamples:\n  kvbridge up\n  kvbridge up --port 9000 --model ./model.gguf\n  kvbridge up --models-dir ./models --models-max 2")
    .action(async (flags: UpFlags) => {
      const log = createLogger({ name: "kvbridge-up", level: flags.logLevel });
      // With --tls-*: the three nodes talk mutual TLS to each other over loopback, with one certificate.
      const tls = tlsFromFlags(flags);
      const transport = effectiveTransport(flags.transport, tls, flags, log);
      process.stderr.write("kvbridge up: loading the model (the default one is written on first use)...\n");
      const models = await nodeModelsFromFlags(flags);
      // One registry for the three nodes of this process: the router's /metrics shows all of them.
      const metrics = nodeMetrics(undefined, { defaultMetrics: true });
      const transports = await createSenderTransports(transport, log);
      await useTlsDataPlane(transports, tls, log);
      // The prefill node starts once its default model is loaded; the decode pool's slots are sized for that model's chunks.
      const prefill = await startPrefillNode({ listen: hp("127.0.0.1:0"), models, transports, transport, nodeId: "prefill-0", logger: log.child({ role: "prefill" }), metrics,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
      });
      const defaultEngine = prefill.models.engineOf(prefill.models.defaultModel)!;
      const slotBytes = Math.ceil(defaultEngine.maxChunkBytes / SLOT_ALIGNMENT_BYTES) * SLOT_ALIGNMENT_BYTES;
      const decode = await startDecodeRole({
        listen: hp("127.0.0.1:0"),
        dataListen: hp("127.0.0.1:0"),
        poolSlots: flags.poolSlots,
        slotBytes,
        leaseMs: DEFAULT_LEASE_MS,
        quarantineMs: DEFAULT_QUARANTINE_MS,
        transport,
        lockMemory: "auto",
        nodeId: "decode-0",
        logger: log.child({ role: "decode" }),
        models,
        recomputePolicy: "recompute",
        kvWaitMs: DEFAULT_KV_WAIT_MS,
        ucxDataPlane: loadUcxReceiver,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        dataTls: tls,
        metrics,
      });
      await decode.engineReady;
      const router = await startRouter({
        listen: hp(`${flags.host}:${flags.port}`),
        prefill: { kind: "static", targets: [prefill.grpcAddress] },
        decode: { kind: "static", targets: [decode.grpcAddress] },
        logger: log.child({ role: "router" }),
        metrics,
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
        ...httpEdgeFromFlags(flags, log),
        defaultModel: prefill.models.defaultModel,
      });
      process.stdout.write(
        `kvbridge is up: ${router.url}  (model ${prefill.models.defaultModel}, of ${prefill.models.catalog.ids().join(", ")}; prefill ${prefill.grpcAddress}, decode ${decode.grpcAddress}, data plane ${decode.transports.join("+")})\n` +
          `try:\n  curl -s ${router.url}/v1/completions -H 'content-type: application/json' -d '{"prompt": "Once upon a time", "max_tokens": 32}'\n` +
          `stop with Ctrl-C\n`,
      );
      onShutdownSignal(log, async () => {
        // One bound for the whole stop, front to back: no new request enters while the ones inside finish.
        const deadline = Date.now() + UP_DRAIN_TIMEOUT_MS;
        const left = (): number => Math.max(0, deadline - Date.now());
        await router.drain(left());
        await prefill.drain(left());
        await decode.drain(left());
        await closeTransports(transports);
      });
    });
}
