// `kvctl evict ADDR --key K | --unpinned`: frees READY entries no request pins (cache a node should
// forget). A pinned or WRITING key is refused by the node, never freed under its request.
import { Command } from "commander";
import { KvbridgeError } from "../../errors/kvbridge-error.js";
import { addAdminOptions, ADMIN_HELP, type AdminFlags } from "./admin-options.js";
import { runFormatted, writeStructured, writeText } from "./command-runner.js";
import { addCommonOptions, clientOptions, type CommonFlags } from "./common-options.js";
import { EXIT } from "./exit-codes.js";
import { NodeClient } from "./node-client.js";
import { resolveNodes, singleNode } from "./node-targets.js";
import { isStructured } from "./output-format.js";
import { printable } from "./terminal-text.js";

interface EvictFlags extends CommonFlags, AdminFlags {
  key?: string;
  unpinned: boolean;
}

export function evictCommand(): Command {
  const cmd = new Command("evict")
    .description("evict one unpinned READY key, or every unpinned READY key, from a node's pool")
    .argument("[addr]", "node gRPC address (host:port)")
    .option("--key <key>", "the key to evict (see kvctl keys)")
    .option("--unpinned", "evict every READY entry no request pins", false);
  addAdminOptions(cmd);
  return addCommonOptions(cmd)
    .addHelpText(
      "after",
      `${ADMIN_HELP}
A key that is pinned or still being written is refused (exit 6) and left as it is; an unknown key
exits 5.

Examples:
  kvctl evict 127.0.0.1:50061 --key 3fa2c1...
  KVBRIDGE_ADMIN_TOKEN=s3cret kvctl evict 10.0.0.7:50061 --unpinned --json`,
    )
    .action(async (addr: string | undefined, flags: EvictFlags) => {
      await runFormatted(flags, async (format, ctx) => {
        if (!!flags.key === flags.unpinned) throw new KvbridgeError("INVALID_ARGUMENT", "kvctl evict needs exactly one of --key K or --unpinned");
        const address = singleNode(resolveNodes(addr ? [addr] : [], flags.node), "evict");
        ctx.node = address;
        const c = new NodeClient(address, clientOptions(flags, { adminToken: flags.adminToken }));
        try {
          const res = await c.evict(flags.key ? { key: flags.key } : { allUnpinned: true });
          if (isStructured(format)) writeStructured(format, { address, key: flags.key ?? null, evicted: res.evicted, slots_free: res.slotsFree });
          else {
            const what = flags.key ? `key ${printable(flags.key)}` : `${res.evicted} unpinned READY ${res.evicted === 1 ? "entry" : "entries"}`;
            writeText(`evicted ${what} from ${address}; ${res.slotsFree} slot(s) free now\n`);
          }
          return EXIT.OK;
        } finally {
          c.close();
        }
      });
    });
}
