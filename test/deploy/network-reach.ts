// NetworkPolicy ingress semantics, enough to ask "may this pod open a TCP connection to that
// port of that pod?" about a render. Peers other than same-namespace podSelectors are refused
// (not modelled) rather than guessed at.
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import type { IContainer } from "kubernetes-models/v1/Container";
import { resolveContainerPort, selects } from "./workloads.js";

export interface PodEnd {
  namespace: string;
  labels: Record<string, string>;
}

export interface Destination extends PodEnd {
  containers: IContainer[];
}

/** A source pod, or "outside": a client in another namespace or outside the cluster. */
export type Source = PodEnd | "outside";

function portMatches(dest: Destination, rulePort: number | string | undefined, endPort: number | undefined, port: number): boolean {
  if (rulePort === undefined) return true;
  const start = typeof rulePort === "number" ? rulePort : dest.containers.map((c) => resolveContainerPort(c, rulePort)).find((p) => p !== undefined);
  if (start === undefined) return false;
  return port >= start && port <= (endPort ?? start);
}

/** Whether `source` may connect to TCP `port` of `dest` under `policies`. */
export function ingressAllowed(policies: INetworkPolicy[], source: Source, dest: Destination, port: number): boolean {
  const governing = policies.filter(
    (p) =>
      (p.metadata?.namespace ?? "") === dest.namespace &&
      selects(p.spec?.podSelector, dest.labels) &&
      (p.spec?.policyTypes ?? ["Ingress"]).includes("Ingress"),
  );
  // A pod no policy selects for ingress accepts every connection.
  if (governing.length === 0) return true;
  return governing.some((policy) =>
    (policy.spec?.ingress ?? []).some((rule) => {
      const ports = rule.ports ?? [];
      const portOk =
        ports.length === 0 ||
        ports.some((p) => (p.protocol ?? "TCP") === "TCP" && portMatches(dest, p.port, p.endPort, port));
      if (!portOk) return false;
      const peers = rule.from ?? [];
      if (peers.length === 0) return true;
      return peers.some((peer) => {
        if (peer.namespaceSelector !== undefined || peer.ipBlock !== undefined) {
          throw new Error(`NetworkPolicy ${policy.metadata?.name}: namespaceSelector and ipBlock peers are not modelled by this test`);
        }
        return source !== "outside" && source.namespace === dest.namespace && selects(peer.podSelector, source.labels);
      });
    }),
  );
}
