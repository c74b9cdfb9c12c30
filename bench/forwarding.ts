// Forwarding throughput and CPU cost through a host, side by side in one run:
//
//   generator ns ── g0 ═ in0 ── [host ns] ── out0 ═ s0 ── sink ns (XDP drop, counts)
//
// The same trafgen stream (64-byte UDP frames, 65,536 destination addresses in
// 10.200.0.0/16 in random order, or one address: both ends of the traffic mix; stopped
// with SIGINT) crosses the host in each configuration:
//   linux        Linux IP forwarding;
//   iptables     Linux forwarding with the paper's prototype approach: per network, an
//                iptables chain that accounts (rule counters) and punishes (a random-drop
//                rule per resource, probability 0 here);                       // Paper V
//   xdp_minimal  the floor: bpf_fib_lookup + redirect, nothing else (base_fwd);
//   xnetmon      the real data plane: classify, per-network LPM, accounting, punishment
//                (probabilities 0), filter, redirect;
//   generator    the generator alone against an XDP drop at in0: its cost per packet is
//                subtracted from every configuration's to leave the forwarder's.
// Configurations are interleaved over rounds, once with the /16 of routes and once more
// with 1,000,000 more routes installed (kernel FIB and XNetMon's table); medians of the
// per-round figures and of per-round ratios are reported.
//
// On this machine the generator, the host's forwarding and the sink all run on the
// generator's CPU (veth NAPI runs as softirq in the sender's context), so pps at the sink is
// the inverse of the whole chain's per-packet cost. CPU per delivered packet is counted two
// ways: from the pipeline's own tasks (trafgen's processes and ksoftirqd; the headline,
// because it is blind to other users of this shared machine) and from /proc/stat (every
// CPU, as first specified; other users' load lands in it).
//
// The XDP programs are attached by an agent process inside each namespace (this file run
// with --agent): attachment and ifindex resolution work in the caller's namespace.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { defaultCosts } from '../src/config/costs.js';
import { DataPlane, defaultObjectPath } from '../src/dataplane/index.js';
import { BpfObject, attachXdp, ifindexOf, releaseHeldLinks, type BpfMap } from '../src/loader/index.js';
import { labDown, uniquePrefix } from '../src/lab/index.js';
import { fillRoutes, setRouteIndex } from './fastpath.js';
import { median, round } from './stats.js';

/** `xnetmon_no_flow_cache`: XNetMon with its flow cache off, to show what the cache does
 *  when the packets spread over 65,536 destinations; `xnetmon_trie`: XNetMon with every IPv4
 *  lookup by the trie (its route index off), the lookup before the index, in the same run. */
export const FORWARDING_CONFIGS = [
  'linux',
  'iptables',
  'xdp_minimal',
  'xnetmon',
  'xnetmon_no_flow_cache',
  'xnetmon_trie',
] as const;
export type ForwardingConfig = (typeof FORWARDING_CONFIGS)[number];
type RunKind = ForwardingConfig | 'generator';

const MAC = {
  gen: '02:00:0e:00:00:01',
  /** in0: the host's port towards the generator; in every configuration it stands for
   *  network 1's virtual router MAC, so the generator's frames are identical everywhere. */
  in0: '02:00:f0:00:00:10',
  out0: '02:00:f0:00:00:11',
  sink: '02:00:0e:00:00:02',
  /** Routers of the two other networks (no traffic): XNetMon and iptables both classify three. */
  net2: '02:00:01:00:02:00',
  net3: '02:00:01:00:03:00',
} as const;

const ADDR = { gen: '10.100.0.2', in0: '10.100.0.1', out0: '10.101.0.1', sink: '10.101.0.2' } as const;
/** Source prefixes of the three networks in the iptables configuration (the generator is network 1). */
const NETWORK_SOURCES = ['10.100.0.0/24', '10.110.0.0/24', '10.120.0.0/24'];
const DESTINATIONS_16 = '10.200';
const MILLION = 1_000_000;
/** Destination addresses in the stream. */
export type Destinations = 1 | 65_536;

/** One 60-byte frame (64 on the wire): IPv4 checksum computed per packet, UDP checksum 0,
 *  destination 10.200.<random>.<incrementing>: 65,536 addresses over 256 routes; or
 *  10.200.0.1 alone (one flow, the other end of the traffic mix). */
function trafgenConfig(destinations: Destinations): string {
  const mac = (m: string) =>
    m
      .split(':')
      .map((b) => `0x${b}`)
      .join(', ');
  return `{
  ${mac(MAC.in0)},
  ${mac(MAC.gen)},
  0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  ${ADDR.gen.split('.').join(', ')},
  ${DESTINATIONS_16.split('.').join(', ')}, ${destinations === 1 ? '0, 1' : 'drnd(), dinc(0, 255)'},
  const16(1000), const16(2000), const16(26), const16(0),
  fill(0x00, 18)
}
`;
}

// ---- the agent: runs inside a namespace, attaches programs, reads counters -----------------

