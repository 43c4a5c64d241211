#!/usr/bin/env bash
# PD benches on this machine: decode isolated from prefill, then goodput, PD against colocated,
# each figure with its baseline from the same run and the load average printed around it.
# Usage: scripts/pd-bench.sh [--quick] [any flag of bench/pd-isolation-bench.ts and bench/goodput-bench.ts]
# Needs taskset (util-linux) for the pinning; without it the nodes run unpinned and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || echo "pd-bench: taskset not found: nodes will not be pinned" >&2
echo "pd-bench: $(nproc) cpus; $(uptime)" >&2
node --import tsx bench/pd-isolation-bench.ts "$@"
echo "pd-bench: $(uptime)" >&2
node --import tsx bench/goodput-bench.ts "$@"
echo "pd-bench: $(uptime)" >&2
