// Model-based test of reconciliation (reduced form): a seeded random sequence of net add / set /
// del, reloads with changed definitions (a MAC moving between networks, a network coming back,
// a filter default), and kill -9 + restart with another file. After every step the pinned
// topology (interfaces, classification, vif MACs) equals what a fresh daemon writes for the file
// (computed here from the file alone), no route or next hop of an undeclared network is left,
// and blue's ping runs across every step. The seed is printed; XNETMON_SEED replays a sequence,
// XNETMON_MODEL_STEPS sets its length.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import { parseConfig, serializeConfig, type NetworkDefinition, type XnetmonConfig } from '../../src/config/index.js';
import { desiredTopology, type TopologyProbe } from '../../src/control/index.js';
import { classifyEntryKey, segAddrEntryKey, vifMacEntryKey, type TopologyState } from '../../src/dataplane/index.js';
import { formatAddress } from '../../src/net/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
import { xnetmon, startDaemon, stopProcess, inNs, spawnInNs } from '../support/lab.js';

const prefix = uniquePrefix('xm');
const seed = Number(process.env.XNETMON_SEED ?? Math.floor(Math.random() * 2 ** 31));
const steps = Number(process.env.XNETMON_MODEL_STEPS ?? 20);
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;
const spares: string[] = [];

/** mulberry32: a small seeded generator, so that a failing sequence can be replayed. */
function random(seedValue: number): () => number {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cli = (args: string[]) => xnetmon([...args, '--socket', socket]);
const host = (args: string[]) => inNs(lab.topology.host.ns, args);
const readConfig = (): XnetmonConfig => parseConfig(readFileSync(lab.configPath, 'utf8'), lab.configPath);

interface Dumped { key: unknown; value: unknown }
function dump(map: string): Dumped[] {
  const out = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${lab.pinDir}/${map}`], { encoding: 'utf8', maxBuffer: 256 << 20 })) as { formatted?: Dumped }[];
  return out.flatMap((e) => (e.formatted ? [e.formatted] : []));
}
const mac = (bytes: unknown): string => (bytes as (number | string)[]).map((b) => Number(b).toString(16).padStart(2, '0')).join(':');
const num = (v: unknown): number => Number(v);

/** The topology in the pinned maps, in the shape desiredTopology gives. */
function pinnedTopology(): TopologyState {
  const state: TopologyState = { ifaces: new Map(), classify: new Map(), vifMacs: new Map(), segAddrs: new Map() };
  for (const { key, value } of dump('xnm_ifaces')) {
    const v = value as Record<string, unknown>;
    state.ifaces.set(num(key), {
      kind: num(v.kind) === 1 ? 'phys' : 'vif', netId: num(v.net_id), linkSlot: num(v.link_slot), segIfindex: num(v.seg_ifindex),
      segVlan: num(v.seg_vlan), macLocked: (num(v.flags) & 1) !== 0,
    });
  }
  for (const { key, value } of dump('xnm_classify')) {
    const k = key as Record<string, unknown>;
    const v = value as Record<string, unknown>;
    const e = { ifindex: num(k.ifindex), vlan: num(k.vlan), mac: mac(k.mac), netId: num(v.net_id), vifIfindex: num(v.vif_ifindex) };
    state.classify.set(classifyEntryKey(e), e);
  }
  for (const { key, value } of dump('xnm_vif_macs')) {
    const k = key as Record<string, unknown>;
    const e = { ifindex: num(k.ifindex), mac: mac(k.mac), netId: num(value) };
    state.vifMacs.set(vifMacEntryKey(e), e);
  }
  for (const { key, value } of dump('xnm_seg_addrs')) {
    const k = key as Record<string, unknown>;
    const bytes = Buffer.from((k.addr as (number | string)[]).map(Number)).subarray(0, num(k.family) === 4 ? 4 : 16);
    const e = { ifindex: num(k.ifindex), vlan: num(k.vlan), address: formatAddress(bytes), netId: num(value) };
    state.segAddrs.set(segAddrEntryKey(e), e);
  }
  return state;
}

const canonical = (s: TopologyState) => ({
  ifaces: [...s.ifaces].sort((a, b) => a[0] - b[0]),
  classify: [...s.classify].sort((a, b) => a[0].localeCompare(b[0])),
  vifMacs: [...s.vifMacs].sort((a, b) => a[0].localeCompare(b[0])),
  segAddrs: [...s.segAddrs].sort((a, b) => a[0].localeCompare(b[0])),
});

function assertConverged(step: string): void {
  const config = readConfig();
  const probe: TopologyProbe = {
    ifindexOf: (name) => Number(host(['cat', `/sys/class/net/${name}/ifindex`]).trim()),
    hostMacOf: (link) => lab.topology.host.links.find((l) => l.name === link)?.bridgeMac,
  };
  const fresh = desiredTopology(config, probe).state;
  assert.deepEqual(canonical(pinnedTopology()), canonical(fresh), `${step}: the pinned topology is what a fresh daemon writes (seed ${seed})`);
  const declared = new Set(config.networks.map((n) => n.id));
  for (const map of ['xnm_routes4', 'xnm_routes6']) {
    for (const { key } of dump(map)) assert.ok(declared.has(num((key as Record<string, unknown>).net_id)), `${step}: ${map} holds only declared networks (seed ${seed})`);
  }
}

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  for (let i = 0; i < 2; i++) {
    const name = `${prefix}s${i}`;
    host(['ip', 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${prefix}p${i}`]);
    host(['ip', 'link', 'set', name, 'up']);
    host(['ip', 'link', 'set', `${prefix}p${i}`, 'up']);
    spares.push(name);
  }
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath, socket);
  xnetmon(['lab', 'load', '--prefix', prefix]);
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]); // the spares go with the host namespace
});

