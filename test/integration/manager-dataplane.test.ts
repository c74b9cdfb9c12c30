// The data plane manager on the real maps (root, build/xnetmon.bpf.o): a refused batch and a
// failed kernel write leave the maps unchanged, a host daemon restart over pinned maps adopts
// the routes and the router's resync leaves exactly its FIB, memory control round-trips.
// XNETMON_BPF_OBJECT names the object when the tests run from a copy outside the repository.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { DataPlane, defaultObjectPath } from '../../src/dataplane/index.js';
import { ifindexOf, nexthopLayout } from '../../src/loader/index.js';
import {
  encodeEndOfSync,
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatch,
  neighbourBatchFromLists,
  PROTOCOL_VERSION,
  routeChangesFromLists,
  segmentMapFromConfig,
  UpdateManager,
  type WireNeighbour,
  type WireNeighbourKey,
  type WireRoute,
} from '../../src/manager/index.js';
import { benchManagerLoad, benchManagerUpdates } from '../../bench/manager.js';
import { Scratch } from '../support/host.js';
import { margin } from '../support/timing.js';
import { BLUE, FakeSession, ManualClock, twoNetworkConfig } from '../support/manager-fakes.js';

const objectPath = process.env.XNETMON_BPF_OBJECT ?? defaultObjectPath();
let scratch: Scratch;
let hostLinks: Map<string, { ifindex: number; linkSlot: number }>;
const pinDirs: string[] = [];
const openPlanes: DataPlane[] = [];

before(() => {
  scratch = new Scratch('xmg');
  hostLinks = new Map([
    ['p0', { ifindex: ifindexOf(scratch.dummy('p')), linkSlot: 0 }],
    ['q0', { ifindex: ifindexOf(scratch.dummy('q')), linkSlot: 1 }],
  ]);
});

after(() => {
  for (const dp of openPlanes.splice(0)) dp.close();
  for (const dir of pinDirs) rmSync(dir, { recursive: true, force: true });
  scratch?.cleanup();
});

function open(options: { pinDir?: string; maxRoutes4?: number } = {}): DataPlane {
  const dp = DataPlane.open({ objectPath, ...options });
  openPlanes.push(dp);
  dp.defineNetwork({ id: 1, name: 'blue' });
  dp.defineNetwork({ id: 2, name: 'green' });
  for (const { ifindex, linkSlot } of hostLinks.values()) dp.setPhysical(ifindex, linkSlot);
  return dp;
}

function closePlane(dp: DataPlane): void {
  openPlanes.splice(openPlanes.indexOf(dp), 1);
  dp.close();
}

function newPinDir(): string {
  const dir = `/sys/fs/bpf/xmg-${randomBytes(3).toString('hex')}`;
  pinDirs.push(dir);
  return dir;
}

let sequence = 1;
const via = (prefix: string, gateway: string, iface = BLUE.eth0): WireRoute => ({
  prefix,
  kind: 'unicast',
  gateway,
  interface: iface,
});
const routes = (adds: WireRoute[], deletes: string[] = []) =>
  encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(adds, deletes) });
const neighbours = (adds: WireNeighbour[], deletes: WireNeighbourKey[] = []) =>
  encodeNeighbourBatch(neighbourBatchFromLists(sequence++, adds, deletes));

function manager(dp: DataPlane, clock = new ManualClock()): UpdateManager {
  return new UpdateManager({
    dataPlane: dp,
    config: twoNetworkConfig(60),
    segments: segmentMapFromConfig(hostLinks),
    clock,
  });
}

async function connect(m: UpdateManager): Promise<FakeSession> {
  const session = new FakeSession('blue');
  void m.attachSession(session);
  assert.equal((await session.request(encodeHello({ version: PROTOCOL_VERSION, clientName: 'r1' }))).ok, true);
  return session;
}

async function ok(session: FakeSession, payload: Buffer): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, true, `${ack.errorCode}: ${ack.errorMessage}`);
}

const sorted = (dp: DataPlane, netId: number) =>
  dp
    .listRoutes(netId)
    .map((r) => `${r.prefix} ${r.target.kind === 'nexthop' ? `nh${r.target.nexthopId}` : r.target.kind}`)
    .sort();
/** The IPv4 fast path's index entries of a network (route-index.ts), as hex key=value, sorted. */
const indexed = (dp: DataPlane, netId: number) => {
  const { keys, values, count } = dp.object.map('xnm_routes4_exact').lookupAll();
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = keys.subarray(i * 12, i * 12 + 12);
    const value = values.subarray(i * 8, i * 8 + 8);
    if (key.readUInt32LE(0) === netId) out.push(`${key.toString('hex')}=${value.toString('hex')}`);
  }
  return out.sort();
};

