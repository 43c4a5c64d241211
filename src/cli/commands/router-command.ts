// `kvbridge router`: the OpenAI-compatible entry point in front of prefill and decode nodes.
import { Command } from "commander";
import {
  GENERATE_TIMEOUT_MS,
  MAX_PROMPT_CHARS,
  PLAN_TIMEOUT_MS,
  PREFILL_TIMEOUT_MS,
  ROUTER_GENERATE_IDLE_MS,
  ROUTER_HEALTH_INTERVAL_MS,
  ROUTER_HEALTH_TIMEOUT_MS,
} from "../../config/defaults.js";
import type { HostPort } from "../../roles/host-port.js";
import { parsePeerSource } from "../../roles/router/peer-discovery.js";
import { startRouter } from "../../roles/router/router-role.js";
import { createLogger } from "../../observability/logger.js";
import { envOption } from "../env-option.js";
import { choiceArg, hostPortArg, intArg } from "../option-parsers.js";
import { onShutdownSignal } from "../process-lifecycle.js";
import { grpcChannelCredentials } from "../../security/grpc-credentials.js";
import { addHttpEdgeOptions, httpEdgeFromFlags, type HttpEdgeFlags } from "./http-edge-flags.js";
import { addTlsOptions, tlsFromFlags, type TlsFlags } from "./tls-flags.js";

interface RouterFlags extends TlsFlags, HttpEdgeFlags {
  listen: HostPort;
  prefill?: string;
  prefillDns?: string;
  decode?: string;
  decodeDns?: string;
  drainTimeout: number;
  planTimeout: number;
  prefillTimeout: number;
  generateTimeout: number;
  generateIdleTimeout: number;
  healthInterval: number;
  healthTimeout: number;
  maxPromptChars: number;
  defaultModel?: string;
  logLevel: string;
}

export function routerCommand(): Command {
  return addHttpEdgeOptions(addTlsOptions(new Command("router")))
    .description("run the router: OpenAI-compatible HTTP API that sends each request through a prefill and a decode node")
    .addOption(envOption("--listen <host:port>", "HTTP address", hostPortArg, hostPortArg("127.0.0.1:8000"), "127.0.0.1:8000"))
    .addOption(envOption("--prefill <list>", "prefill nodes' gRPC addresses, comma separated"))
    .addOption(envOption("--prefill-dns <name:port>", "a DNS name resolving to every prefill node (headless Service)"))
    .addOption(envOption("--decode <list>", "decode nodes' gRPC addresses, comma separated"))
    .addOption(envOption("--decode-dns <name:port>", "a DNS name resolving to every decode node (headless Service)"))
    .addOption(envOption("--drain-timeout <ms>", "on SIGTERM, how long in-flight requests may take", intArg(0, 3_600_000), 30_000))
    .addOption(envOption("--plan-timeout <ms>", "bound on a prefill node's Plan (tokenizing the prompt); on expiry the next prefill node is tried", intArg(1, 3_600_000), PLAN_TIMEOUT_MS))
    .addOption(envOption("--prefill-timeout <ms>", "bound on a Prefill (evaluation and KV transfer)", intArg(1, 86_400_000), PREFILL_TIMEOUT_MS))
    .addOption(envOption("--generate-timeout <ms>", "bound on a whole generation", intArg(1, 86_400_000), GENERATE_TIMEOUT_MS))
    .addOption(
      envOption("--generate-idle-timeout <ms>", "a generation whose decode node sends nothing for this long ends with an error (SSE error event, or HTTP 504)", intArg(1, 3_600_000), ROUTER_GENERATE_IDLE_MS),
    )
    .addOption(envOption("--health-interval <ms>", "how often each node's gRPC health is checked (a node saying SERVING is back in rotation within it)", intArg(10, 60_000), ROUTER_HEALTH_INTERVAL_MS))
    .addOption(envOption("--health-timeout <ms>", "a node whose health check takes longer, twice in a row, is out of rotation (frozen, partitioned)", intArg(10, 60_000), ROUTER_HEALTH_TIMEOUT_MS))
    .addOption(envOption("--max-prompt-chars <n>", "longest prompt sent on to the nodes, in characters; longer ones are answered 400 at once", intArg(1, 1 << 30), MAX_PROMPT_CHARS))
    .addOption(envOption("--default-model <id>", "the model of requests that name none (an id or alias); default: the only model the nodes serve, or the default model they agree on"))
    .addOption(envOption("--log-level <level>", "pino log level", choiceArg(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const), "info"))
    .addHelpText(
      "after",
      `
Each node's grpc.health.v1 is checked every --health-interval: a node that is unreachable, not
SERVING or slower than --health-timeout is out of rotation until it answers SERVING again. GET
/health and /readyz answer 200 while a prefill + decode pair is in rotation, 503 otherwise.

Requests are routed by their \`model\` (an id or alias a node lists; GET /v1/models lists them) to a
prefill and a decode node that both serve it; an unknown model is a 404 (model_not_found). A request
with no model (or "kvbridge") gets --default-model, or the only model served.

With --api-key (or --api-key-file, or KVBRIDGE_API_KEY) every request but GET /health, /healthz,
/readyz, /version and /metrics must carry Authorization: Bearer <key>; others are answered 401
(invalid_api_key). --api-key-protect-all protects those too (probes then need the key).

With --tls-cert, --tls-key and --tls-ca the router calls prefill and decode nodes over mutual TLS,
presenting its certificate and verifying theirs (the OpenAI HTTP API itself stays plain HTTP).

Examples:
  kvbridge router --listen 0.0.0.0:8000 --prefill 127.0.0.1:50051 --decode 127.0.0.1:50061
  kvbridge router --prefill-dns kvbridge-prefill:50051 --decode-dns kvbridge-decode:50061
  KVBRIDGE_API_KEY=s3cret kvbridge router --prefill 127.0.0.1:50051 --decode 127.0.0.1:50061 --allowed-origins https://app.example`,
    )
    .action(async (flags: RouterFlags) => {
      const log = createLogger({ name: "kvbridge-router", level: flags.logLevel });
      const tls = tlsFromFlags(flags);
      const edge = httpEdgeFromFlags(flags, log);
      if (tls) log.info({ certificate: tls.names, notAfter: tls.notAfter.toISOString(), serverName: tls.serverName }, "mutual TLS to prefill and decode nodes");
      const router = await startRouter({
        channelCredentials: tls ? grpcChannelCredentials(tls) : undefined,
        listen: flags.listen,
        prefill: parsePeerSource(flags.prefill, flags.prefillDns, "prefill"),
        decode: parsePeerSource(flags.decode, flags.decodeDns, "decode"),
        logger: log,
        planTimeoutMs: flags.planTimeout,
        prefillTimeoutMs: flags.prefillTimeout,
        generateTimeoutMs: flags.generateTimeout,
        generateIdleMs: flags.generateIdleTimeout,
        healthIntervalMs: flags.healthInterval,
        healthTimeoutMs: flags.healthTimeout,
        maxPromptChars: flags.maxPromptChars,
        ...edge,
        defaultModel: flags.defaultModel,
      });
      onShutdownSignal(log, () => router.drain(flags.drainTimeout));
    });
}