interface AgentRequest {
  op: 'setup-xnetmon' | 'fill' | 'attach' | 'relay' | 'detach' | 'count' | 'forwarded' | 'exit';
  prog?: 'xnetmon' | 'base_fwd' | 'base_drop';
  /** With prog 'xnetmon': whether its flow cache is on, and its route index (off: the trie). */
  flowCache?: boolean;
  routeIndex?: boolean;
  ifname?: string;
  /** With op 'relay': the port every frame from `ifname` is sent to. */
  to?: string;
  count?: number;
}

interface AgentState {
  baseline: BpfObject;
  dp?: DataPlane;
  nexthop?: number;
  filled: number;
}

function sumPackets(map: BpfMap): number {
  const value = map.lookup(Buffer.alloc(4));
  if (!value) return 0;
  return map.perCpuSlices(value).reduce((sum, slice) => sum + Number(slice.readBigUInt64LE(0)), 0);
}

const xnetmonSettings = (flowCache: boolean) => ({
  accounting: true,
  punish: true,
  filter: true,
  flowCache,
  costPerKib: 0,
  pathCost: {
    ext_ext: defaultCosts.extExt,
    ext_vm: defaultCosts.extVm,
    vm_ext: defaultCosts.vmExt,
    vm_vm: defaultCosts.vmVm,
    vm_host: defaultCosts.vmHost,
    host_vm: defaultCosts.vmHost,
  },
});

