// `kvbridge up`: router + one prefill node + one decode node on loopback with the default model,
// in one process (each still talks to the others over loopback gRPC and the data plane).
import type * as grpc from "@grpc/grpc-js";
import { Command } from "commander";
import { decodeEngineService, type DecodeEngineService } from "../../services/decode-service.js";
import { startDecodeNode } from "../../roles/decode-role.js";
import { hostPortArg as hp } from "../option-parsers.js";
import { startPrefillNode } from "../../roles/prefill-role.js";
import { startRouter } from "../../roles/router/router-role.js";
import { createLogger } from "../../observability/logger.js";
import { nodeMetrics } from "../../observability/metrics.js";
import { kvbridgeV1 } from "../../wire/proto.js";
import { addEngineOptions, openEngine, type EngineFlags } from "../engine-options.js";
import { envOption } from "../env-option.js";
import { loadUcxReceiver } from "../ucx-loader.js";
import { choiceArg, intArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { closeTransports, createSenderTransports } from "../sender-transports.js";
import { grpcChannelCredentials, grpcServerCredentials } from "../../security/grpc-credentials.js";
import { addPlaintextUcxOption, addTlsOptions, effectiveTransport, tlsFromFlags, useTlsDataPlane, type PlaintextUcxFlags, type TlsFlags } from "./tls-flags.js";

interface UpFlags extends EngineFlags, TlsFlags, PlaintextUcxFlags {
  port: number;
  host: string;
  transport: "auto" | "tcp" | "ucx";
  poolSlots: number;
  logLevel: string;
}

export function upCommand(): Command {
  const cmd = new Command("up").description("start router + prefill + decode on loopback with the default model (a laptop or a demo)");
  addEngineOptions(cmd);
  addTlsOptions(cmd);
  addPlaintextUcxOption(cmd);
  return cmd
    .addOption(envOption("--port <n>", "router HTTP port", intArg(0, 65_535), 8000))
    .addOption(envOption("--host <host>", "address the router listens on", undefined, "127.0.0.1"))
    .addOption(envOption("--transport <kind>", "data plane between the nodes: auto, ucx or tcp", choiceArg(["auto", "ucx", "tcp"] as const), "auto" as const))
    .addOption(envOption("--pool-slots <n>", "KV slots in the decode node's pool", intArg(1, 1 << 24), 512))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "warn"))
    .addHelpText("after", "\nExamples:\n  kvbridge up\n  kvbridge up --port 9000 --model ./model.gguf")
    .action(async (flags: UpFlags) => {
      const log = createLogger({ name: "kvbridge-up", level: flags.logLevel });
      // With --tls-*: the three nodes talk mutual TLS to each other over loopback, with one certificate.
      const tls = tlsFromFlags(flags);
      const transport = effectiveTransport(flags.transport, tls, flags, log);
      process.stderr.write("kvbridge up: loading the model (the default one is written on first use)...\n");
      const [prefillEngine, decodeEngine] = await Promise.all([openEngine(flags), openEngine(flags)]);
      // One registry for the three nodes of this process: the router's /metrics shows all of them.
      const metrics = nodeMetrics(undefined, { defaultMetrics: true });
      const slotBytes = Math.ceil(decodeEngine.maxChunkBytes / 4096) * 4096;
      let engineService: DecodeEngineService | undefined;
      let serving = false;
      const decode = await startDecodeNode({
        ucxDataPlane: loadUcxReceiver,
        listen: hp("127.0.0.1:0"),
        dataListen: hp("127.0.0.1:0"),
        poolSlots: flags.poolSlots,
        slotBytes,
        leaseMs: 10_000,
        quarantineMs: 30_000,
        transport,
        lockMemory: "auto",
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        dataTls: tls,
        nodeId: "decode-0",
        metrics,
        fingerprint: decodeEngine.fingerprint,
        logger: log.child({ role: "decode" }),
        extraServices: (rx) => {
          engineService = decodeEngineService({ engine: decodeEngine, receiver: rx, policy: "recompute", kvWaitMs: 30_000, logger: log.child({ role: "decode" }), serving: () => serving });
          return [{ name: "kvbridge.v1.Decode", definition: kvbridgeV1().Decode.service, implementation: engineService.handlers as unknown as grpc.UntypedServiceImplementation }];
        },
      });
      serving = true;
      const transports = await createSenderTransports(transport, log);
      await useTlsDataPlane(transports, tls, log);
      const prefill = await startPrefillNode({ listen: hp("127.0.0.1:0"), engine: prefillEngine, transports, transport, nodeId: "prefill-0", logger: log.child({ role: "prefill" }), metrics,
        grpcCredentials: tls ? grpcServerCredentials(tls) : undefined,
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
      });
      const router = await startRouter({
        listen: hp(`${flags.host}:${flags.port}`),
        prefill: { kind: "static", targets: [prefill.grpcAddress] },
        decode: { kind: "static", targets: [decode.grpcAddress] },
        logger: log.child({ role: "router" }),
        metrics,
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
      });
      process.stdout.write(
        `kvbridge is up: ${router.url}  (model ${decodeEngine.modelId}; prefill ${prefill.grpcAddress}, decode ${decode.grpcAddress}, data plane ${decode.transports.join("+")})\n` +
          `try:\n  curl -s ${router.url}/v1/completions -H 'content-type: application/json' -d '{"prompt": "Once upon a time", "max_tokens": 32}'\n` +
          `stop with Ctrl-C\n`,
      );
      onShutdownSignal(log, async () => {
        await router.drain(10_000);
        await prefill.drain(5_000);
        serving = false;
        void engineService;
        await decode.drain(5_000);
        await closeTransports(transports);
        await Promise.all([prefillEngine.close(), decodeEngine.close()]);
      });
    });
}
