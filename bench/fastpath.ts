// Per-packet cost of the fast path with BPF_PROG_TEST_RUN, side by side in one run:
// an XDP program that only counts (the floor), a minimal forwarder (bpf_fib_lookup
// + redirect, through a real kernel route), XNetMon's fast path without isolation
// (no accounting, no punishment, no filter) and with it, at 1 / 10k / 1M routes.
// Configurations take turns call by call within each round; medians over rounds are
// reported, and the cost isolation adds is the median of the per-round differences
// (paired, so that the machine's drift cancels).
import { DataPlane, defaultObjectPath } from '../src/dataplane/index.js';
import { BpfObject, runXdp, XdpAction } from '../src/loader/index.js';
import { buildFrame } from '../src/packet/index.js';
import { Scratch, fastpathFixture, sh, MAC, TABLE1_COSTS, type Fixture } from '../src/lab/index.js';
import { median, round } from './stats.js';
import { dirname, join } from 'node:path';

const PASSES_PER_CALL = 250;

export interface FastpathFigures {
  routes: number;
  fastpath_ns_per_packet: number;
  isolation_ns_per_packet: number;
  baseline_ns_per_packet: number;
  minimal_forwarder_ns_per_packet: number;
  /** Fast path + isolation over the minimal forwarder, median of per-round ratios. */
  ratio_to_minimal_forwarder: number;
  added_isolation_ns: number;
  rounds: number;
  repeat: number;
}

/** Adds `count` distinct /24 routes (and /16s beyond 64k) to network 1, all to one next hop. */
export function fillRoutes(dp: DataPlane, netId: number, count: number, nexthopId: number): void {
  const addrs = new Uint32Array(count);
  const lengths = new Uint8Array(count).fill(24);
  const nexthops = new Uint32Array(count).fill(nexthopId);
  // 11.0.0.0 upwards in /24 steps: never overlaps the fixture's 10.x routes.
  for (let i = 0; i < count; i++) addrs[i] = ((11 << 24) + i * 256) >>> 0;
  dp.addRoutes4(netId, { addrs, lengths, nexthops, count });
}

/** Gives the minimal forwarder a kernel route to the benchmark's destinations, with a
 *  permanent neighbour, and forwarding on the ingress link, so that it really forwards. */
function routeForMinimalForwarder(scratch: Scratch, fx: Fixture): void {
  const egress = `${scratch.prefix}q`;
  sh('sysctl', ['-qw', `net.ipv4.conf.${fx.physName}.forwarding=1`]);
  sh('ip', ['addr', 'add', '198.18.255.1/30', 'dev', egress]);
  sh('ip', ['neigh', 'replace', '198.18.255.2', 'lladdr', MAC.ext1, 'dev', egress, 'nud', 'permanent']);
  sh('ip', ['route', 'replace', '11.0.0.0/8', 'via', '198.18.255.2', 'dev', egress]);
}

export function benchFastpath(options: { routes?: number[]; rounds?: number; repeat?: number } = {}): FastpathFigures[] {
  const routeCounts = options.routes ?? [1, 10_000, 1_000_000];
  const rounds = options.rounds ?? 9;
  const repeat = options.repeat ?? 10_000; // each call costs ~18 ms of fixed kernel overhead when repeat > 1
  const scratch = new Scratch('xbf');
  const baseline = BpfObject.load(join(dirname(defaultObjectPath()), 'baseline.bpf.o'));
  const dp = DataPlane.open({ maxRoutes4: Math.max(...routeCounts) + 1024 });
  const out: FastpathFigures[] = [];
  try {
    const fx = fastpathFixture(dp, scratch);
    // A forwarded IPv4 UDP packet of 64 bytes on the wire (60 without FCS). TTL 255:
    // the kernel repeats the program on its own output, so each call runs at most
    // PASSES_PER_CALL times before the TTL would expire.
    const frame = buildFrame({ dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst: '11.0.0.9', ttl: 255, udp: { sport: 1000, dport: 2000 }, payload: 18 } });
    const phys = dp.object.program('xnm_phys_in');
    routeForMinimalForwarder(scratch, fx);
    const count = baseline.program('base_count');
    const minimal = baseline.program('base_fwd');
    let installed = 0;
    for (const routes of routeCounts) {
      if (routes > installed) {
        fillRoutes(dp, 1, routes, fx.nexthopLoop);
        installed = routes;
      }
      const samples = { base: [] as number[], minimal: [] as number[], fast: [] as number[], iso: [] as number[] };
      const once = (prog: typeof phys, forwards: boolean): number => {
        const result = runXdp(prog, { data: frame, repeat: PASSES_PER_CALL, ingressIfindex: fx.phys });
        if (forwards && result.retval !== XdpAction.REDIRECT) throw new Error(`the program did not forward (verdict ${result.retval})`);
        return result.durationNs;
      };
      const isolation = (on: boolean) => dp.configure({ accounting: on, punish: on, filter: on, pathCost: TABLE1_COSTS, costPerKib: 0 });
      const calls = Math.ceil(repeat / PASSES_PER_CALL);
      for (let r = 0; r < rounds; r++) {
        // The four configurations take turns call by call, so that a change of the
        // machine's speed within the round reaches all of them alike; the fast path
        // with and without isolation swap places every call, as the first of the two
        // after another program finds colder caches.
        const total = { base: 0, minimal: 0, fast: 0, iso: 0 };
        for (let c = 0; c < calls; c++) {
          total.base += once(count, false);
          total.minimal += once(minimal, true);
          for (const on of c % 2 === 0 ? [false, true] : [true, false]) {
            isolation(on);
            total[on ? 'iso' : 'fast'] += once(phys, true);
          }
        }
        for (const key of ['base', 'minimal', 'fast', 'iso'] as const) samples[key].push(total[key] / calls);
      }
      out.push({
        routes, rounds, repeat,
        fastpath_ns_per_packet: round(median(samples.fast)), isolation_ns_per_packet: round(median(samples.iso)),
        baseline_ns_per_packet: round(median(samples.base)),
        minimal_forwarder_ns_per_packet: round(median(samples.minimal)),
        ratio_to_minimal_forwarder: round(median(samples.iso.map((iso, i) => iso / samples.minimal[i]))),
        added_isolation_ns: round(median(samples.iso.map((iso, i) => iso - samples.fast[i]))),
      });
    }
    return out;
  } finally {
    dp.close();
    baseline.close();
    scratch.cleanup();
  }
}
