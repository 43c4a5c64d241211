#!/usr/bin/env node
// kvbridge: the node roles (decode, prefill, router, up) and the tools around them (send, generate).
import { Command, CommanderError } from "commander";
import { setModelCacheDir } from "../engine/model-writer.js";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import { VERSION } from "../roles/version.js";
import { decodeCommand } from "./commands/decode-command.js";
import { generateCommand } from "./commands/generate-command.js";
import { makeModelCommand } from "./commands/make-model-command.js";
import { prefillCommand } from "./commands/prefill-command.js";
import { routerCommand } from "./commands/router-command.js";
import { sendCommand } from "./commands/send-command.js";
import { upCommand } from "./commands/up-command.js";

// Generated models go to $KVBRIDGE_CACHE_DIR/models when set (a read-only install), else the package's .cache.
setModelCacheDir(process.env.KVBRIDGE_CACHE_DIR);

const program = new Command("kvbridge")
  .description("disaggregated prefill/decode KV-cache transfer: prefill and decode nodes, router, tools")
  .version(VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

for (const cmd of [upCommand(), prefillCommand(), decodeCommand(), routerCommand(), sendCommand(), generateCommand(), makeModelCommand()]) {
  program.addCommand(cmd.exitOverride());
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Usage errors were already printed by commander; --help and --version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  const e = toKvbridgeError(err);
  process.stderr.write(`kvbridge: ${e.message}\n`);
  process.exit(1);
});
