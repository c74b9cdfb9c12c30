// Adversarial lab (docs/security.md): hostile routers and external machines against a
// victim network doing real work, in real namespaces with the real daemon. What is
// asserted is what the victim sees (its router reachable, its packets forwarded, its
// counters and its bridge entries untouched), that every hostile frame is counted with
// a reason against the network that sent it, and that the daemon stays up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { uniquePrefix, labMac, ipv4InReceives, type LabState } from '../../src/lab/index.js';
import { readPinnedCounters, type NetCounters } from '../../src/dataplane/index.js';
import { REASONS, type ReasonName } from '../../src/loader/index.js';
import { buildFrame } from '../../src/packet/index.js';
import { xnetmon, ping, pingViaRouter, startDaemon, stopProcess, inNs, sleep, pinNeighbours } from '../support/lab.js';
import { fuzzFrames, sendFrames } from '../support/fuzz.js';

const prefix = uniquePrefix('xv');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;

const BLUE = 1;
const GREEN = 2;
const NETS = [0, 1, 2, 3];
/** Verdicts only the physical ingress program gives (the vif and TC programs give from_vm, tc_pass, spoof, residual). */
const PHYS_REASONS = REASONS.filter((r) => !['from_vm', 'tc_pass', 'drop_spoof', 'drop_residual'].includes(r));
/** Verdicts the vif program gives. */
const VIF_REASONS: ReasonName[] = ['from_vm', 'drop_spoof', 'drop_malformed', 'drop_residual', 'drop_cpu'];

const counters = (): Map<number, NetCounters> => new Map(readPinnedCounters(lab.pinDir, NETS).map((c) => [c.netId, c]));
const total = (m: Map<number, NetCounters>): bigint => NETS.reduce((s, n) => s + sum(m.get(n)!, REASONS), 0n);

/** The counters once frames still in the veths' queues have arrived: two reads 100 ms apart agree. */
// Settled: no verdict for three reads in a row, 100 ms apart (one quiet read could fall between two
// frames that a loaded machine's softirq had not run yet).
async function settled(): Promise<Map<number, NetCounters>> {
  let last = counters();
  let quiet = 0;
  for (let i = 0; i < 50 && quiet < 3; i++) {
    await sleep(100);
    const now = counters();
    quiet = total(now) === total(last) ? quiet + 1 : 0;
    last = now;
  }
  return last;
}
const sum = (c: NetCounters, reasons: readonly ReasonName[]): bigint => reasons.reduce((s, r) => s + c.verdicts[r], 0n);
const delta = (
  a: Map<number, NetCounters>,
  b: Map<number, NetCounters>,
  net: number,
  reasons: readonly ReasonName[],
): number => Number(sum(b.get(net)!, reasons) - sum(a.get(net)!, reasons));

function daemonAlive(): void {
  assert.equal(daemon?.exitCode, null, 'the daemon is still running');
  const status = JSON.parse(xnetmon(['status', '--json', '--socket', socket])) as { networks: unknown[] };
  assert.equal(status.networks.length, 3, 'and answers');
}

/** Blue's service, as its users see it: the host reaches its router, and its external machines reach each other through the fast path. */
function blueWorks(): void {
  const blue = lab.topology.networks[0];
  assert.equal(
    pingViaRouter(lab.pinDir, BLUE, lab.topology.host.ns, blue.router.interfaces[0].address, 10, 0.02),
    10,
    "the host reaches blue's router (replies, or the residual drop of blue's own output)",
  );
  assert.equal(
    ping(blue.externals[0].ns, blue.externals[1].iface.address, 10, 0.02),
    10,
    "blue's traffic is forwarded",
  );
}

/**
 * The seed of a fuzz run: XNETMON_FUZZ_SEED replays a failed run (its message names the seed),
 * else a random one.
 */
function fuzzSeed(): number {
  const forced = process.env.XNETMON_FUZZ_SEED;
  if (forced === undefined || forced === '') return randomInt(2 ** 31);
  const seed = Number(forced);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`XNETMON_FUZZ_SEED=${forced} is not an integer in [0, 2^32)`);
  }
  return seed;
}

/** A network's verdicts at the physical ingress that moved, by reason, for an assertion's message. */
function moved(a: Map<number, NetCounters>, b: Map<number, NetCounters>, net: number): string {
  const parts = PHYS_REASONS.map((r) => `${r}=${b.get(net)!.verdicts[r] - a.get(net)!.verdicts[r]}`);
  return parts.filter((p) => !p.endsWith('=0')).join(' ') || 'none';
}

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]);
  blueWorks(); // and the bridges learn where each router is
  // Every blue verdict in a counting window is then a hostile frame's (pinNeighbours()).
  pinNeighbours(lab.topology.networks[0]);
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

