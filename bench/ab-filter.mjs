// The filter's rule scan of two BPF objects of the same layout, side by side in one process:
// each object's xnm_phys_in on a packet its network's last rule drops, after N-1 rules it does
// not match, so every pass scans them all. Objects take turns call by call; medians over rounds.
//   node bench/ab-filter.mjs OLD.bpf.o NEW.bpf.o [RULES...]   (as root, from a built checkout)
// Prints one JSON line per rule count: medians, and new / old (median of per-round ratios).
import { DataPlane } from '../dist/src/dataplane/index.js';
import { runXdp, XdpAction } from '../dist/src/loader/index.js';
import { buildFrame } from '../dist/src/packet/index.js';
import { Scratch, fastpathFixture, MAC, TABLE1_COSTS } from '../dist/src/lab/index.js';

const [oldPath, newPath, ...counts] = process.argv.slice(2);
if (!oldPath || !newPath) throw new Error('usage: node bench/ab-filter.mjs OLD.bpf.o NEW.bpf.o [RULES...]');
const ROUNDS = 31;
const PASSES = 20_000;
const frame = buildFrame({
  dst: MAC.blueP,
  ipv4: { src: '10.1.0.2', dst: '10.9.1.1', udp: { sport: 1000, dport: 2000 }, payload: 18 },
});
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const rules of (counts.length ? counts : ['1', '8', '32']).map(Number)) {
  const sides = [oldPath, newPath].map((objectPath, i) => {
    const dp = DataPlane.open({ objectPath });
    const scratch = new Scratch(`xaf${i}`);
    const fx = fastpathFixture(dp, scratch);
    dp.configure({ accounting: true, punish: true, filter: true, pathCost: TABLE1_COSTS, costPerKib: 0 });
    const unmatched = Array.from({ length: rules - 1 }, (_, r) => ({
      family: 4,
      proto: 6,
      dport: [1000 + r, 1000 + r],
      action: 'drop',
    }));
    dp.setFilter(1, [...unmatched, { family: 4, proto: 17, dst: '10.9.0.0/16', action: 'drop' }]);
    const prog = dp.object.program('xnm_phys_in');
    const run = () => {
      const r = runXdp(prog, { data: frame, ingressIfindex: fx.phys, repeat: PASSES });
      if (r.retval !== XdpAction.DROP) throw new Error(`verdict ${r.retval}`);
      return r.durationNs;
    };
    return { run, close: () => (dp.close(), scratch.cleanup()) };
  });
  const ns = [[], []];
  try {
    for (let round = 0; round < ROUNDS; round++)
      for (const i of round % 2 ? [1, 0] : [0, 1]) ns[i].push(sides[i].run());
  } finally {
    for (const s of sides) s.close();
  }
  console.log(
    JSON.stringify({
      rules,
      rounds: ROUNDS,
      old_ns: median(ns[0]),
      new_ns: median(ns[1]),
      new_over_old: Math.round(median(ns[1].map((v, i) => v / ns[0][i])) * 100) / 100,
    }),
  );
}
