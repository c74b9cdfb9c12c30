// Quotas on the shared tables, against the in-memory data plane: a network at its quota gets
// ERR_QUOTA naming the table, the batch is refused whole, the refusal is counted, and the other
// network's routes and neighbours still go in. A restore that meets a full map keeps what fits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatch,
  neighbourBatchFromLists,
  routeChangesFromLists,
  UpdateManager,
  PROTOCOL_VERSION,
  type RouterInterface,
  type WireNeighbour,
  type WireRoute,
} from '../../src/manager/index.js';
import { applyNetworkChange, type TableCapacities } from '../../src/config/index.js';
import {
  BLUE,
  FakeDataPlane,
  FakeSession,
  ManualClock,
  MemoryLogger,
  segments,
  twoNetworkConfig,
} from '../support/manager-fakes.js';

let sequence = 1;
const routeBatch = (adds: WireRoute[], deletes: string[] = []): Buffer =>
  encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(adds, deletes) });
const neighbourBatch = (adds: WireNeighbour[]): Buffer =>
  encodeNeighbourBatch(neighbourBatchFromLists(sequence++, adds, []));
const GREEN_ETH0: RouterInterface = { index: 2, name: 'eth0', mac: '02:00:00:02:00:01' };
const viaVm = (prefix: string): WireRoute => ({ prefix, kind: 'via-vm', gateway: null, interface: null });
const connected = (prefix: string, iface: RouterInterface): WireRoute => ({
  prefix,
  kind: 'unicast',
  gateway: null,
  interface: iface,
});
const mac = (n: number): string => `02:aa:00:00:00:${n.toString(16).padStart(2, '0')}`;

/** Two networks of equal weight and no reservation: each gets half of every table. */
function setup(capacities: Partial<TableCapacities>, dp = new FakeDataPlane()) {
  const logger = new MemoryLogger();
  const manager = new UpdateManager({
    dataPlane: dp,
    config: twoNetworkConfig(60),
    segments,
    logger,
    clock: new ManualClock(),
    capacities,
  });
  const connect = async (network: string): Promise<FakeSession> => {
    const session = new FakeSession(network);
    void manager.attachSession(session);
    assert.equal((await session.request(encodeHello({ version: PROTOCOL_VERSION, clientName: 'r' }))).ok, true);
    return session;
  };
  return { dp, manager, logger, connect };
}

async function expectOk(session: FakeSession, payload: Buffer): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, true, `${ack.errorCode}: ${ack.errorMessage}`);
}

test('routes: a batch over the quota is refused whole with ERR_QUOTA naming the table; the other network still installs', async () => {
  const { dp, manager, connect, logger } = setup({ routes4: 20 });
  const blue = await connect('blue');
  const green = await connect('green');
  await expectOk(blue, routeBatch(Array.from({ length: 8 }, (_, i) => viaVm(`10.${i}.0.0/16`))));
  const before = dp.view(1);
  for (let attempt = 0; attempt < 3; attempt++) {
    const ack = await blue.request(routeBatch(Array.from({ length: 3 }, (_, i) => viaVm(`10.${100 + i}.0.0/16`))));
    assert.equal(ack.ok, false);
    assert.equal(ack.errorCode, 'ERR_QUOTA');
    assert.match(
      ack.errorMessage,
      /network blue is over its quota of routes4 \(xnm_routes4\): the batch would hold 11, the quota is 10; nothing of it was applied/,
    );
  }
  assert.deepEqual(dp.view(1), before, 'nothing of the refused batches was written');
  const status = manager.quotaStatus('blue');
  assert.deepEqual(status.routes4, { used: 8, quota: 10, rejections: 3 });
  assert.equal(status.routes6.rejections, 0);
  assert.equal(
    logger.lines.filter((l) => l.message === 'route-batch refused').length,
    1,
    'logged once per interval, counted every time',
  );
  // A batch that fits exactly, and a replacement at the quota, still go in.
  await expectOk(blue, routeBatch([viaVm('10.100.0.0/16'), viaVm('10.101.0.0/16')]));
  await expectOk(blue, routeBatch([viaVm('10.102.0.0/16')], ['10.100.0.0/16']));
  // green's half is untouched by blue.
  await expectOk(green, routeBatch(Array.from({ length: 10 }, (_, i) => viaVm(`10.${i}.0.0/16`))));
  assert.equal(Object.keys(dp.view(2)).length, 10);
});

