// The router's choice of nodes: pure, synchronous functions of the nodes' states that reserve what
// they pick in the same step as they decide, so simultaneous requests always see each other's choices.
//
// A request is routed in steps because the prefix choices need the prompt's chunk keys (Plan, on a
// prefill node): a prefill node is reserved before Plan is sent; once the keys are known, each
// prefill node's cached prefix (CachedPrefix) and each decode node's prefix match (MatchPrefix) are
// asked, and in the tick the answers are complete the Prefill's node is chosen (the reservation moves
// from the Plan's node when another holds more of the prompt) and the decode node reserved.
// Nothing awaits between a decision and its reservation; the caller releases each reservation when
// its part of the request ends. Nodes out of rotation (node-health.ts writes `reachable` from each
// node's grpc.health.v1) are never chosen.
//
// Models: each node's model list (its ListModels, written by model-directory.ts) is part of its
// state. A request for a model is routed only to nodes that serve it (by id or alias), and a decode
// node is paired with the Plan's fingerprint only when its own for that model is the same or not yet
// known (not resident): the decode node refuses KV of another fingerprint anyway (INCOMPATIBLE), and
// the router never pairs a prefill and a decode node it knows to run different models.

/** What the router knows of one node. */
export interface NodeState {
  /** Requests holding a reservation on the node. */
  inFlight: number;
  /** In rotation: false while the node is down, not answering or not SERVING (node-health.ts). */
  reachable: boolean;
  /**
   * Out of rotation only because its connection was refused when last asked (a restarting process):
   * tried when no node of its kind is in rotation, since such a call fails at once or finds it back.
   * Never set for a node that said NOT_SERVING or did not answer in time (frozen).
   */
  lastResort?: boolean;
  /** The models the node serves, from its last ListModels; undefined until it answered once. */
  models?: readonly NodeModel[];
}

/** One model of a node's catalog as the router routes by it. */
export interface NodeModel {
  id: string;
  aliases: readonly string[];
  /** Its engine's fingerprint while resident; "" when not loaded (unknown until it loads). */
  fingerprint: string;
  state: string;
}

/** Every node the router has seen, by target (host:port). */
export type NodeStates = Map<string, NodeState>;

/** A node's in-flight slot held by one request; release() is idempotent. */
export interface Reservation {
  readonly target: string;
  /** False for a last-resort choice (no node of its kind was in rotation). */
  readonly inRotation: boolean;
  release(): void;
}

/** One decode node's answer to MatchPrefix: how many leading chunk keys it holds, or undefined when it did not answer. */
export interface PrefixAnswer {
  target: string;
  matched: number | undefined;
}

export function nodeState(nodes: NodeStates, target: string): NodeState {
  let s = nodes.get(target);
  if (!s) nodes.set(target, (s = { inFlight: 0, reachable: true }));
  return s;
}

function reserve(nodes: NodeStates, target: string): Reservation {
  const s = nodeState(nodes, target);
  s.inFlight++;
  let held = true;
  return {
    target,
    inRotation: s.reachable,
    release() {
      if (!held) return;
      held = false;
      s.inFlight--;
    },
  };
}

/**
 * The least loaded reachable prefill node (the first listed on a tie) not in `exclude` (nodes this
 * request already failed on), reserved; when none is, the least loaded last-resort node. Undefined
 * when there is neither.
 */
export function reservePrefill(nodes: NodeStates, targets: readonly string[], exclude?: ReadonlySet<string>): Reservation | undefined {
  const lastResort = inRotation(nodes, targets).every((t) => exclude?.has(t));
  let best: string | undefined;
  let bestLoad = Infinity;
  for (const t of targets) {
    const s = nodeState(nodes, t);
    if (!(s.reachable || (lastResort && s.lastResort)) || exclude?.has(t)) continue;
    if (s.inFlight < bestLoad) {
      best = t;
      bestLoad = s.inFlight;
    }
  }
  return best === undefined ? undefined : reserve(nodes, best);
}

/**
 * Prefix affinity first (the reachable node that answered with the longest match, whatever its load:
 * its KV need not move), then the least loaded, then the first listed; reserved. When no answering
 * node is in rotation, last-resort nodes that answered count. Undefined when none answered.
 */