const routerFib: WireRoute[] = [
  via('10.9.0.0/16', '10.1.0.2'),
  via('10.20.0.0/16', '10.1.0.3'),
  via('2001:db8:9::/48', 'fe80::2'),
  { prefix: '10.66.0.0/16', kind: 'blackhole', gateway: null, interface: null },
  { prefix: '10.1.0.1/32', kind: 'local', gateway: null, interface: null },
];
const routerNeighbours: WireNeighbour[] = [
  { address: '10.1.0.2', mac: '02:00:00:ee:00:01', interface: BLUE.eth0 },
  { address: '10.1.0.3', mac: '02:00:00:ee:00:02', interface: BLUE.eth0 },
  { address: 'fe80::2', mac: '02:00:00:ee:00:06', interface: BLUE.eth0 },
];

describe('manager on the real maps', () => {
  test('a batch with one bad route leaves the maps unchanged', async () => {
    const dp = open();
    const m = manager(dp);
    const s = await connect(m);
    await ok(s, neighbours(routerNeighbours));
    await ok(s, routes(routerFib));
    const before = sorted(dp, 1);
    assert.equal(before.length, 5);
    const ack = await s.request(
      routes([via('10.30.0.0/16', '10.1.0.2'), via('10.31.0.0/16', '10.1.0.2', BLUE.spoof)], ['10.9.0.0/16']),
    );
    assert.equal(ack.errorCode, 'ERR_INVALID');
    assert.match(ack.errorMessage, /adds4\[1\] \(10\.31\.0\.0\/16\): interface eth9/);
    assert.deepEqual(sorted(dp, 1), before);
    assert.deepEqual(sorted(dp, 2), []);
    m.close();
    closePlane(dp);
  });

  test('a map that is full: the kernel refuses part of a batch and the maps are as before', async () => {
    const dp = open({ maxRoutes4: 8 });
    const m = manager(dp);
    const s = await connect(m);
    await ok(s, neighbours(routerNeighbours));
    await ok(s, routes(routerFib));
    const before = sorted(dp, 1);
    const indexBefore = indexed(dp, 1);
    assert.equal(indexBefore.length, 4, 'the IPv4 routes are indexed');
    const many = Array.from({ length: 10 }, (_, i) => via(`10.${100 + i}.0.0/16`, '10.1.0.3'));
    const ack = await s.request(routes([via('10.9.0.0/16', '10.1.0.3'), ...many], ['10.66.0.0/16']));
    assert.equal(ack.ok, false);
    assert.match(ack.errorMessage, /writing network blue's maps failed, nothing changed/);
    assert.deepEqual(sorted(dp, 1), before);
    assert.deepEqual(indexed(dp, 1), indexBefore, 'the index as before too (10.9.0.0/16 to its old next hop)');
    assert.equal(m.routes('blue').length, 5);
    m.close();
    closePlane(dp);
  });

  test("host daemon restart over pinned maps: routes adopted as stale, the resync leaves exactly the router's FIB", async () => {
    const pinDir = newPinDir();
    const dp1 = open({ pinDir });
    const m1 = manager(dp1);
    const s1 = await connect(m1);
    await ok(s1, neighbours(routerNeighbours));
    await ok(s1, routes(routerFib));
    await ok(s1, encodeEndOfSync({ sequence: sequence++ }));
    const installed = sorted(dp1, 1);
    m1.close();
    closePlane(dp1);

    const dp2 = open({ pinDir });
    assert.equal(dp2.adopted, true);
    assert.deepEqual(sorted(dp2, 1), installed, 'the pinned maps kept forwarding across the restart');
    const m2 = manager(dp2);
    assert.equal(m2.routeCounts('blue').stale, 5);
    const s2 = await connect(m2);
    await ok(s2, neighbours(routerNeighbours));
    // The router lost 10.20.0.0/16 and gained 10.50.0.0/16 meanwhile.
    await ok(s2, routes([...routerFib.filter((r) => r.prefix !== '10.20.0.0/16'), via('10.50.0.0/16', '10.1.0.3')]));
    await ok(s2, encodeEndOfSync({ sequence: sequence++ }));
    const after = sorted(dp2, 1);
    assert.deepEqual(
      after,
      [
        ...installed.filter((r) => !r.startsWith('10.20.0.0/16')),
        installed.find((r) => r.startsWith('10.20.0.0/16'))!.replace('10.20.0.0/16', '10.50.0.0/16'),
      ].sort(),
      'same next hop ids: the adopted next hops were re-used',
    );
    assert.equal(m2.routeCounts('blue').stale, 0);
    // The next hop the routes use is valid and carries blue's MAC and the neighbour's.
    const id = dp2.listRoutes(1).find((r) => r.prefix === '10.50.0.0/16')!.target as { nexthopId: number };
    const key = [id.nexthopId & 255, (id.nexthopId >> 8) & 255, 0, 0].map(String);
    const entry = JSON.parse(
      execFileSync('bpftool', ['-j', 'map', 'lookup', 'pinned', `${pinDir}/xnm_nexthops`, 'key', ...key], {
        encoding: 'utf8',
      }),
    ) as { formatted?: { value: Record<string, unknown> } };
    const value = entry.formatted?.value;
    assert.ok(value, 'bpftool shows the next hop with BTF');
    assert.equal(value.net_id, 1);
    assert.equal(value.ifindex, hostLinks.get('p0')!.ifindex);
    assert.deepEqual(value.dmac, [2, 0, 0, 0xee, 0, 2]);
    assert.deepEqual(value.smac, [2, 0, 0, 1, 0, 1]);
    m2.close();
    dp2.flushRoutes();
    closePlane(dp2);
  });

  test('memory control on the real maps: evict then restore', async () => {
    const dp = open();
    const m = manager(dp);
    const s = await connect(m);
    await ok(s, neighbours(routerNeighbours));
    await ok(s, routes([...routerFib, via('10.9.7.0/24', '10.1.0.3')]));
    const full = sorted(dp, 1);
    assert.equal(m.evictRoutes('blue', 0.2), 3); // 10.1.0.1/32, then 10.9.7.0/24 with its cover 10.9.0.0/16
    assert.deepEqual(
      sorted(dp, 1).filter((r) => !r.includes(':')),
      ['0.0.0.0/0 via-vm', ...full.filter((r) => r.startsWith('10.20.') || r.startsWith('10.66.'))].sort(),
    );
    assert.equal(m.restoreRoutes('blue'), 3);
    assert.deepEqual(sorted(dp, 1), full);
    m.close();
    closePlane(dp);
  });

  test('a connected /24 with two neighbours: two /32 next hops to them, the /24 via the VM; a neighbour that goes takes its /32', async () => {
    const dp = open();
    const m = manager(dp);
    const s = await connect(m);
    await ok(s, routes([{ prefix: '10.1.0.0/24', kind: 'unicast', gateway: null, interface: BLUE.eth0 }]));
    await ok(
      s,
      neighbours([
        { address: '10.1.0.5', mac: '02:00:00:ee:00:05', interface: BLUE.eth0 },
        { address: '10.1.0.6', mac: '02:00:00:ee:00:06', interface: BLUE.eth0 },
      ]),
    );
    const installed = dp.listRoutes(1).sort((a, b) => a.prefix.localeCompare(b.prefix));
    assert.deepEqual(
      installed.map((r) => `${r.prefix} ${r.target.kind}`),
      ['10.1.0.0/24 via-vm', '10.1.0.5/32 nexthop', '10.1.0.6/32 nexthop'],
    );
    // Each next hop leaves on p0 from blue's router MAC to the neighbour's MAC.
    const nexthops = dp.object.map('xnm_nexthops');
    for (const [route, dmac] of [
      [installed[1]!, [2, 0, 0, 0xee, 0, 5]],
      [installed[2]!, [2, 0, 0, 0xee, 0, 6]],
    ] as const) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE((route.target as { nexthopId: number }).nexthopId);
      const value = nexthopLayout.decode(nexthops.lookup(key)!);
      assert.equal(value.net_id, 1);
      assert.equal(value.ifindex, hostLinks.get('p0')!.ifindex);
      assert.deepEqual(value.smac, [2, 0, 0, 1, 0, 1]);
      assert.deepEqual(value.dmac, dmac);
    }
    assert.equal(m.routeCount('blue'), 3);

    await ok(s, neighbours([], [{ address: '10.1.0.5', interface: BLUE.eth0 }]));
    assert.deepEqual(sorted(dp, 1), [
      '10.1.0.0/24 via-vm',
      `10.1.0.6/32 nh${(installed[2]!.target as { nexthopId: number }).nexthopId}`,
    ]);
    assert.equal(m.routeCount('blue'), 2);
    m.close();
    closePlane(dp);
  });

  test(
    'a full table of 1,000,000 routes over the secure channel: every batch acked, and the session stays up ' +
      'for the updates after it (a batch is written without reading the table first: no skew)',
    async () => {
      // The router's resync as its client sends it (batches of at most 1 MiB, all in flight at once), then 20
      // batches of 1,000 changes on the same session. A write that blocked the host's event loop past
      // e_max_ms got the records queued meanwhile refused as 'skew', and the session closed (on a loaded
      // machine: how long a record waits depends on it; test/unit/manager.test.ts checks the cause).
      // e_max_ms follows the machine's speed, as an operator of a slow host would set it: in CI's 6.1
      // VM (~8x slower) the resync's records waited in the host's socket longer than the default 2 s
      // behind the batches written before them, and the session closed.
      const updates = await benchManagerUpdates({
        routes: 1_000_000,
        batches: 20,
        transport: 'secure',
        eMaxMs: Math.max(2000, margin(2000)),
      });
      assert.equal(updates.updates, 20_000);
      assert.equal(updates.routes, 1_000_000);
    },
  );

  test('the benchmarks run on a small table and leave no interface behind', async () => {
    const load = await benchManagerLoad({ routes: 20_000 });
    assert.equal(load.routes, 20_000);
    assert.equal(
      load.installed,
      20_000 + 2 + 16,
      'the FIB, the connected subnet and local address, a host route per gateway',
    );
    assert.ok(load.seconds > 0 && load.routes_per_second > 0);
    const updates = await benchManagerUpdates({ routes: 20_000, batches: 5 });
    assert.equal(updates.updates, 5_000);
    assert.ok(updates.updates_per_second > 0);
    assert.equal(
      execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => /: xbm[0-9a-f]{4}/.test(l)).length,
      0,
    );
  });
});
