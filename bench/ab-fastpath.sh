#!/bin/bash
# The fast path of two commits, side by side in one run (issue 11: "the fast path stays within
# 10 % of today"; issue 18: "on the current kernel nothing is slower"): builds OLD (and NEW, when
# given; else this checkout is the new side) in temporary worktrees, then runs each side's
# own fastpath benchmark at one flow over 1,000,000 routes, taking turns (old, new, new, old, ...)
# ROUNDS times, so that the machine's drift reaches both alike. Each run also measures its own
# count-only XDP program, so the comparison is also made in units of it (what any program costs).
#   bench/ab-fastpath.sh OLD_REV [NEW_REV|.] [ROUNDS]      (as root, from a built checkout: make build)
# Prints one JSON line per run, then one JSON summary: medians per side and new / old.
set -euo pipefail
old_rev=${1:?usage: bench/ab-fastpath.sh OLD_REV [NEW_REV|.] [ROUNDS]}
new_rev=${2:-.}
rounds=${3:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
cleanup() {
  for side in old new; do git -C "$here" worktree remove --force "$work/$side" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

checkout() {
  git -C "$here" worktree add --detach "$work/$1" "$2" >/dev/null 2>&1
  ln -s "$here/node_modules" "$work/$1/node_modules"
  make -C "$work/$1" --no-print-directory bpf ts >&2
}
checkout old "$old_rev"
new_dir=$here
if [ "$new_rev" != . ]; then
  checkout new "$new_rev"
  new_dir=$work/new
fi

# One run of a side's benchmark at one flow and 1M routes, as one JSON object: the benchmark's API
# changed with issue 16 (routes: number[] before, flows: number[] after), so ask in its own terms.
run_side() {
  local dir=$1 side=$2
  (cd "$dir" && node --input-type=module -e "
    const m = await import('./dist/bench/fastpath.js');
    const byFlows = /flowCounts/.test(m.benchFastpath.toString());
    const rows = byFlows ? m.benchFastpath({ flows: [1], routes: 1_000_000 }) : m.benchFastpath({ routes: [1_000_000] });
    const r = rows[0];
    console.log(JSON.stringify({ side: '$side', isolation_ns: r.isolation_ns_per_packet,
      fastpath_ns: r.fastpath_ns_per_packet, count_only_ns: r.baseline_ns_per_packet,
      punished_ns: r.punished_fair_drop_ns_per_packet ?? null }));
  ")
}

out=$work/runs.jsonl
for ((i = 0; i < rounds; i++)); do
  if ((i % 2 == 0)); then order="old new"; else order="new old"; fi
  for side in $order; do
    if [ "$side" = old ]; then run_side "$work/old" old; else run_side "$new_dir" new; fi | tee -a "$out"
  done
done

node --input-type=module -e "
  import { readFileSync } from 'node:fs';
  const runs = readFileSync('$out', 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const r2 = (x) => Math.round(x * 100) / 100;
  const side = (name) => {
    const rs = runs.filter((r) => r.side === name);
    return { isolation_ns: r2(median(rs.map((r) => r.isolation_ns))), fastpath_ns: r2(median(rs.map((r) => r.fastpath_ns))),
      count_only_ns: r2(median(rs.map((r) => r.count_only_ns))), isolation_in_count_only: r2(median(rs.map((r) => r.isolation_ns / r.count_only_ns))),
      punished_ns: rs.every((r) => r.punished_ns !== null) ? r2(median(rs.map((r) => r.punished_ns))) : null };
  };
  const o = side('old'), n = side('new');
  console.log(JSON.stringify({ old_rev: '$old_rev', new_rev: '$new_rev', rounds: $rounds, old: o, new: n,
    isolation_new_over_old: r2(n.isolation_ns / o.isolation_ns),
    isolation_in_count_only_new_over_old: r2(n.isolation_in_count_only / o.isolation_in_count_only),
    punished_new_over_old: o.punished_ns && n.punished_ns ? r2(n.punished_ns / o.punished_ns) : null }));
"
