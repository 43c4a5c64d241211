#!/usr/bin/env node
// kvbridge: the node roles (decode, prefill, router, up) and the tools around them (send, generate).
import { Command, CommanderError } from "commander";
import { toKvbridgeError } from "../errors/kvbridge-error.js";
import { VERSION } from "../nodes/version.js";
import { decodeCommand } from "./commands/decode-command.js";
import { sendCommand } from "./commands/send-command.js";

const program = new Command("kvbridge")
  .description("disaggregated prefill/decode KV-cache transfer: prefill and decode nodes, router, tools")
  .version(VERSION)
  .showHelpAfterError("(run with --help for usage)")
  .exitOverride();

program.addCommand(decodeCommand().exitOverride());
program.addCommand(sendCommand().exitOverride());

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) {
    // Usage errors were already printed by commander; --help and --version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  const e = toKvbridgeError(err);
  process.stderr.write(`kvbridge: ${e.message}\n`);
  process.exit(1);
});