export function reserveDecode(nodes: NodeStates, answers: readonly PrefixAnswer[]): { reservation: Reservation; matched: number } | undefined {
  let best: string | undefined;
  let bestMatched = -1;
  let bestLoad = Infinity;
  const lastResort = !answers.some((a) => nodeState(nodes, a.target).reachable);
  for (const a of answers) {
    if (a.matched === undefined) continue;
    const s = nodeState(nodes, a.target);
    if (!(s.reachable || (lastResort && s.lastResort))) continue;
    if (a.matched > bestMatched || (a.matched === bestMatched && s.inFlight < bestLoad)) {
      best = a.target;
      bestMatched = a.matched;
      bestLoad = s.inFlight;
    }
  }
  return best === undefined ? undefined : { reservation: reserve(nodes, best), matched: bestMatched };
}

/** One prefill node's answer to CachedPrefix: how many leading chunk keys its prefix cache holds (0 when it did not answer). */
export interface CachedPrefixAnswer {
  target: string;
  chunks: number;
}

/**
 * The prefill node for a request's Prefill, once its chunk keys are known: the reachable node whose
 * prefix cache holds the most leading chunks (whatever its load: only the rest of the prompt is
 * evaluated there), then the least loaded, then `held`'s (no move), then the first listed. `held` is
 * the request's own reservation (its Plan's node, or undefined when it holds none now): it does not
 * count against its node's load, it is always eligible, and it moves to the chosen node in this call
 * (released, the chosen node reserved) when that is another. When no answering node is in rotation,
 * last-resort nodes that answered count. Undefined only when `held` is undefined and no node is
 * eligible.
 */
export function reservePrefillForPrefix(nodes: NodeStates, held: Reservation | undefined, answers: readonly CachedPrefixAnswer[]): { reservation: Reservation; cached: number } | undefined {
  const lastResort = !answers.some((a) => nodeState(nodes, a.target).reachable);
  let best: string | undefined;
  let bestChunks = -1;
  let bestLoad = Infinity;
  for (const a of answers) {
    const s = nodeState(nodes, a.target);
    const own = a.target === held?.target;
    if (!(own || s.reachable || (lastResort && s.lastResort))) continue;
    const load = own ? s.inFlight - 1 : s.inFlight;
    if (a.chunks > bestChunks || (a.chunks === bestChunks && (load < bestLoad || (load === bestLoad && own)))) {
      best = a.target;
      bestChunks = a.chunks;
      bestLoad = load;
    }
  }
  if (best === undefined) return held ? { reservation: held, cached: 0 } : undefined;
  if (best === held?.target) return { reservation: held, cached: bestChunks };
  held?.release();
  return { reservation: reserve(nodes, best), cached: bestChunks };
}

/** The targets in rotation, in their order. */
export function inRotation(nodes: NodeStates, targets: readonly string[]): string[] {
  return targets.filter((t) => nodeState(nodes, t).reachable);
}

/** The nodes worth asking: those in rotation, or when there is none, the last-resort ones. */
export function candidates(nodes: NodeStates, targets: readonly string[]): string[] {
  const up = inRotation(nodes, targets);
  return up.length > 0 ? up : targets.filter((t) => nodeState(nodes, t).lastResort === true);
}

/**
 * Whether some model is served by a reachable prefill node and a reachable decode node (as their last
 * ListModels said): the router can serve. A node whose models are not known yet counts for none.
 */
export function hasReachablePair(nodes: NodeStates, prefill: readonly string[], decode: readonly string[]): boolean {
  const served = (targets: readonly string[]): Set<string> =>
    new Set(targets.filter((t) => nodeState(nodes, t).reachable).flatMap((t) => (nodes.get(t)?.models ?? []).map((m) => m.id)));
  const decodeModels = served(decode);
  return [...served(prefill)].some((id) => decodeModels.has(id));
}

/** The node's model named `name` (its id or one of its aliases), if the node serves it. */
export function servedModel(state: NodeState | undefined, name: string): NodeModel | undefined {
  return state?.models?.find((m) => m.id === name || m.aliases.includes(name));
}

/**
 * The targets (in their order) that serve `model`; with a fingerprint, only those whose own for it is
 * the same or unknown (not resident). `model` undefined: every target (no model routing).
 */
export function servingTargets(nodes: NodeStates, targets: readonly string[], model: string | undefined, fingerprint?: string): string[] {
  if (model === undefined) return [...targets];
  return targets.filter((t) => {
    const m = servedModel(nodes.get(t), model);
    return m !== undefined && (!fingerprint || !m.fingerprint || m.fingerprint === fingerprint);
  });
}