test(`a random sequence of changes, reloads and kill -9 restarts keeps the data plane equal to the file (seed ${seed})`, async (t) => {
  t.diagnostic(`seed ${seed} (XNETMON_SEED=${seed} replays it), ${steps} steps`);
  const rnd = random(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)]!;
  const base = readConfig();
  const red = base.networks.find((n) => n.name === 'red')!;
  const redLink1 = red.attachments[1]!;
  const greenVif1 = base.networks.find((n) => n.name === 'green')!.attachments[1]!.vif!;
  assertConverged('start');

  const [ext0, ext1] = lab.topology.networks[0].externals;
  const pinger = spawnInNs(ext0.ns, ['ping', '-n', '-q', '-i', '0.05', '-W', '1', ext1.iface.address]);
  let pingOut = '';
  pinger.stdout?.on('data', (d: Buffer) => { pingOut += d.toString(); });
  const pingDone = new Promise<void>((resolve) => pinger.on('exit', () => resolve()));

  /** A file edit that a reload (or a restart) applies: one of the changed definitions. */
  const edit = (config: XnetmonConfig): { config: XnetmonConfig; what: string } | undefined => {
    const has = (name: string) => config.networks.some((n) => n.name === name);
    const usedVifs = new Set(config.networks.flatMap((n) => [...n.routers.map((r) => r.vif), ...n.attachments.flatMap((a) => (a.vif ? [a.vif] : []))]));
    const options: (() => { config: XnetmonConfig; what: string } | undefined)[] = [
      () => {
        // red's link-1 MAC moves to green, or back.
        if (!has('red')) return undefined;
        const atGreen = config.networks.some((n) => n.name === 'green' && n.attachments.some((a) => a.mac === redLink1.mac));
        const networks = config.networks.map((n): NetworkDefinition => {
          if (n.name === 'red') return { ...n, attachments: atGreen ? [...n.attachments, redLink1] : n.attachments.filter((a) => a.mac !== redLink1.mac) };
          if (n.name === 'green') return { ...n, attachments: atGreen ? n.attachments.filter((a) => a.mac !== redLink1.mac) : [...n.attachments, { ...redLink1, vif: greenVif1 }] };
          return n;
        });
        return { config: { ...config, networks }, what: atGreen ? 'MAC back to red' : 'MAC red -> green' };
      },
      () => {
        // red comes back as it was (when its vifs are free).
        if (has('red') || red.attachments.some((a) => a.vif && usedVifs.has(a.vif)) || red.routers.some((r) => usedVifs.has(r.vif))) return undefined;
        const attachments = red.attachments.filter((a) => !config.networks.some((n) => n.attachments.some((b) => b.mac === a.mac)));
        return { config: { ...config, networks: [...config.networks, { ...red, attachments }] }, what: 'red back' };
      },
      () => {
        const networks = config.networks.map((n) => (n.name === 'green' ? { ...n, filterDefault: n.filterDefault === 'drop' ? 'accept' as const : 'drop' as const } : n));
        return { config: { ...config, networks }, what: 'green filter default' };
      },
    ];
    for (let tries = 0; tries < 6; tries++) {
      const result = pick(options)();
      if (result) return result;
    }
    return undefined;
  };

  for (let i = 0; i < steps; i++) {
    const config = readConfig();
    const names = config.networks.map((n) => n.name);
    const kind = pick(['add', 'set', 'del', 'reload', 'kill'] as const);
    let what = kind;
    if (kind === 'add' && !names.includes('gold')) {
      const usedVifs = new Set(config.networks.flatMap((n) => n.routers.map((r) => r.vif)));
      const vif = pick(spares.filter((s) => !usedVifs.has(s)));
      const link = pick(lab.topology.host.links).name;
      const macLast = Math.floor(rnd() * 200) + 16;
      cli(['net', 'add', '--definition', JSON.stringify({
        id: 4, name: 'gold', weight: 100, routers: [{ vif, clientPublicKey: generateKeyPair().publicKey }],
        attachments: [{ interface: link, vlan: 0, mac: `02:00:0a:00:04:${macLast.toString(16)}`, vif }],
      })]);
      what = `add gold on ${vif}/${link}` as typeof what;
    } else if (kind === 'set') {
      const name = pick(names);
      cli(['net', 'set', name, '--weight', String(Math.floor(rnd() * 1000) + 1)]);
      what = `set ${name}` as typeof what;
    } else if (kind === 'del' && names.some((n) => n === 'gold' || n === 'red')) {
      const name = pick(names.filter((n) => n === 'gold' || n === 'red'));
      cli(['net', 'del', name]);
      what = `del ${name}` as typeof what;
    } else if (kind === 'reload' || kind === 'kill') {
      const next = edit(config);
      if (kind === 'kill') await stopProcess(daemon, 'SIGKILL');
      if (next) writeFileSync(lab.configPath, serializeConfig(next.config));
      if (kind === 'kill') daemon = await startDaemon(lab.topology.host.ns, lab.configPath, socket);
      else cli(['reload']);
      what = `${kind}${next ? ` (${next.what})` : ''}` as typeof what;
    } else {
      what = `${kind} (nothing to do)` as typeof what;
    }
    t.diagnostic(`step ${i + 1}: ${what}`);
    assertConverged(`step ${i + 1} ${what}`);
  }
  pinger.kill('SIGINT');
  await pingDone;
  const sent = Number(/(\d+) packets transmitted/.exec(pingOut)?.[1] ?? 0);
  const received = Number(/(\d+) received/.exec(pingOut)?.[1] ?? 0);
  assert.ok(sent > 50, `blue pinged throughout (${sent})`);
  assert.ok(received >= sent * 0.99, `blue lost under 1 % across every step: ${received}/${sent} (seed ${seed})`);
});
