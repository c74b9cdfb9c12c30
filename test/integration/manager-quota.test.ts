// Quotas on the real maps (root, build/xnetmon.bpf.o), with the data plane opened with small
// route maps so that filling them is fast: a hostile router fills its quota of xnm_routes4,
// xnm_routes6 and xnm_nexthops, is refused with ERR_QUOTA, and the other network's routes,
// neighbours and next hops still install: it never sees ERR_MAP_FULL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane, defaultObjectPath } from '../../src/dataplane/index.js';
import { ifindexOf } from '../../src/loader/index.js';
import {
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatch,
  neighbourBatchFromLists,
  PROTOCOL_VERSION,
  routeChangesFromLists,
  segmentMapFromConfig,
  UpdateManager,
  type RouterInterface,
  type WireNeighbour,
  type WireRoute,
} from '../../src/manager/index.js';
import { Scratch } from '../support/host.js';
import { BLUE, FakeSession, ManualClock, twoNetworkConfig } from '../support/manager-fakes.js';

const objectPath = process.env.XNETMON_BPF_OBJECT ?? defaultObjectPath();
const GREEN_ETH0: RouterInterface = { index: 2, name: 'eth0', mac: '02:00:00:02:00:01' };
/** Sizes the maps are opened with; the manager is told the same (each network: half). */
const MAX_ROUTES4 = 100_000;
const MAX_ROUTES6 = 64;
let scratch: Scratch;
let dp: DataPlane;
let manager: UpdateManager;

before(() => {
  scratch = new Scratch('xmq');
  const hostLinks = new Map([
    ['p0', { ifindex: ifindexOf(scratch.dummy('p')), linkSlot: 0 }],
    ['q0', { ifindex: ifindexOf(scratch.dummy('q')), linkSlot: 1 }],
  ]);
  dp = DataPlane.open({ objectPath, maxRoutes4: MAX_ROUTES4, maxRoutes6: MAX_ROUTES6 });
  dp.defineNetwork({ id: 1, name: 'blue' });
  dp.defineNetwork({ id: 2, name: 'green' });
  for (const { ifindex, linkSlot } of hostLinks.values()) dp.setPhysical(ifindex, linkSlot);
  manager = new UpdateManager({
    dataPlane: dp,
    config: twoNetworkConfig(60),
    segments: segmentMapFromConfig(hostLinks),
    clock: new ManualClock(),
    // Neighbours are manager memory: a larger bound here, so that the next hop quota is what stops blue.
    capacities: { routes4: MAX_ROUTES4, routes6: MAX_ROUTES6, neighbours: 200_000 },
  });
});

after(() => {
  manager?.close();
  dp?.close();
  scratch?.cleanup();
});

let sequence = 1;
const routes = (adds: WireRoute[]) => encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(adds, []) });
const neighbours = (adds: WireNeighbour[]) => encodeNeighbourBatch(neighbourBatchFromLists(sequence++, adds, []));
const connected = (prefix: string, iface: RouterInterface): WireRoute => ({
  prefix,
  kind: 'unicast',
  gateway: null,
  interface: iface,
});
const viaVm = (prefix: string): WireRoute => ({ prefix, kind: 'via-vm', gateway: null, interface: null });
/** `count` neighbours on 10.64.0.0/16 from host number `from`, each with its own MAC (its own next hop). */
const hosts = (from: number, count: number, iface: RouterInterface): WireNeighbour[] =>
  Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return {
      address: `10.64.${n >> 8}.${n & 255}`,
      mac: `02:bb:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`,
      interface: iface,
    };
  });

async function connect(network: string): Promise<FakeSession> {
  const session = new FakeSession(network);
  void manager.attachSession(session);
  assert.equal((await session.request(encodeHello({ version: PROTOCOL_VERSION, clientName: network }))).ok, true);
  return session;
}

async function ok(session: FakeSession, payload: Buffer): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, true, `${ack.errorCode}: ${ack.errorMessage}`);
}

