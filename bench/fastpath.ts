// Per-packet cost of the fast path with BPF_PROG_TEST_RUN, side by side in one run, at
// 1, 1,000 and 65,536 flows (destinations) over a full table of 1,000,000 routes:
//   count-only  an XDP program that only counts (what any program costs);
//   floor       the least an IPv4 forwarder does (base_floor): parse Ethernet + IPv4,
//               rewrite the MACs, TTL and checksum, count, bpf_redirect_map;
//   minimal     bpf_fib_lookup + redirect through a real kernel route;
//   XNetMon's fast path without isolation, with it (accounting, punishment, filter),
//   with it but without the flow cache (the design choice, measured beside it), and with it
//   but without flow-aware dropping (its flow rate sketch and histogram: what they cost), and with it
//   but every IPv4 lookup by the trie (the route index off: the lookup before the index).
// Configurations take turns call by call within each round; medians over rounds are
// reported, and differences are medians of per-round differences (paired, so that the
// machine's drift cancels).
//
// One flow: the kernel reruns the program on its own output (PASSES_PER_CALL times per
// call), so the frame goes to a next hop that addresses it to the router again
// (nexthopLoop). Many flows: one call per packet, each to the next destination of a
// fixed random order, so that no packet follows one of its own flow (the rerun would);
// such a call also pays the kernel's timer and a cold start after the syscall (on this
// machine, kernel entry flushes the TLB: PTI without PCID), the same for every program.
// That fixed cost is measured as the count-only program's cost per call at one pass
// minus its cost per pass at PASSES_PER_CALL passes, and the `*_net` ratios leave it out.
//
// Two more pairs, at one flow, show what the defences against hostile tenants cost
// (docs/security.md): a vif whose router MAC is locked against one that is not
// (anti-spoofing), and an IPv6 packet behind a Destination Options header against the
// same packet without it (the extension header walk).
import { DataPlane, defaultObjectPath } from '../src/dataplane/index.js';
import { BpfObject, RunTimeStats, runXdp, XdpAction, ifindexOf, type BpfProgram } from '../src/loader/index.js';
import { readFileSync } from 'node:fs';
import { buildFrame } from '../src/packet/index.js';
import { Scratch, fastpathFixture, sh, MAC, TABLE1_COSTS, type Fixture } from '../src/lab/index.js';
import { median, round } from './stats.js';
import { dirname, join } from 'node:path';

const PASSES_PER_CALL = 250;

