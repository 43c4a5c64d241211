// Which store requests repair which: when a request's deduped key fails (its writer, another
// request, aborted or expired), the request's own sender writes the key again through a repair
// Alloc. Each repair round is a store request of its own (the store stays one state machine with
// one owner per entry); the receiver links it here to the request it repairs, and answers for the
// group under the request's id: key states, chunk views, Commit, Renew, Release, Abort.

import { randomBytes } from "node:crypto";
import { MAX_ID_LENGTH } from "../store/kv-store.js";

/** Most repair rounds one request may start: each re-writes keys whose writer failed again. */
export const MAX_REPAIR_ROUNDS = 8;

export class RepairGroups {
  /** Request id -> its repair requests' ids by round. */
  private readonly byParent = new Map<string, Map<number, string>>();
  private readonly parentOf = new Map<string, string>();

  /** The repair request of `parent`'s round, if that round was started. */
  round(parent: string, round: number): string | undefined {
    return this.byParent.get(parent)?.get(round);
  }

  /**
   * A fresh id for a repair round. Unguessable, so no caller can take it first; it starts with the
   * request's id so kvctl shows whose repair it is.
   */
  newId(parent: string, round: number): string {
    const suffix = `~repair${round}-${randomBytes(6).toString("hex")}`;
    return parent.slice(0, MAX_ID_LENGTH - suffix.length) + suffix;
  }

  add(parent: string, round: number, id: string): void {
    let rounds = this.byParent.get(parent);
    if (!rounds) {
      rounds = new Map();
      this.byParent.set(parent, rounds);
    }
    rounds.set(round, id);
    this.parentOf.set(id, parent);
  }

  /** The repair requests of `parent`, oldest round first (a later round's answer wins). */
  repairsOf(parent: string): string[] {
    const rounds = this.byParent.get(parent);
    if (!rounds) return [];
    return [...rounds.entries()].sort((a, b) => a[0] - b[0]).map(([, id]) => id);
  }

  parent(id: string): string | undefined {
    return this.parentOf.get(id);
  }

  /** Forgets `parent`'s group; returns its repair requests' ids. */
  drop(parent: string): string[] {
    const ids = this.repairsOf(parent);
    this.byParent.delete(parent);
    for (const id of ids) this.parentOf.delete(id);
    return ids;
  }
}
