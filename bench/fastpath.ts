// Per-packet cost of the fast path with BPF_PROG_TEST_RUN, side by side in one run:
// an XDP program that only counts (the floor), a minimal forwarder (bpf_fib_lookup
// + redirect, through a real kernel route), XNetMon's fast path without isolation
// (no accounting, no punishment, no filter) and with it, at 1 / 10k / 1M routes.
// Configurations take turns call by call within each round; medians over rounds are
// reported, and the cost isolation adds is the median of the per-round differences
// (paired, so that the machine's drift cancels). Two more pairs show what the defences
// against hostile tenants cost (docs/security.md): a vif whose router MAC is locked
// against one that is not (anti-spoofing), and an IPv6 packet behind a Destination
// Options header against the same packet without it (the extension header walk).
import { DataPlane, defaultObjectPath } from '../src/dataplane/index.js';
import { BpfObject, runXdp, XdpAction, ifindexOf } from '../src/loader/index.js';
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
  /** Router -> host frame on a vif: with the MAC lock (anti-spoofing), and the lock's cost (paired). */
  vif_ns_per_packet: number;
  added_antispoofing_ns: number;
  /** IPv6 forwarded with isolation, and what one Destination Options header in front adds (paired). */
  ipv6_ns_per_packet: number;
  added_ipv6_exthdr_ns: number;
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
    const vifProg = dp.object.program('xnm_vif_in');
    routeForMinimalForwarder(scratch, fx);
    // A second vif of blue's with no attachment: its MAC is not locked, so the pair differs by the check alone.
    const openVif = ifindexOf(scratch.dummy('v3'));
    dp.setVif(openVif, { netId: 1, segIfindex: fx.phys, segVlan: 0, linkSlot: 0 });
    const fromRouter = buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: { src: '10.1.0.1', dst: '10.1.0.2', udp: { sport: 1000, dport: 2000 }, payload: 18 } });
    dp.addRoutes(1, [{ prefix: '2001:db8:77::/48', target: { kind: 'nexthop', nexthopId: fx.nexthopLoop } }]);
    const v6 = (extensions: { type: 60 }[]) => buildFrame({ dst: MAC.blueP, ipv6: { src: '2001:db8:1::2', dst: '2001:db8:77::9', hopLimit: 255, extensions, udp: { sport: 1000, dport: 2000 }, payload: 18 } });
    const v6plain = v6([]);
    const v6ext = v6([{ type: 60 }]);
    const count = baseline.program('base_count');
    const minimal = baseline.program('base_fwd');
    let installed = 0;
    for (const routes of routeCounts) {
      if (routes > installed) {
        fillRoutes(dp, 1, routes, fx.nexthopLoop);
        installed = routes;
      }
      const samples = { base: [] as number[], minimal: [] as number[], fast: [] as number[], iso: [] as number[], vifLocked: [] as number[], vifOpen: [] as number[], v6: [] as number[], v6ext: [] as number[] };
      const once = (prog: typeof phys, forwards: boolean, data = frame, ingressIfindex = fx.phys, verdict: number = XdpAction.REDIRECT): number => {
        const result = runXdp(prog, { data, repeat: PASSES_PER_CALL, ingressIfindex });
        if (forwards && result.retval !== verdict) throw new Error(`the program did not give verdict ${verdict} (gave ${result.retval})`);
        return result.durationNs;
      };
      const isolation = (on: boolean) => dp.configure({ accounting: on, punish: on, filter: on, pathCost: TABLE1_COSTS, costPerKib: 0 });
      const calls = Math.ceil(repeat / PASSES_PER_CALL);
      for (let r = 0; r < rounds; r++) {
        // The four configurations take turns call by call, so that a change of the
        // machine's speed within the round reaches all of them alike; the fast path
        // with and without isolation swap places every call, as the first of the two
        // after another program finds colder caches.
        const total = { base: 0, minimal: 0, fast: 0, iso: 0, vifLocked: 0, vifOpen: 0, v6: 0, v6ext: 0 };
        for (let c = 0; c < calls; c++) {
          total.base += once(count, false);
          total.minimal += once(minimal, true);
          for (const on of c % 2 === 0 ? [false, true] : [true, false]) {
            isolation(on);
            total[on ? 'iso' : 'fast'] += once(phys, true);
          }
          // isolation is on here (the last of the pair, or set again below)
          isolation(true);
          for (const locked of c % 2 === 0 ? [false, true] : [true, false]) {
            total[locked ? 'vifLocked' : 'vifOpen'] += once(vifProg, true, fromRouter, locked ? fx.vif1 : openVif, XdpAction.PASS);
          }
          for (const ext of c % 2 === 0 ? [false, true] : [true, false]) {
            total[ext ? 'v6ext' : 'v6'] += once(phys, true, ext ? v6ext : v6plain);
          }
        }
        for (const key of Object.keys(samples) as (keyof typeof samples)[]) samples[key].push(total[key] / calls);
      }
      out.push({
        routes, rounds, repeat,
        fastpath_ns_per_packet: round(median(samples.fast)), isolation_ns_per_packet: round(median(samples.iso)),
        baseline_ns_per_packet: round(median(samples.base)),
        minimal_forwarder_ns_per_packet: round(median(samples.minimal)),
        ratio_to_minimal_forwarder: round(median(samples.iso.map((iso, i) => iso / samples.minimal[i]))),
        added_isolation_ns: round(median(samples.iso.map((iso, i) => iso - samples.fast[i]))),
        vif_ns_per_packet: round(median(samples.vifLocked)),
        added_antispoofing_ns: round(median(samples.vifLocked.map((x, i) => x - samples.vifOpen[i]))),
        ipv6_ns_per_packet: round(median(samples.v6)),
        added_ipv6_exthdr_ns: round(median(samples.v6ext.map((x, i) => x - samples.v6[i]))),
      });
    }
    return out;
  } finally {
    dp.close();
    baseline.close();
    scratch.cleanup();
  }
}