export interface FastpathFigures {
  /** Routes in network 1's table. */
  routes: number;
  /** Destinations cycled (1: every packet of one flow). */
  flows: number;
  fastpath_ns_per_packet: number;
  isolation_ns_per_packet: number;
  /** With isolation, flow cache off. */
  no_flow_cache_ns_per_packet: number;
  /** With isolation and the flow cache, every lookup by the trie (the route index off: the lookup before it). */
  trie_ns_per_packet: number;
  baseline_ns_per_packet: number;
  /** base_floor: parse, rewrite MACs and TTL, count, bpf_redirect_map. */
  floor_ns_per_packet: number;
  minimal_forwarder_ns_per_packet: number;
  /** Fast path + isolation over the floor program, median of per-round ratios. */
  ratio_to_floor: number;
  /** The same with the flow cache off. */
  no_flow_cache_ratio_to_floor: number;
  /** The same with the route index off (trie lookups, flow cache on). */
  trie_ratio_to_floor: number;
  /** Per-call fixed cost (timer, cold start after the syscall) in the figures of this row; 0 at one flow. */
  call_overhead_ns: number;
  /** ratio_to_floor and no_flow_cache_ratio_to_floor with call_overhead_ns taken out of both sides. */
  ratio_to_floor_net: number;
  no_flow_cache_ratio_to_floor_net: number;
  /** Fast path + isolation over the minimal forwarder, median of per-round ratios. */
  ratio_to_minimal_forwarder: number;
  added_isolation_ns: number;
  /** What the flow cache saves per packet (no cache minus cache, with isolation, paired); negative: it costs. */
  flow_cache_saves_ns: number;
  /** With isolation but flow-aware dropping off (no flow rate sketch, no rate histogram). */
  no_fair_drop_ns_per_packet: number;
  /** What flow-aware dropping adds per packet (isolation minus isolation without it, paired). */
  added_fair_drop_ns: number;
  /**
   * One flow only: a punished network's packet (CPU drop probability 1e-9, so it is still forwarded)
   * with flow-aware dropping, and what the sketch and histogram add to it (paired). An unpunished
   * network's packets skip them (added_fair_drop_ns).
   */
  punished_fair_drop_ns_per_packet?: number;
  added_fair_drop_punished_ns?: number;
  /** One flow only: with the kernel's BPF run-time statistics on (BPF_ENABLE_STATS), and what they add (paired). */
  run_time_stats_ns_per_packet?: number;
  added_run_time_stats_ns?: number;
  /** kernel.bpf_stats_enabled when the run started: 1 means statistics were on for every figure. */
  bpf_stats_sysctl?: number;
  /** One flow only: router -> host frame on a vif with the MAC lock (anti-spoofing), and the lock's cost (paired). */
  vif_ns_per_packet?: number;
  added_antispoofing_ns?: number;
  /** One flow only: IPv6 forwarded with isolation, and what one Destination Options header in front adds (paired). */
  ipv6_ns_per_packet?: number;
  added_ipv6_exthdr_ns?: number;
  rounds: number;
  /** Packets per configuration per round. */
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

const parkedLengths = new WeakMap<DataPlane, Map<number, Buffer>>();

/** Turns the exact-match route index off (the trie answers every IPv4 lookup, as before the
 *  index) or on again for one network: the before and after of the lookup, in one run. */
export function setRouteIndex(dp: DataPlane, netId: number, on: boolean): void {
  const map = dp.object.map('xnm_route4_lengths');
  const key = Buffer.alloc(4);
  key.writeUInt32LE(netId);
  const parked = parkedLengths.get(dp) ?? new Map<number, Buffer>();
  parkedLengths.set(dp, parked);
  const current = map.lookup(key);
  if (!on) {
    if (current && current.readUInt8(0) === 1) parked.set(netId, current);
    map.update(key, Buffer.alloc(map.valueSize));
  } else if (parked.has(netId)) {
    // routes added while parked marked the network again: that entry is the newer one
    if (current?.readUInt8(0) !== 1) map.update(key, parked.get(netId)!);
    parked.delete(netId);
  }
}

const macBytes = (mac: string) => Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));

/** base_floor's next hop: the same rewrite as nexthopLoop (addressed to blue's router again), out the fixture's egress. */
function setupFloor(baseline: BpfObject, fx: Fixture): void {
  const hop = Buffer.alloc(16);
  hop.writeUInt32LE(fx.egress, 0);
  macBytes(MAC.blueQ).copy(hop, 4);
  macBytes(MAC.blueP).copy(hop, 10);
  baseline.map('base_floor_hop').update(Buffer.alloc(4), hop);
  const port = Buffer.alloc(4);
  port.writeUInt32LE(fx.egress);
  baseline.map('base_floor_ports').update(port, port);
}