test('three NeighbourBatches of 25,000 cannot take xnm_nexthops: refused at the quota, the other network still resolves', async () => {
  const blue = await connect('blue');
  const green = await connect('green');
  await ok(blue, routes([connected('10.64.0.0/16', BLUE.eth0)]));
  const quota = manager.quotaStatus('blue').nexthops.quota;
  assert.equal(quota, 32_767, 'half of the 65,535 next hop ids');
  await ok(blue, neighbours(hosts(1, 25_000, BLUE.eth0)));
  for (const from of [25_001, 50_001]) {
    const ack = await blue.request(neighbours(hosts(from, 12_000, BLUE.eth0)));
    assert.equal(ack.errorCode, 'ERR_QUOTA', ack.errorMessage);
    assert.match(
      ack.errorMessage,
      /network blue is over its quota of nexthops \(xnm_nexthops\).*the quota is 32767; nothing of it was applied/,
    );
  }
  const status = manager.quotaStatus('blue');
  assert.equal(status.nexthops.used, 25_000);
  assert.equal(status.nexthops.rejections, 2);
  assert.equal(manager.routeCounts('blue').neighbours, 25_000, 'nothing of the refused batches was kept');
  assert.equal(dp.listRoutes(1).length, 25_001, 'the maps hold the accepted batch only');

  // green: a connected subnet, 30,000 neighbours with their next hops, and gateway routes through them.
  await ok(green, routes([connected('10.64.0.0/16', GREEN_ETH0)]));
  await ok(green, neighbours(hosts(1, 30_000, GREEN_ETH0)));
  await ok(green, routes([{ prefix: '10.99.0.0/16', kind: 'unicast', gateway: '10.64.0.7', interface: GREEN_ETH0 }]));
  const target = dp.listRoutes(2).find((r) => r.prefix === '10.99.0.0/16')?.target;
  assert.equal(target?.kind, 'nexthop', "green's route goes to the fast path: its next hop was made");
  assert.equal(manager.quotaStatus('green').nexthops.used, 30_000);
  assert.equal(manager.quotaStatus('green').mapWriteFailures, 0, 'green never saw a full map');
});

test('IPv4 and IPv6 route maps: the hostile network stops at its quota, the other fills its own share', async () => {
  const blue = await connect('blue');
  const green = await connect('green');
  // After the first test blue holds 25,001 IPv4 entries of its 50,000; green 30,002.
  const blueLeft = manager.quotaStatus('blue').routes4.quota - manager.quotaStatus('blue').routes4.used;
  const v4 = (base: number, count: number): WireRoute[] =>
    Array.from({ length: count }, (_, i) =>
      viaVm(`172.${16 + ((base + i) >> 16)}.${((base + i) >> 8) & 255}.${(base + i) & 255}/32`),
    );
  await ok(blue, routes(v4(0, blueLeft)));
  const full4 = await blue.request(routes(v4(blueLeft, 1)));
  assert.equal(full4.errorCode, 'ERR_QUOTA');
  assert.match(full4.errorMessage, /quota of routes4 \(xnm_routes4\)/);
  const v6 = (base: number, count: number): WireRoute[] =>
    Array.from({ length: count }, (_, i) => viaVm(`2001:db8:${(base + i).toString(16)}::/48`));
  await ok(blue, routes(v6(0, 32)));
  const full6 = await blue.request(routes(v6(32, 1)));
  assert.equal(full6.errorCode, 'ERR_QUOTA');
  assert.match(full6.errorMessage, /quota of routes6 \(xnm_routes6\): the batch would hold 33, the quota is 32/);

  const greenLeft = manager.quotaStatus('green').routes4.quota - manager.quotaStatus('green').routes4.used;
  await ok(green, routes(v4(0, greenLeft)));
  await ok(green, routes(v6(0, 32)));
  assert.equal(dp.listRoutes(2).filter((r) => r.prefix.includes(':')).length, 32);
  assert.equal(manager.quotaStatus('green').mapWriteFailures, 0);
  assert.ok(
    manager.quotaStatus('blue').routes4.rejections >= 1 && manager.quotaStatus('blue').routes6.rejections === 1,
  );
});