test('next hops and neighbours: a NeighbourBatch over either quota is refused whole; the other network resolves its own', async () => {
  const { dp, manager, connect } = setup({ nexthops: 8, neighbours: 20 });
  const blue = await connect('blue');
  const green = await connect('green');
  await expectOk(blue, routeBatch([connected('10.1.0.0/24', BLUE.eth0)]));
  // Each neighbour on the connected subnet gets a host route with its own next hop.
  const neighbours = (from: number, count: number, iface: RouterInterface = BLUE.eth0): WireNeighbour[] =>
    Array.from({ length: count }, (_, i) => ({ address: `10.1.0.${from + i}`, mac: mac(from + i), interface: iface }));
  await expectOk(blue, neighbourBatch(neighbours(10, 4)));
  assert.equal(dp.nexthops.size, 4);
  const full = await blue.request(neighbourBatch(neighbours(20, 3)));
  assert.equal(full.errorCode, 'ERR_QUOTA');
  assert.match(full.errorMessage, /quota of nexthops \(xnm_nexthops\): the batch would hold 5, the quota is 4/);
  assert.equal(dp.nexthops.size, 4, 'the next hop made for the refused batch was released');
  assert.equal(manager.routeCounts('blue').neighbours, 4, 'no neighbour of the refused batch was kept');
  const many = await blue.request(
    neighbourBatch(
      Array.from({ length: 6 }, (_, i) => ({ address: `10.9.0.${i + 1}`, mac: mac(i + 1), interface: BLUE.eth0 })),
    ),
  );
  assert.equal(many.ok, true, 'neighbours off the connected subnet take no next hop');
  const over = await blue.request(
    neighbourBatch(
      Array.from({ length: 2 }, (_, i) => ({ address: `10.9.1.${i + 1}`, mac: mac(i + 1), interface: BLUE.eth0 })),
    ),
  );
  assert.equal(over.errorCode, 'ERR_QUOTA');
  assert.match(
    over.errorMessage,
    /quota of neighbours \(the neighbour table\): the batch would hold 12, the quota is 10/,
  );
  assert.deepEqual(
    [manager.quotaStatus('blue').nexthops.rejections, manager.quotaStatus('blue').neighbours.rejections],
    [1, 1],
  );
  // green's next hops and neighbours go in: blue never took them.
  await expectOk(green, routeBatch([connected('10.1.0.0/24', GREEN_ETH0)]));
  await expectOk(green, neighbourBatch(neighbours(10, 4, GREEN_ETH0)));
  assert.equal(Object.values(dp.view(2)).filter((t) => t.startsWith('nh ')).length, 4);
});

test('a quota change applies live: the next batch is judged against the new quota', async () => {
  const { manager, connect } = setup({ routes4: 20 });
  const blue = await connect('blue');
  assert.equal(
    (await blue.request(routeBatch(Array.from({ length: 12 }, (_, i) => viaVm(`10.${i}.0.0/16`))))).errorCode,
    'ERR_QUOTA',
  );
  manager.updateConfig(
    applyNetworkChange(applyNetworkChange(twoNetworkConfig(60), 'green', { quota: { routes4: 5 } }), 'blue', {
      quota: { routes4: 15 },
    }),
  );
  await expectOk(blue, routeBatch(Array.from({ length: 12 }, (_, i) => viaVm(`10.${i}.0.0/16`))));
  assert.equal(manager.quotaStatus('blue').routes4.quota, 15);
});

test('a restore that meets a full map keeps what fits, stays evicted behind the default, and finishes later', async () => {
  const dp = new FakeDataPlane();
  const { manager, connect } = setup({ routes4: 200 }, dp);
  const blue = await connect('blue');
  const green = await connect('green');
  await expectOk(blue, routeBatch(Array.from({ length: 10 }, (_, i) => viaVm(`10.${i}.0.0/16`))));
  assert.equal(manager.evictRoutes('blue', 1), 10);
  // The map holds fewer entries than the manager was told (a hostile fill, a smaller pinned map).
  await expectOk(green, routeBatch(Array.from({ length: 10 }, (_, i) => viaVm(`10.${i}.0.0/16`))));
  dp.maxRoutes = 16;
  const restored = manager.restoreRoutes('blue');
  assert.equal(restored, 5, 'what fitted went in');
  assert.equal(manager.routeCounts('blue').evicted, 5);
  assert.equal(dp.view(1)['0.0.0.0/0'], 'via-vm', 'the default to the VM stays while routes are evicted');
  assert.ok(manager.quotaStatus('blue').mapWriteFailures >= 1);
  dp.maxRoutes = Infinity;
  assert.equal(manager.restoreRoutes('blue'), 5);
  assert.equal(manager.routeCounts('blue').evicted, 0);
  assert.equal(dp.view(1)['0.0.0.0/0'], undefined, 'the default goes with the last evicted route');
  assert.equal(Object.keys(dp.view(1)).length, 10);
});