/** A fixed random order (seeded: the same every run) of 0..n-1. */
function shuffled(n: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let seed = 0x2545f491;
  for (let i = n - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

export function benchFastpath(
  options: { flows?: number[]; routes?: number; rounds?: number; repeat?: number; packets?: number } = {},
): FastpathFigures[] {
  const flowCounts = options.flows ?? [1, 1_000, 65_536];
  const routes = options.routes ?? 1_000_000;
  const rounds = options.rounds ?? 7;
  const repeat = options.repeat ?? 10_000; // one flow: packets per configuration per round
  const packets = options.packets ?? 16_384; // many flows: one-packet calls per configuration per round
  const scratch = new Scratch('xbf');
  const baseline = BpfObject.load(join(dirname(defaultObjectPath()), 'baseline.bpf.o'));
  const dp = DataPlane.open({ maxRoutes4: routes + 1024 });
  const out: FastpathFigures[] = [];
  try {
    const fx = fastpathFixture(dp, scratch);
    setupFloor(baseline, fx);
    // A forwarded IPv4 UDP packet of 64 bytes on the wire (60 without FCS). TTL 255:
    // the kernel repeats the program on its own output, so each call runs at most
    // PASSES_PER_CALL times before the TTL would expire.
    const frameTo = (i: number) =>
      buildFrame({
        dst: MAC.blueP,
        ipv4: {
          src: '10.1.0.2',
          dst: `11.${(i >> 8) & 255}.${i & 255}.9`,
          ttl: 255,
          udp: { sport: 1000, dport: 2000 },
          payload: 18,
        },
      });
    const phys = dp.object.program('xnm_phys_in');
    const vifProg = dp.object.program('xnm_vif_in');
    routeForMinimalForwarder(scratch, fx);
    // A second vif of blue's with no attachment: its MAC is not locked, so the pair differs by the check alone.
    const openVif = ifindexOf(scratch.dummy('v3'));
    dp.setVif(openVif, { netId: 1, segIfindex: fx.phys, segVlan: 0, linkSlot: 0 });
    const fromRouter = buildFrame({
      src: MAC.blueP,
      dst: MAC.ext1,
      ipv4: { src: '10.1.0.1', dst: '10.1.0.2', udp: { sport: 1000, dport: 2000 }, payload: 18 },
    });
    dp.addRoutes(1, [{ prefix: '2001:db8:77::/48', target: { kind: 'nexthop', nexthopId: fx.nexthopLoop } }]);
    const v6 = (extensions: { type: 60 }[]) =>
      buildFrame({
        dst: MAC.blueP,
        ipv6: {
          src: '2001:db8:1::2',
          dst: '2001:db8:77::9',
          hopLimit: 255,
          extensions,
          udp: { sport: 1000, dport: 2000 },
          payload: 18,
        },
      });
    const v6plain = v6([]);
    const v6ext = v6([{ type: 60 }]);
    const count = baseline.program('base_count');
    const floor = baseline.program('base_floor');
    const minimal = baseline.program('base_fwd');
    fillRoutes(dp, 1, routes, fx.nexthopLoop);
    const settings = (isolation: boolean, flowCache: boolean, fairDrop: boolean) =>
      dp.configure({
        accounting: isolation,
        punish: isolation,
        filter: isolation,
        flowCache,
        fairDrop,
        pathCost: TABLE1_COSTS,
        costPerKib: 0,
      });
    type Mode = 'fast' | 'iso' | 'nocache' | 'nofair' | 'trie';
    const setMode = (m: Mode) => {
      settings(m !== 'fast', m !== 'nocache', m !== 'fast' && m !== 'nofair');
      setRouteIndex(dp, 1, m !== 'trie');
    };
    const statsSysctl = Number(readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim());
    for (const flows of flowCounts) {
      const single = flows === 1;
      const order = shuffled(flows);
      const frames = single ? [frameTo(9)] : order.map(frameTo);
      const passes = single ? PASSES_PER_CALL : 1;
      const calls = single ? Math.ceil(repeat / PASSES_PER_CALL) : packets;
      const once = (
        prog: BpfProgram,
        forwards: boolean,
        data: Buffer,
        ingressIfindex = fx.phys,
        verdict: number = XdpAction.REDIRECT,
        n = passes,
      ): number => {
        const result = runXdp(prog, { data, repeat: n, ingressIfindex });
        if (forwards && result.retval !== verdict)
          throw new Error(`${prog.name} did not give verdict ${verdict} (gave ${result.retval})`);
        return result.durationNs;
      };
      const keys = [
        'base',
        'floor',
        'minimal',
        'fast',
        'iso',
        'nocache',
        'nofair',
        'trie',
        'baseAmortised',
        'vifLocked',
        'vifOpen',
        'v6',
        'v6ext',
        'stats',
        'nostats',
        'punFair',
        'punRandom',
      ] as const;
      type Key = (typeof keys)[number];
      const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<Key, number[]>;
      let cursor = 0;
      for (let r = 0; r < rounds; r++) {
        // The configurations take turns call by call, so that a change of the machine's
        // speed within the round reaches all of them alike; XNetMon's five modes rotate
        // their order every call, as the first after another program finds colder caches.
        const total = Object.fromEntries(keys.map((k) => [k, 0])) as Record<Key, number>;
        let amortisedCalls = 0;
        for (let c = 0; c < calls; c++) {
          const frame = frames[cursor];
          cursor = (cursor + 1) % frames.length;
          total.base += once(count, false, frame);
          total.floor += once(floor, true, frame);
          total.minimal += once(minimal, true, frame);
          const modes: Mode[] = ['fast', 'iso', 'nocache', 'nofair', 'trie'];
          for (let i = 0; i < modes.length; i++) {
            const m = modes[(i + c) % modes.length];
            setMode(m);
            // Many flows: each mode to a destination of its own (a fifth of the order apart),
            // or the second of two cached modes would find the first one's slot.
            const apart = Math.floor(frames.length / modes.length);
            total[m] += once(phys, true, single ? frame : frames[(cursor + modes.indexOf(m) * apart) % frames.length]);
          }
          if (!single && c % 256 === 0) {
            total.baseAmortised += once(count, false, frame, fx.phys, XdpAction.PASS, PASSES_PER_CALL);
            amortisedCalls++;
          }
          if (single) {
            setMode('iso');
            for (const locked of c % 2 === 0 ? [false, true] : [true, false]) {
              total[locked ? 'vifLocked' : 'vifOpen'] += once(
                vifProg,
                true,
                fromRouter,
                locked ? fx.vif1 : openVif,
                XdpAction.PASS,
              );
            }
            for (const ext of c % 2 === 0 ? [false, true] : [true, false]) {
              total[ext ? 'v6ext' : 'v6'] += once(phys, true, ext ? v6ext : v6plain);
            }
            // A punished network: its flows are measured (fair) or not (random drops at the same p).
            dp.setDrops(1, { cpu: 1e-9, residual: 0, links: [] });
            for (const fair of c % 2 === 0 ? [false, true] : [true, false]) {
              setMode(fair ? 'iso' : 'nofair');
              total[fair ? 'punFair' : 'punRandom'] += once(phys, true, frame);
            }
            dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
            setMode('iso');
            // BPF_ENABLE_STATS: two clock reads per run while a descriptor is open.
            for (const on of c % 2 === 0 ? [false, true] : [true, false]) {
              const stats = on ? RunTimeStats.enable() : undefined;
              try {
                total[on ? 'stats' : 'nostats'] += once(phys, true, frame);
              } finally {
                stats?.close();
              }
            }
          }
        }
        for (const key of keys)
          samples[key].push(
            key === 'baseAmortised' ? (amortisedCalls ? total[key] / amortisedCalls : 0) : total[key] / calls,
          );
      }
      const med = (f: (i: number) => number) => round(median(samples.base.map((_, i) => f(i))));
      const overhead = single ? 0 : med((i) => samples.base[i] - samples.baseAmortised[i]);
      const net = (x: number) => Math.max(x - overhead, 0.1);
      out.push({
        routes,
        flows,
        rounds,
        repeat: single ? calls * PASSES_PER_CALL : calls,
        fastpath_ns_per_packet: round(median(samples.fast)),
        isolation_ns_per_packet: round(median(samples.iso)),
        no_flow_cache_ns_per_packet: round(median(samples.nocache)),
        trie_ns_per_packet: round(median(samples.trie)),
        baseline_ns_per_packet: round(median(samples.base)),
        floor_ns_per_packet: round(median(samples.floor)),
        minimal_forwarder_ns_per_packet: round(median(samples.minimal)),
        ratio_to_floor: med((i) => samples.iso[i] / samples.floor[i]),
        no_flow_cache_ratio_to_floor: med((i) => samples.nocache[i] / samples.floor[i]),
        trie_ratio_to_floor: med((i) => samples.trie[i] / samples.floor[i]),
        call_overhead_ns: overhead,
        ratio_to_floor_net: med((i) => net(samples.iso[i]) / net(samples.floor[i])),
        no_flow_cache_ratio_to_floor_net: med((i) => net(samples.nocache[i]) / net(samples.floor[i])),
        ratio_to_minimal_forwarder: med((i) => samples.iso[i] / samples.minimal[i]),
        added_isolation_ns: med((i) => samples.iso[i] - samples.fast[i]),
        flow_cache_saves_ns: med((i) => samples.nocache[i] - samples.iso[i]),
        no_fair_drop_ns_per_packet: round(median(samples.nofair)),
        added_fair_drop_ns: med((i) => samples.iso[i] - samples.nofair[i]),
        ...(single
          ? {
              vif_ns_per_packet: round(median(samples.vifLocked)),
              added_antispoofing_ns: med((i) => samples.vifLocked[i] - samples.vifOpen[i]),
              ipv6_ns_per_packet: round(median(samples.v6)),
              added_ipv6_exthdr_ns: med((i) => samples.v6ext[i] - samples.v6[i]),
              punished_fair_drop_ns_per_packet: round(median(samples.punFair)),
              added_fair_drop_punished_ns: med((i) => samples.punFair[i] - samples.punRandom[i]),
              run_time_stats_ns_per_packet: round(median(samples.stats)),
              added_run_time_stats_ns: med((i) => samples.stats[i] - samples.nostats[i]),
              bpf_stats_sysctl: statsSysctl,
            }
          : {}),
      });
    }
    return out;
  } finally {
    dp.close();
    baseline.close();
    scratch.cleanup();
  }
}
