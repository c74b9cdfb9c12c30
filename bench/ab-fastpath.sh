#!/bin/bash
# The fast path of two commits, side by side in one run (issue 11: "the fast path stays within
# 10 % of today"; issue 18: "on the current kernel nothing is slower"): builds OLD (and NEW, when
# given; else this checkout is the new side) in temporary worktrees, then runs each side's
# XDP fast path (xnm_phys_in, isolation on) at one flow over 1,000,000 routes, in turns call by
# call, so that the machine's drift reaches both alike; medians over ROUNDS rounds.
#   bench/ab-fastpath.sh OLD_REV [NEW_REV|.] [ROUNDS]      (as root, from a built checkout: make build)
# FILTER_RULES=N gives the packet's network N filter rules that it does not match, so that every
# pass scans them all (0: no rules, the flow cache knows the network is unfiltered).
# Prints one JSON line per round, then one JSON summary: medians, and new / old (median of per-round ratios).
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

# The same harness times both sides, each in a worker process of its own tree (koffi's types are
# process-wide, so two trees' loaders cannot share one), configured by that tree's code (its
# DataPlane, fixture and route filler). The parent asks the two workers in turns, a chunk of calls
# at a time, for xnm_phys_in on the same frame and for a count-only program beside it. (Two runs
# of each tree's own benchmark differ in what else they time: the newer one times 17
# configurations per round, so every program in it, the count-only one too, meets colder caches;
# its count-only program came out 35 % dearer.)
cat > "$work/worker.mjs" <<'WORKER'
import { createInterface } from 'node:readline';
const dir = process.argv[2];
const ROUTES = 1_000_000, PASSES = 250, CALLS = 8;
const dataplane = await import(dir + '/dist/src/dataplane/index.js');
const loader = await import(dir + '/dist/src/loader/index.js');
const lab = await import(dir + '/dist/src/lab/index.js');
const packet = await import(dir + '/dist/src/packet/index.js');
const bench = await import(dir + '/dist/bench/fastpath.js');
const dp = dataplane.DataPlane.open({ maxRoutes4: ROUTES + 1024 });
const scratch = new lab.Scratch('xab');
const baseline = loader.BpfObject.load(dir + '/build/baseline.bpf.o');
try {
  const fx = lab.fastpathFixture(dp, scratch);
  bench.fillRoutes(dp, 1, ROUTES, fx.nexthopLoop);
  // Isolation on (accounting, punishment, filter), and whatever else the tree turns on by default.
  dp.configure({ accounting: true, punish: true, filter: true, pathCost: lab.TABLE1_COSTS, costPerKib: 0 });
  const rules = Number(process.env.FILTER_RULES ?? 0);
  if (rules) dp.setFilter(1, Array.from({ length: rules }, (_, r) => ({ family: 4, proto: 6, dport: [1000 + r, 1000 + r], action: 'drop' })));
  const frame = packet.buildFrame({ dst: lab.MAC.blueP, ipv4: { src: '10.1.0.2', dst: '11.0.0.9', ttl: 255, udp: { sport: 1000, dport: 2000 }, payload: 18 } });
  const prog = dp.object.program('xnm_phys_in');
  const count = baseline.program('base_count');
  console.log('ready');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'run') break;
    let ns = 0, countNs = 0;
    for (let c = 0; c < CALLS; c++) {
      const r = loader.runXdp(prog, { data: frame, repeat: PASSES, ingressIfindex: fx.phys });
      if (r.retval !== loader.XdpAction.REDIRECT) throw new Error('verdict ' + r.retval);
      ns += r.durationNs;
      countNs += loader.runXdp(count, { data: frame, repeat: PASSES, ingressIfindex: fx.phys }).durationNs;
    }
    console.log(JSON.stringify({ ns: ns / CALLS, countNs: countNs / CALLS }));
  }
} finally {
  dp.close();
  baseline.close();
  scratch.cleanup();
}
WORKER

node --input-type=module -e "
  import { spawn } from 'node:child_process';
  import { createInterface } from 'node:readline';
  const CHUNKS = 20, ROUNDS = $rounds;
  const worker = (name, dir) => {
    const child = spawn(process.execPath, ['$work/worker.mjs', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async () => { const l = await lines.next(); if (l.done) throw new Error(name + ' worker exited'); return l.value; };
    return { name, child, next, ask: async () => { child.stdin.write('run\n'); return JSON.parse(await next()); } };
  };
  const sides = [worker('old', '$work/old'), worker('new', '$new_dir')];
  for (const s of sides) if ((await sides[sides.indexOf(s)].next()) !== 'ready') throw new Error(s.name + ' not ready');
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const r2 = (x) => Math.round(x * 100) / 100;
  const rows = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t = { old: 0, new: 0, old_count: 0, new_count: 0 };
    for (let c = 0; c < CHUNKS; c++)
      for (const s of c % 2 === 0 ? sides : [...sides].reverse()) {
        const m = await s.ask();
        t[s.name] += m.ns / CHUNKS;
        t[s.name + '_count'] += m.countNs / CHUNKS;
      }
    const row = { round: r, old_ns: r2(t.old), new_ns: r2(t.new), old_count_only_ns: r2(t.old_count), new_count_only_ns: r2(t.new_count) };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  for (const s of sides) s.child.stdin.end();
  await Promise.all(sides.map((s) => new Promise((res) => s.child.once('exit', res))));
  const col = (k) => r2(median(rows.map((x) => x[k])));
  console.log(JSON.stringify({ old_rev: '$old_rev', new_rev: '$new_rev', rounds: ROUNDS, routes: 1000000, flows: 1, filter_rules: ${FILTER_RULES:-0},
    old_isolation_ns: col('old_ns'), new_isolation_ns: col('new_ns'), old_count_only_ns: col('old_count_only_ns'), new_count_only_ns: col('new_count_only_ns'),
    new_over_old: r2(median(rows.map((x) => x.new_ns / x.old_ns))), new_minus_old_ns: r2(median(rows.map((x) => x.new_ns - x.old_ns))) }));
"
