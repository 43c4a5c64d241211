// Run inside a test-network namespace, this relays Unix sockets (which every namespace can open) to
// TCP addresses reachable from that namespace, so tests in the root namespace reach the hosts:
//   ip netns exec NS node --import tsx test/support/netns-relay.ts /tmp/x/router.sock=10.77.0.10:8000 ...
// It prints "relay ready" once every socket listens.
import { createConnection, createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";

function relay(socketPath: string, host: string, port: number): Promise<void> {
  rmSync(socketPath, { force: true });
  const server = createServer((inbound: Socket) => {
    const outbound = createConnection({ host, port });
    // Either side failing ends both: the test sees the connection close as a client would.
    const end = (): void => {
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("error", end).on("close", end);
    outbound.on("error", end).on("close", end);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
}

async function main(argv: string[]): Promise<void> {
  if (argv.length === 0) throw new Error("usage: netns-relay.ts <socket>=<host>:<port> ...");
  await Promise.all(
    argv.map((spec) => {
      const m = /^(.+)=([^=]+):(\d+)$/.exec(spec);
      if (!m) throw new Error(`not <socket>=<host>:<port>: ${spec}`);
      return relay(m[1]!, m[2]!, Number(m[3]));
    }),
  );
  console.log("relay ready");
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