test("a router sending with another router's MAC: dropped and counted against it; the victim's counters and bridge entry do not move", async () => {
  const green = lab.topology.networks[1];
  const blueMac = labMac('router', BLUE, 0);
  const forged = buildFrame({
    src: blueMac,
    dst: labMac('ext', BLUE, 0),
    ipv4: { src: '10.1.0.1', dst: '10.1.0.2', udp: { sport: 9, dport: 9 }, payload: 1042 - 42 },
  });
  assert.equal(forged.length, 1042);
  const arp = buildFrame({
    src: green.router.interfaces[0].mac,
    dst: 'ff:ff:ff:ff:ff:ff',
    arp: { op: 2, senderMac: blueMac, senderIp: '10.1.0.1', targetIp: '10.1.0.254' },
  });
  const before = counters();
  sendFrames(
    green.router.ns,
    'eth0',
    Array.from({ length: 20_000 }, () => forged),
    lab.stateDir,
    'forged',
  );
  sendFrames(
    green.router.ns,
    'eth0',
    Array.from({ length: 100 }, () => arp),
    lab.stateDir,
    'arp',
  );
  const after = await settled();
  assert.equal(
    delta(before, after, GREEN, ['drop_spoof']),
    20_100,
    'every forged frame dropped as spoofed, charged to green',
  );
  for (let slot = 0; slot < 2; slot++) {
    assert.equal(
      after.get(BLUE)!.linkOffered[slot],
      before.get(BLUE)!.linkOffered[slot],
      `blue's link ${slot} bytes do not move`,
    );
  }
  assert.equal(
    delta(before, after, BLUE, PHYS_REASONS),
    0,
    `nothing of it was classified as blue (moved: ${moved(before, after, BLUE)})`,
  );
  const fdb = inNs(lab.topology.host.ns, ['bridge', 'fdb', 'show', 'br', lab.topology.host.links[0].bridge]);
  const blueEntry = fdb.split('\n').filter((l) => l.startsWith(blueMac));
  assert.ok(
    blueEntry.length && blueEntry.every((l) => l.includes(`dev ${lab.topology.networks[0].router.interfaces[0].vif} `)),
    `blue's MAC is still learned on blue's vif:\n${blueEntry.join('\n')}`,
  );
  blueWorks();
  daemonAlive();
});

test('3,000 malformed and edge frames from an external machine: each counted with a reason, none classified as another network', async (t) => {
  const green = lab.topology.networks[1];
  const blue = lab.topology.networks[0];
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (XNETMON_FUZZ_SEED replays it)`);
  const frames = fuzzFrames({
    seed,
    count: 3000,
    sources: [green.externals[0].iface.mac],
    destinations: [
      labMac('router', GREEN, 0),
      labMac('router', GREEN, 0),
      lab.topology.host.links[0].bridgeMac,
      'ff:ff:ff:ff:ff:ff',
      '02:42:00:00:00:99',
    ],
    src4: green.externals[0].iface.address,
    dst4: green.externals[1].iface.address,
  });
  const blueExtIn = ipv4InReceives(blue.externals[1].ns);
  const before = counters();
  sendFrames(green.externals[0].ns, 'eth0', frames, lab.stateDir, 'fuzz-ext');
  const after = await settled();
  const counted = NETS.reduce((s, n) => s + delta(before, after, n, PHYS_REASONS), 0);
  assert.ok(
    counted >= 3000 && counted <= 3100,
    `seed ${seed}: ${counted} verdicts at the physical ingress for 3,000 frames (every frame counted, once)`,
  );
  assert.equal(
    delta(before, after, BLUE, PHYS_REASONS),
    0,
    `seed ${seed}: nothing classified as blue (moved: ${moved(before, after, BLUE)})`,
  );
  const blueExtAfter = ipv4InReceives(blue.externals[1].ns);
  assert.equal(blueExtAfter, blueExtIn, `seed ${seed}: nothing reached blue's machine behind the host`);
  daemonAlive();
  // What belongs to no network is where an operator looks too.
  const status = JSON.parse(xnetmon(['status', '--json', '--socket', socket])) as { noNetwork: Record<string, number> };
  assert.ok(
    status.noNetwork.pass_host >= Number(after.get(0)!.verdicts.pass_host),
    'status shows the traffic of no network',
  );
  assert.match(xnetmon(['status', '--socket', socket]), /\(no network\)\s+.*pass_host=\d+/);
  blueWorks();
});

test("3,000 malformed and edge frames from a router: each counted against that router's network, the victim untouched", async (t) => {
  const green = lab.topology.networks[1];
  const seed = fuzzSeed();
  t.diagnostic(`seed ${seed} (XNETMON_FUZZ_SEED replays it)`);
  const frames = fuzzFrames({
    seed,
    count: 3000,
    sources: [
      green.router.interfaces[0].mac,
      green.router.interfaces[0].mac,
      labMac('router', BLUE, 0),
      '02:42:00:00:00:98',
    ],
    destinations: [
      green.externals[0].iface.mac,
      'ff:ff:ff:ff:ff:ff',
      '02:42:00:00:00:99',
      lab.topology.host.links[0].bridgeMac,
    ],
    src4: green.router.interfaces[0].address,
    dst4: green.externals[0].iface.address,
  });
  const before = counters();
  sendFrames(green.router.ns, 'eth0', frames, lab.stateDir, 'fuzz-router');
  const after = await settled();
  const counted = delta(before, after, GREEN, VIF_REASONS);
  assert.ok(counted >= 3000 && counted <= 3100, `seed ${seed}: ${counted} verdicts on green's vif for 3,000 frames`);
  assert.ok(
    delta(before, after, GREEN, ['drop_spoof']) > 1000,
    `seed ${seed}: forged sources and tags dropped as spoofed`,
  );
  for (let slot = 0; slot < 2; slot++)
    assert.equal(
      after.get(BLUE)!.linkOffered[slot],
      before.get(BLUE)!.linkOffered[slot],
      `seed ${seed}: blue pays nothing on link ${slot}`,
    );
  assert.equal(
    delta(before, after, BLUE, PHYS_REASONS),
    0,
    `seed ${seed}: nothing classified as blue (moved: ${moved(before, after, BLUE)})`,
  );
  daemonAlive();
  blueWorks();
});
