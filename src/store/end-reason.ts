// How a request ended, as data: the store branches on `kind`, metrics label by `kind`, and
// describeEndReason is the one place a reason becomes words (logs, error messages, late answers).

export type EndReason =
  | { kind: "released" }
  | { kind: "sender_abort"; detail?: string }
  | { kind: "decode_incomplete" }
  | { kind: "admin"; detail?: string }
  | { kind: "connection_lost"; detail?: string }
  | { kind: "lease_expired" }
  | { kind: "hold_expired" }
  | { kind: "commit_unproven"; detail: string };

export type EndReasonKind = EndReason["kind"];

export function describeEndReason(r: EndReason): string {
  switch (r.kind) {
    case "released":
      return "released after use";
    case "sender_abort":
      return r.detail ? `aborted by its sender: ${r.detail}` : "aborted by its sender";
    case "decode_incomplete":
      return "aborted: decode finished without a complete transfer";
    case "admin":
      return r.detail ? `admin abort: ${r.detail}` : "admin abort";
    case "connection_lost":
      return r.detail ? `data connection lost before Commit: ${r.detail}` : "data connection lost before Commit";
    case "lease_expired":
      return "lease expired: no Alloc, Renew or Commit within the lease, its writes were released";
    case "hold_expired":
      return "hold expired: committed but never released within the hold time, its pins were dropped";
    case "commit_unproven":
      return `commit refused, not every byte was proven written: ${r.detail}`;
  }
}
