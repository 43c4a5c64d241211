// Node addresses are internal: a client-facing error message names "a node" where the router's
// message (kept whole in its logs) names host:port. Addresses are IPv4, IPv6 (bracketed or as
// Node's socket errors print it), DNS names starting with a letter, each with a port, optionally
// after gRPC's dns:/ipv4:/ipv6: scheme; a comma-separated run of them becomes one phrase ("2 nodes").
const HOST = String.raw`(?:(?:dns|ipv4|ipv6):(?:\/\/\/)?)?(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{1,4}|[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)`;
const ADDRESS = String.raw`${HOST}:\d{1,5}(?!\d)`;
const RUN = new RegExp(String.raw`(?<![\w.:\[-])${ADDRESS}(?:, ${ADDRESS})*`, "g");
const ONE = new RegExp(ADDRESS, "g");

/** Cheap test first: a message with no ":<digit>" names no address (most do not). */
const MAY_HOLD_ADDRESS = /:\d/;

export function redactNodeAddresses(message: string): string {
  if (!MAY_HOLD_ADDRESS.test(message)) return message;
  return message.replace(RUN, (run) => {
    const n = run.match(ONE)?.length ?? 1;
    return n === 1 ? "a node" : `${n} nodes`;
  });
}