function agentHandle(state: AgentState, req: AgentRequest): unknown {
  switch (req.op) {
    case 'setup-xnetmon': {
      // What the daemon writes for such a host: three networks, two physical links, the
      // default cost table (src/config/costs.ts), accounting + punishment + filter on.
      const dp = DataPlane.open({ maxRoutes4: MILLION + 4096 });
      state.dp = dp;
      dp.configure(xnetmonSettings(true));
      const in0 = ifindexOf('in0');
      const out0 = ifindexOf('out0');
      dp.setPhysical(in0, 0);
      dp.setPhysical(out0, 1);
      [MAC.in0, MAC.net2, MAC.net3].forEach((mac, i) => {
        dp.defineNetwork({ id: i + 1, name: `net${i + 1}` });
        dp.setAttachment({ ifindex: in0, vlan: 0, mac, netId: i + 1, vifIfindex: 0 });
        dp.setDrops(i + 1, { cpu: 0, residual: 0, links: [0, 0] });
      });
      state.nexthop = dp.nexthop({ netId: 1, ifindex: out0, linkSlot: 1, vlan: 0, smac: MAC.out0, dmac: MAC.sink });
      dp.addRoutes(
        1,
        Array.from({ length: 256 }, (_, i) => ({
          prefix: `${DESTINATIONS_16}.${i}.0/24`,
          target: { kind: 'nexthop' as const, nexthopId: state.nexthop! },
        })),
      );
      return { routes: 256 };
    }
    case 'fill': {
      if (!state.dp || state.nexthop === undefined) throw new Error('setup-xnetmon first');
      const start = process.hrtime.bigint();
      fillRoutes(state.dp, 1, req.count ?? MILLION, state.nexthop);
      state.filled = req.count ?? MILLION;
      return { routes: state.filled, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
    }
    case 'attach': {
      releaseHeldLinks();
      if (req.prog === 'xnetmon') {
        if (!state.dp) throw new Error('setup-xnetmon first');
        state.dp.configure(xnetmonSettings(req.flowCache ?? true));
        setRouteIndex(state.dp, 1, req.routeIndex ?? true);
        // Both physical links, as the daemon attaches them (XDP in, TC egress accounting).
        const points = [
          ...state.dp.attachPhysical('in0', { xdp: 'native' }),
          ...state.dp.attachPhysical('out0', { xdp: 'native' }),
        ];
        return { attached: points.map((p) => `${p.point}${p.mode ? `/${p.mode}` : ''}`) };
      }
      const prog = state.baseline.program(req.prog ?? 'base_drop');
      const a = attachXdp(prog, ifindexOf(req.ifname ?? 'in0'), { mode: 'native' });
      return { attached: [`xdp/${a.mode}`] };
    }
    case 'relay': {
      const port = Buffer.alloc(4);
      port.writeUInt32LE(ifindexOf(req.to ?? 'r1'));
      state.baseline.map('base_relay_port').update(Buffer.alloc(4), port);
      const a = attachXdp(state.baseline.program('base_relay'), ifindexOf(req.ifname ?? 'r0'), { mode: 'native' });
      return { attached: [`xdp/${a.mode}`] };
    }
    case 'detach':
      releaseHeldLinks();
      return {};
    case 'count':
      return { packets: sumPackets(state.baseline.map('base_counters')) };
    case 'forwarded': {
      const c = state.dp?.readCounters([1])[0];
      return { forwarded: Number(c?.verdicts.forward ?? 0n), cpuCarried: Number(c?.cpuCarried ?? 0n) };
    }
    case 'exit':
      releaseHeldLinks();
      state.dp?.close();
      state.baseline.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

async function runAgent(): Promise<void> {
  const state: AgentState = {
    baseline: BpfObject.load(join(dirname(defaultObjectPath()), 'baseline.bpf.o')),
    filled: 0,
  };
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    let reply: unknown;
    try {
      reply = { ok: true, ...(agentHandle(state, JSON.parse(line) as AgentRequest) as object) };
    } catch (err) {
      reply = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
  // stdin closed (the bench ended or died): links go with this process.
  process.exit(0);
}

/** The bench's handle on one agent: one request, one JSON line back. */
class Agent {
  private readonly child: ChildProcess;
  private readonly replies: ((line: string) => void)[] = [];
  private stderr = '';

  constructor(ns: string) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--agent'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => this.replies.shift()?.(line));
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  request<T extends object>(req: AgentRequest): Promise<T> {
    return new Promise((resolvePromise, reject) => {
      if (this.child.exitCode !== null) {
        reject(new Error(`agent exited: ${this.stderr}`));
        return;
      }
      this.replies.push((line) => {
        const reply = JSON.parse(line) as { ok: boolean; error?: string } & T;
        if (reply.ok) resolvePromise(reply);
        else reject(new Error(`agent ${req.op}: ${reply.error}`));
      });
      this.child.stdin!.write(`${JSON.stringify(req)}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    await Promise.race([
      exited,
      sleep(3000).then(() => {
        this.child.kill('SIGKILL');
      }),
    ]);
  }
}

// ---- the bench ---------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sh(args: readonly string[], input?: string): string {
  try {
    return execFileSync(args[0], args.slice(1), {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

/** CPU time of the whole machine: busy time of all CPUs (user, nice, system, irq, softirq, steal). */
function busyNs(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) * TICK_NS;
}

const TICK_NS = 1e7; // USER_HZ = 100 on Linux

/** utime + stime of a process, in ns (0 when it is gone). */
function processCpuNs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_NS;
  } catch {
    return 0;
  }
}

function ksoftirqdPids(): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('ksoftirqd/');
      } catch {
        return false;
      }
    });
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `pid` and all its descendants (timeout, trafgen and the worker trafgen forks per CPU). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]));
  return out;
}

/** Waits until trafgen's worker runs (a grandchild of timeout), and returns the tree. */
async function generatorTree(pid: number): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const tree = processTree(pid);
    if (tree.length >= 3) return tree;
    await sleep(20);
  }
  throw new Error('trafgen did not start');
}

interface Names {
  gen: string;
  host: string;
  sink: string;
  relay?: string;
}

/**
 * How frames reach the host's first port. `stack`: straight from trafgen, as skbs, which
 * native XDP on a veth copies into pages of its own (a cost no NIC has). `xdp`: through a
 * relay namespace whose XDP program redirects them on, so that the host's port receives
 * XDP frames as a host's XDP program receives a NIC's; the copy is then paid in the relay,
 * in the generator's own cost, which the forwarder CPU leaves out.
 */
export type ForwardingFeed = 'stack' | 'xdp';

interface RunSample {
  pps: number;
  nsPerPacket: number;
  pipelineNsPerPacket: number;
}

function buildTopology(prefix: string, feed: ForwardingFeed): Names {
  const n: Names = {
    gen: `${prefix}g`,
    host: `${prefix}h`,
    sink: `${prefix}s`,
    ...(feed === 'xdp' ? { relay: `${prefix}r` } : {}),
  };
  for (const ns of Object.values(n)) {
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  if (n.relay) {
    sh(['ip', 'link', 'add', `${prefix}a`, 'netns', n.gen, 'type', 'veth', 'peer', 'name', 'r0', 'netns', n.relay]);
    sh(['ip', 'link', 'add', 'r1', 'netns', n.relay, 'type', 'veth', 'peer', 'name', `${prefix}b`, 'netns', n.host]);
    sh(['ip', '-n', n.relay, '-batch', '-'], 'link set r0 up\nlink set r1 up\n');
  } else {
    sh([
      'ip',
      'link',
      'add',
      `${prefix}a`,
      'netns',
      n.gen,
      'type',
      'veth',
      'peer',
      'name',
      `${prefix}b`,
      'netns',
      n.host,
    ]);
  }
  sh([
    'ip',
    'link',
    'add',
    `${prefix}c`,
    'netns',
    n.host,
    'type',
    'veth',
    'peer',
    'name',
    `${prefix}d`,
    'netns',
    n.sink,
  ]);
  const batch = (ns: string, lines: string[]) => sh(['ip', '-n', ns, '-batch', '-'], `${lines.join('\n')}\n`);
  batch(n.gen, [`link set ${prefix}a name g0 address ${MAC.gen}`, 'link set g0 up', `addr add ${ADDR.gen}/24 dev g0`]);
  batch(n.host, [
    `link set ${prefix}b name in0 address ${MAC.in0}`,
    `link set ${prefix}c name out0 address ${MAC.out0}`,
    'link set in0 up',
    'link set out0 up',
    `addr add ${ADDR.in0}/24 dev in0`,
    `addr add ${ADDR.out0}/24 dev out0`,
    `neigh replace ${ADDR.sink} lladdr ${MAC.sink} dev out0 nud permanent`,
    `neigh replace ${ADDR.gen} lladdr ${MAC.gen} dev in0 nud permanent`,
    ...Array.from({ length: 256 }, (_, i) => `route add ${DESTINATIONS_16}.${i}.0/24 via ${ADDR.sink} dev out0`),
  ]);
  batch(n.sink, [
    `link set ${prefix}d name s0 address ${MAC.sink}`,
    'link set s0 up',
    `addr add ${ADDR.sink}/24 dev s0`,
  ]);
  sh([
    'ip',
    'netns',
    'exec',
    n.host,
    'sysctl',
    '-qw',
    'net.ipv4.ip_forward=1',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.in0.rp_filter=0',
  ]);
  // A veth hands its peer partial checksums; forwarded frames must carry real ones.
  sh(['ip', 'netns', 'exec', n.gen, 'ethtool', '-K', 'g0', 'tx', 'off']);
  // A veth takes XDP frames from its peer only with NAPI on: an XDP program, or GRO
  // (Linux and iptables run without a program on in0).
  if (n.relay) sh(['ip', 'netns', 'exec', n.host, 'ethtool', '-K', 'in0', 'gro', 'on']);
  return n;
}

/** The paper's prototype data plane on Linux: per network, a chain that punishes by random
 *  drop (CPU at the input, then the output link) and accounts through rule counters. */
function iptablesRules(): string {
  const lines = ['*filter', ':FORWARD ACCEPT [0:0]'];
  for (let i = 0; i < NETWORK_SOURCES.length; i++) lines.push(`:XNM-NET${i + 1} - [0:0]`);
  NETWORK_SOURCES.forEach((source, i) => {
    const chain = `XNM-NET${i + 1}`;
    lines.push(`-A FORWARD -i in0 -s ${source} -j ${chain}`);
    lines.push(`-A ${chain} -m statistic --mode random --probability 0 -j DROP`); // CPU punishment
    lines.push(`-A ${chain} -o out0 -m statistic --mode random --probability 0 -j DROP`); // link punishment
    lines.push(`-A ${chain} -o out0 -j ACCEPT`); // accounting: packets and bytes to out0
    lines.push(`-A ${chain} -j ACCEPT`);
  });
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const IPTABLES = 'iptables-legacy';

export interface ConfigFigures {
  pps_at_sink: number;
  /** Forwarder CPU per delivered packet: CPU of the pipeline's tasks (the generator, in whose
   *  context veth NAPI, forwarding and sink run, and ksoftirqd) per packet, minus the generator's
   *  own per packet. Blind to other users' load on this shared machine. */
  cpu_ns_per_packet: number;
  /** The same from /proc/stat (busy time of every CPU): what the brief asked for, but other
   *  users' load on the shared machine lands in it (it went negative in noisy rounds). */
  proc_stat_cpu_ns_per_packet: number;
  /** Pipeline CPU per delivered packet, generator included. */
  total_cpu_ns_per_packet: number;
}

/** Medians of per-round ratios of forwarder CPU per packet. */
export interface CostRatios {
  xnetmon_over_xdp_minimal: number;
  iptables_over_xnetmon: number;
  linux_over_xnetmon: number;
}

export interface GeneratorFigures {
  pps: number;
  cpu_ns_per_packet: number;
  proc_stat_cpu_ns_per_packet: number;
}

export interface PhaseFigures {
  routes: number;
  generator: GeneratorFigures;
  configurations: Record<ForwardingConfig, ConfigFigures>;
  ratios: CostRatios & {
    xnetmon_pps_over_xdp_minimal_pps: number;
    /** XNetMon's forwarder CPU with its flow cache over without it. */
    flow_cache_over_no_flow_cache: number;
    /** XNetMon's forwarder CPU with its route index over with trie lookups (< 1: the index saves). */
    route_index_over_trie: number;
  };
  proc_stat_ratios: CostRatios;
  targets: {
    within_1_3x_of_xdp_minimal: boolean;
    at_least_2x_cheaper_than_iptables: boolean;
    proc_stat_within_1_3x_of_xdp_minimal: boolean;
    proc_stat_at_least_2x_cheaper_than_iptables: boolean;
  };
  rounds: ForwardingRound[];
}

export interface ForwardingRound {
  generator: GeneratorFigures;
  configs: Record<ForwardingConfig, ConfigFigures>;
}

function mapConfigs<T>(f: (c: ForwardingConfig) => T): Record<ForwardingConfig, T> {
  return Object.fromEntries(FORWARDING_CONFIGS.map((c) => [c, f(c)])) as Record<ForwardingConfig, T>;
}

export interface ForwardingFigures {
  /** The /16 only (256 routes), per configuration: the headline figures. */
  pps_at_sink: Record<ForwardingConfig, number>;
  cpu_ns_per_packet: Record<ForwardingConfig, number>;
  /** How frames reached the host in few_routes and million_routes. */
  feed: ForwardingFeed;
  few_routes: PhaseFigures;
  million_routes: PhaseFigures | null;
  /** 256 routes again with frames straight from the stack (benchForwardingFeeds()). */
  stack_feed?: PhaseFigures;
  /** The NIC-like feed again with one destination address (benchForwardingFeeds()): the
   *  other end of the traffic mix, where every packet is of one flow. */
  one_destination?: { few_routes: PhaseFigures; million_routes: PhaseFigures | null };
  rounds: number;
  seconds_per_run: number;
  frame_bytes: number;
  destinations: number;
  machine_note: string;
}

export interface ForwardingOptions {
  rounds?: number;
  seconds?: number;
  /** Also run with 1M routes installed (the default). */
  million?: boolean;
  /** How frames reach the host (default `stack`). */
  feed?: ForwardingFeed;
  /** Destination addresses in the stream (default 65,536). */
  destinations?: Destinations;
  log?: (line: string) => void;
}

export async function benchForwarding(options: ForwardingOptions = {}): Promise<ForwardingFigures> {
  const rounds = options.rounds ?? 7;
  const seconds = options.seconds ?? 2;
  const log = options.log ?? ((line: string) => process.stderr.write(`  ${line}\n`));
  const prefix = uniquePrefix('xf');
  const tmp = mkdtempSync(join(tmpdir(), 'xnetmon-fwd-'));
  const cfgPath = join(tmp, 'udp64.trafgen');
  const destinations = options.destinations ?? 65_536;
  writeFileSync(cfgPath, trafgenConfig(destinations));
  const agents: Agent[] = [];
  let generator: ChildProcess | undefined;
  const cleanup = (): void => {
    if (generator && generator.exitCode === null) generator.kill('SIGINT');
    labDown(prefix);
    rmSync(tmp, { recursive: true, force: true });
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const feed = options.feed ?? 'stack';
    const names = buildTopology(prefix, feed);
    const host = new Agent(names.host);
    const sink = new Agent(names.sink);
    agents.push(host, sink);
    if (names.relay) {
      const relay = new Agent(names.relay);
      agents.push(relay);
      await relay.request({ op: 'relay', ifname: 'r0', to: 'r1' });
    }
    await sink.request({ op: 'attach', prog: 'base_drop', ifname: 's0' });
    await host.request({ op: 'setup-xnetmon' });

    const softirqDaemons = ksoftirqdPids();
    /** CPU of the pipeline's own tasks: the generator (in whose context the veth NAPI, the
     *  forwarding and the sink run as softirq) and every ksoftirqd (softirq deferred under load).
     *  Blind to other users' load on this shared machine, unlike /proc/stat. */
    const pipelineNs = (tree: readonly number[]): number =>
      [...tree, ...softirqDaemons].reduce((sum, pid) => sum + processCpuNs(pid), 0);

    /** One measured run: warm up, then CPU and packets over `seconds`. */
    const measure = async (kind: RunKind): Promise<RunSample> => {
      switch (kind) {
        case 'linux':
        case 'iptables':
          await host.request({ op: 'detach' });
          break;
        case 'xdp_minimal':
          await host.request({ op: 'attach', prog: 'base_fwd', ifname: 'in0' });
          break;
        case 'xnetmon':
          await host.request({ op: 'attach', prog: 'xnetmon', flowCache: true });
          break;
        case 'xnetmon_no_flow_cache':
          await host.request({ op: 'attach', prog: 'xnetmon', flowCache: false });
          break;
        case 'xnetmon_trie':
          await host.request({ op: 'attach', prog: 'xnetmon', flowCache: true, routeIndex: false });
          break;
        case 'generator':
          await host.request({ op: 'attach', prog: 'base_drop', ifname: 'in0' });
          break;
      }
      if (kind === 'iptables') sh(['ip', 'netns', 'exec', names.host, `${IPTABLES}-restore`], iptablesRules());
      const counter = kind === 'generator' ? host : sink;
      // timeout is a safety net; the run is ended with SIGINT (trafgen ignores SIGTERM).
      generator = spawn(
        'ip',
        [
          'netns',
          'exec',
          names.gen,
          'timeout',
          '-s',
          'INT',
          String(Math.ceil(seconds + 10)),
          'trafgen',
          '-i',
          cfgPath,
          '-o',
          'g0',
          '-P',
          '1',
          '-q',
        ],
        { stdio: 'ignore' },
      );
      const exited = new Promise<void>((r) => generator!.once('exit', () => r()));
      try {
        await sleep(400);
        const trafgen = await generatorTree(generator.pid!);
        const p0 = (await counter.request<{ packets: number }>({ op: 'count' })).packets;
        const c0 = busyNs();
        const q0 = pipelineNs(trafgen);
        const t0 = process.hrtime.bigint();
        await sleep(seconds * 1000);
        const c1 = busyNs();
        const q1 = pipelineNs(trafgen);
        const t1 = process.hrtime.bigint();
        const p1 = (await counter.request<{ packets: number }>({ op: 'count' })).packets;
        const packets = p1 - p0;
        if (packets <= 0) throw new Error(`${kind}: no packet reached the ${kind === 'generator' ? 'host' : 'sink'}`);
        return {
          pps: packets / (Number(t1 - t0) / 1e9),
          nsPerPacket: (c1 - c0) / packets,
          pipelineNsPerPacket: (q1 - q0) / packets,
        };
      } finally {
        generator.kill('SIGINT');
        await exited;
        if (kind === 'iptables') {
          sh(['ip', 'netns', 'exec', names.host, IPTABLES, '-F']);
          sh(['ip', 'netns', 'exec', names.host, IPTABLES, '-X']);
        }
      }
    };

    const phase = async (routes: number): Promise<PhaseFigures> => {
      const all: ForwardingRound[] = [];
      for (let r = 0; r < rounds; r++) {
        // Rotate the order each round so that no configuration always follows the same one.
        const order: RunKind[] = ['generator', ...FORWARDING_CONFIGS];
        const rotated = order.map((_, i) => order[(i + r) % order.length]);
        const raw = new Map<RunKind, RunSample>();
        for (const kind of rotated) raw.set(kind, await measure(kind));
        const gen = raw.get('generator')!;
        const configs = mapConfigs((c) => {
          const m = raw.get(c)!;
          return {
            pps_at_sink: m.pps,
            cpu_ns_per_packet: m.pipelineNsPerPacket - gen.pipelineNsPerPacket,
            proc_stat_cpu_ns_per_packet: m.nsPerPacket - gen.nsPerPacket,
            total_cpu_ns_per_packet: m.pipelineNsPerPacket,
          };
        });
        all.push({
          generator: {
            pps: gen.pps,
            cpu_ns_per_packet: gen.pipelineNsPerPacket,
            proc_stat_cpu_ns_per_packet: gen.nsPerPacket,
          },
          configs,
        });
        log(
          `${destinations} destination(s), routes ${routes} round ${r + 1}/${rounds}: ${FORWARDING_CONFIGS.map((c) => `${c} ${(configs[c].pps_at_sink / 1e6).toFixed(3)} Mpps ${configs[c].cpu_ns_per_packet.toFixed(0)} ns (/proc/stat ${configs[c].proc_stat_cpu_ns_per_packet.toFixed(0)})`).join(', ')}; generator ${gen.pipelineNsPerPacket.toFixed(0)} ns (/proc/stat ${gen.nsPerPacket.toFixed(0)})`,
        );
      }
      const med = (f: (r: ForwardingRound) => number, digits = 0) => round(median(all.map(f)), digits);
      const configurations = mapConfigs((c) => ({
        pps_at_sink: med((r) => r.configs[c].pps_at_sink),
        cpu_ns_per_packet: med((r) => r.configs[c].cpu_ns_per_packet),
        proc_stat_cpu_ns_per_packet: med((r) => r.configs[c].proc_stat_cpu_ns_per_packet),
        total_cpu_ns_per_packet: med((r) => r.configs[c].total_cpu_ns_per_packet),
      }));
      const ratiosOf = (key: 'cpu_ns_per_packet' | 'proc_stat_cpu_ns_per_packet'): CostRatios => ({
        xnetmon_over_xdp_minimal: med((r) => r.configs.xnetmon[key] / r.configs.xdp_minimal[key], 3),
        iptables_over_xnetmon: med((r) => r.configs.iptables[key] / r.configs.xnetmon[key], 3),
        linux_over_xnetmon: med((r) => r.configs.linux[key] / r.configs.xnetmon[key], 3),
      });
      const ratios = ratiosOf('cpu_ns_per_packet');
      const procStat = ratiosOf('proc_stat_cpu_ns_per_packet');
      return {
        routes,
        generator: {
          pps: med((r) => r.generator.pps),
          cpu_ns_per_packet: med((r) => r.generator.cpu_ns_per_packet),
          proc_stat_cpu_ns_per_packet: med((r) => r.generator.proc_stat_cpu_ns_per_packet),
        },
        configurations,
        ratios: {
          ...ratios,
          xnetmon_pps_over_xdp_minimal_pps: med(
            (r) => r.configs.xnetmon.pps_at_sink / r.configs.xdp_minimal.pps_at_sink,
            3,
          ),
          flow_cache_over_no_flow_cache: med(
            (r) => r.configs.xnetmon.cpu_ns_per_packet / r.configs.xnetmon_no_flow_cache.cpu_ns_per_packet,
            3,
          ),
          route_index_over_trie: med(
            (r) => r.configs.xnetmon.cpu_ns_per_packet / r.configs.xnetmon_trie.cpu_ns_per_packet,
            3,
          ),
        },
        proc_stat_ratios: procStat,
        targets: {
          within_1_3x_of_xdp_minimal: ratios.xnetmon_over_xdp_minimal <= 1.3,
          at_least_2x_cheaper_than_iptables: ratios.iptables_over_xnetmon >= 2,
          proc_stat_within_1_3x_of_xdp_minimal: procStat.xnetmon_over_xdp_minimal <= 1.3,
          proc_stat_at_least_2x_cheaper_than_iptables: procStat.iptables_over_xnetmon >= 2,
        },
        rounds: all.map((r) => ({
          generator: {
            pps: Math.round(r.generator.pps),
            cpu_ns_per_packet: Math.round(r.generator.cpu_ns_per_packet),
            proc_stat_cpu_ns_per_packet: Math.round(r.generator.proc_stat_cpu_ns_per_packet),
          },
          configs: mapConfigs((c) => ({
            pps_at_sink: Math.round(r.configs[c].pps_at_sink),
            cpu_ns_per_packet: Math.round(r.configs[c].cpu_ns_per_packet),
            proc_stat_cpu_ns_per_packet: Math.round(r.configs[c].proc_stat_cpu_ns_per_packet),
            total_cpu_ns_per_packet: Math.round(r.configs[c].total_cpu_ns_per_packet),
          })),
        })),
      };
    };

    const few = await phase(256);
    let million: PhaseFigures | null = null;
    if (options.million ?? true) {
      // The same 1M /24s (11.0.0.0 upwards, bench/fastpath.ts's fillRoutes) in both FIBs.
      const t0 = Date.now();
      // Two ip processes in parallel: ip's parsing, not the kernel's insertion, is the slow part.
      const chunks = [0, 1].map((half) => {
        const lines: string[] = [];
        for (let i = half; i < MILLION; i += 2) {
          const a = ((11 << 24) + i * 256) >>> 0;
          lines.push(`route add ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.0/24 via ${ADDR.sink} dev out0`);
        }
        return `${lines.join('\n')}\n`;
      });
      await Promise.all(
        chunks.map(
          (text) =>
            new Promise<void>((resolveBatch, reject) => {
              const ip = spawn('ip', ['-n', names.host, '-batch', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
              let err = '';
              ip.stderr.on('data', (d: Buffer) => {
                err += d.toString();
              });
              ip.once('exit', (code) => (code === 0 ? resolveBatch() : reject(new Error(`ip -batch: ${err.trim()}`))));
              ip.stdin.end(text);
            }),
        ),
      );
      const filled = await host.request<{ seconds: number }>({ op: 'fill', count: MILLION });
      log(
        `1M routes installed: kernel FIB and XNetMon's table in ${((Date.now() - t0) / 1000).toFixed(1)} s (XNetMon's ${filled.seconds.toFixed(2)} s)`,
      );
      million = await phase(256 + MILLION);
    }
    const forwarded = await host.request<{ forwarded: number }>({ op: 'forwarded' });
    if (forwarded.forwarded <= 0)
      throw new Error('XNetMon forwarded nothing: the xnetmon configuration did not use the fast path');
    return {
      pps_at_sink: mapConfigs((c) => few.configurations[c].pps_at_sink),
      cpu_ns_per_packet: mapConfigs((c) => few.configurations[c].cpu_ns_per_packet),
      feed,
      few_routes: few,
      million_routes: million,
      rounds,
      seconds_per_run: seconds,
      frame_bytes: 64,
      destinations,
      machine_note:
        "veth lab on a shared 2-core VM; generator, forwarding and sink share the generator's CPU; native XDP on veth copies each frame it gets from the stack (docs: ENVIRONMENT)",
    };
  } finally {
    for (const a of agents) await a.close().catch(() => undefined);
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * The benchmark as `make bench` runs it: frames fed to the host as XDP frames (the NIC-like
 * feed, the headline), at 256 and 1M routes, with 65,536 destinations and then with one; then
 * 256 routes and 65,536 destinations again fed straight from the stack.
 */
export async function benchForwardingFeeds(options: ForwardingOptions = {}): Promise<ForwardingFigures> {
  const nicLike = await benchForwarding({ ...options, feed: 'xdp', destinations: 65_536 });
  const one = await benchForwarding({ ...options, feed: 'xdp', destinations: 1 });
  const stack = await benchForwarding({ ...options, feed: 'stack', million: false, destinations: 65_536 });
  return {
    ...nicLike,
    stack_feed: stack.few_routes,
    one_destination: { few_routes: one.few_routes, million_routes: one.million_routes },
  };
}

/** Markdown for docs/benchmarks.md. */
export function forwardingReport(f: ForwardingFigures): string {
  const phases = [
    ...[f.few_routes, ...(f.million_routes ? [f.million_routes] : [])].map((p) => ({
      p,
      feed: f.feed,
      dests: f.destinations,
    })),
    ...(f.one_destination
      ? [
          f.one_destination.few_routes,
          ...(f.one_destination.million_routes ? [f.one_destination.million_routes] : []),
        ].map((p) => ({ p, feed: f.feed, dests: 1 }))
      : []),
    ...(f.stack_feed ? [{ p: f.stack_feed, feed: 'stack' as const, dests: f.destinations }] : []),
  ];
  const n = (v: number) => v.toLocaleString('en-US');
  const met = (ok: boolean) => (ok ? 'met' : 'missed');
  const rows = phases.flatMap(({ p, feed, dests }) =>
    FORWARDING_CONFIGS.map((c) => {
      const x = p.configurations[c];
      return `| ${feed} | ${n(dests)} | ${n(p.routes)} | ${c} | ${(x.pps_at_sink / 1e6).toFixed(3)} | ${x.cpu_ns_per_packet} | ${x.total_cpu_ns_per_packet} | ${x.proc_stat_cpu_ns_per_packet} |`;
    }),
  );
  const ratioRows = phases.flatMap(({ p, feed, dests }) => [
    `| ${feed} | ${n(dests)} | ${n(p.routes)} | pipeline tasks | ${p.generator.cpu_ns_per_packet} | ${p.ratios.xnetmon_over_xdp_minimal} (${met(p.targets.within_1_3x_of_xdp_minimal)}) | ${p.ratios.iptables_over_xnetmon} (${met(p.targets.at_least_2x_cheaper_than_iptables)}) | ${p.ratios.linux_over_xnetmon} | ${p.ratios.flow_cache_over_no_flow_cache} | ${p.ratios.route_index_over_trie} |`,
    `| ${feed} | ${n(dests)} | ${n(p.routes)} | /proc/stat | ${p.generator.proc_stat_cpu_ns_per_packet} | ${p.proc_stat_ratios.xnetmon_over_xdp_minimal} (${met(p.targets.proc_stat_within_1_3x_of_xdp_minimal)}) | ${p.proc_stat_ratios.iptables_over_xnetmon} (${met(p.targets.proc_stat_at_least_2x_cheaper_than_iptables)}) | ${p.proc_stat_ratios.linux_over_xnetmon} | | |`,
  ]);
  return [
    `trafgen, 64-byte UDP to 65,536 addresses in 10.200.0.0/16 in random order (and, in the rows marked 1, to one address: both ends of the traffic mix), generator ns -> host ns -> sink ns (veth, native XDP, XDP drop at the sink); ${f.rounds} interleaved rounds of ${f.seconds_per_run} s per configuration; medians.`,
    "Feed `xdp` (the headline): the generator's frames pass a relay namespace whose XDP program (`base_relay`) redirects them on, so the host's first port receives XDP frames, as a host's XDP program receives a NIC's. " +
      'Feed `stack`: straight from trafgen, as skbs, which native XDP on a veth first copies into pages of its own, a cost no NIC has (the method of earlier runs). ' +
      "The relay's copy is part of the generator's own cost in both the measured runs and the generator-alone runs, so the forwarder CPU leaves it out; Linux and iptables pay for building an skb from each XDP frame (in0 runs with GRO on, which veth needs to take XDP frames without a program).",
    "Forwarder CPU = CPU per delivered packet minus the generator's own per packet (trafgen against an XDP drop at the host's first port, same rounds).",
    "The headline counts the pipeline's own tasks (trafgen, in whose context the veth NAPI, the forwarding and the sink run as softirq, plus ksoftirqd); /proc/stat (every CPU) is given too, but on this shared machine other users' load lands in it.",
    '',
    '| feed | destinations | routes | configuration | Mpps at sink | forwarder CPU (ns/packet) | pipeline CPU incl. generator (ns/packet) | forwarder CPU from /proc/stat (ns/packet) |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `Medians of per-round ratios of forwarder CPU per packet (targets: XNetMon within 1.3x of the minimal XDP forwarder, iptables at least 2x XNetMon). XNetMon pps / minimal XDP pps: ${phases.map(({ p, feed, dests }) => `${p.ratios.xnetmon_pps_over_xdp_minimal_pps} (${feed}, ${n(dests)} dest., ${n(p.routes)} routes)`).join(', ')}.`,
    '',
    '| feed | destinations | routes | CPU counted from | generator alone (ns/packet) | XNetMon / minimal XDP | iptables / XNetMon | Linux / XNetMon | flow cache on / off | route index / trie |',
    '| --- | ---: | ---: | --- | ---: | --- | --- | ---: | ---: | ---: |',
    ...ratioRows,
    '',
    // The ceiling of the second target: no XDP forwarder is much cheaper than the minimal one.
    `For scale, iptables / minimal XDP forwarder (medians of the configurations): ${phases.map(({ p, feed, dests }) => `${(p.configurations.iptables.cpu_ns_per_packet / p.configurations.xdp_minimal.cpu_ns_per_packet).toFixed(2)} (${feed}, ${n(dests)} dest., ${n(p.routes)} routes)`).join(', ')}: ` +
      'with the stack feed, the copy native XDP makes of each frame bounds how much cheaper than the iptables approach any XDP forwarder gets.',
    '',
    "Flow cache on / off: XNetMon's forwarder CPU over that of `xnetmon_no_flow_cache`. The cache holds 256 slots of 32 bytes per CPU (8 KiB: in the CPU caches and the TLB): " +
      'with 65,536 destinations in random order nearly every probe misses, so after a window of 256 probes with fewer than 64 hits the cache rests on that CPU for 65,536 packets (ratio near 1); with one destination every packet hits and skips the classification hash and the route lookup. ' +
      "Route index / trie: XNetMon's forwarder CPU over that of `xnetmon_trie`, the same program with every IPv4 lookup by the LPM trie (the lookup before the exact-match index).",
  ].join('\n');
}

if (
  process.argv.includes('--agent') &&
  process.argv[1] &&
  resolve(process.argv[1]) === fileURLToPath(import.meta.url)
) {
  await runAgent();
}
