// Several routers per network (docs/manager.md, "Several routers"): each router's session is
// its own (a new session of one never replaces the other's), and its resync, end-of-sync and
// hold time touch only what it announced; a prefix both announce stays while either does.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type XnetmonConfig } from '../../src/config/index.js';
import {
  encodeEndOfSync,
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
import { FakeDataPlane, FakeSession, KEYS, ManualClock, segments } from '../support/manager-fakes.js';

const KEY_A = KEYS.blue;
const KEY_B = Buffer.alloc(32, 3).toString('base64');

/** blue with two routers: A (vifb, eth0 on p0 as 02:..:01) and B (vifb2, eth0 on p0 as 02:..:03). */
function twoRouterConfig(routers: 'both' | 'only-a' = 'both', staleRouteTimeoutS = 60): XnetmonConfig {
  const b = routers === 'both' ? `, { vif: vifb2, client_public_key: "${KEY_B}" }` : '';
  return parseConfig(`
host:
  links: [{ name: p0, capacity_mbps: 1000 }, { name: q0, capacity_mbps: 1000 }]
  stale_route_timeout_s: ${staleRouteTimeoutS}
networks:
  - id: 1
    name: blue
    routers: [{ vif: vifb, client_public_key: "${KEY_A}" }${b}]
    attachments:
      - { interface: p0, vlan: 0, mac: "02:00:00:01:00:01" }
      - { interface: p0, vlan: 0, mac: "02:00:00:01:00:03" }
`);
}

const ETH0_A: RouterInterface = { index: 2, name: 'eth0', mac: '02:00:00:01:00:01' };
const ETH0_B: RouterInterface = { index: 2, name: 'eth0', mac: '02:00:00:01:00:03' };
const MAC = { g1: '02:00:00:ee:00:01', g2: '02:00:00:ee:00:02' };
const NH = (dmac: string, from: string) => `nh ${dmac} 10/0 from ${from}`;

let sequence = 1;
const routes = (adds: WireRoute[], deletes: string[] = []): Buffer =>
  encodeRouteBatch({ sequence: sequence++, ...routeChangesFromLists(adds, deletes) });
const neighbours = (adds: WireNeighbour[]): Buffer =>
  encodeNeighbourBatch(neighbourBatchFromLists(sequence++, adds, []));
const endOfSync = (): Buffer => encodeEndOfSync({ sequence: sequence++ });
const via = (prefix: string, gateway: string, iface: RouterInterface): WireRoute => ({
  prefix,
  kind: 'unicast',
  gateway,
  interface: iface,
});
const blackhole = (prefix: string): WireRoute => ({ prefix, kind: 'blackhole', gateway: null, interface: null });

function setup(options: { dp?: FakeDataPlane; staleRouteTimeoutS?: number } = {}) {
  const dp = options.dp ?? new FakeDataPlane();
  const clock = new ManualClock();
  const manager = new UpdateManager({
    dataPlane: dp,
    config: twoRouterConfig('both', options.staleRouteTimeoutS),
    segments,
    clock,
  });
  const connect = async (key: string): Promise<FakeSession> => {
    const session = new FakeSession('blue', '192.0.2.9:40000', key);
    void manager.attachSession(session);
    await ok(session, encodeHello({ version: PROTOCOL_VERSION, clientName: key === KEY_A ? 'a' : 'b' }));
    return session;
  };
  return { dp, clock, manager, connect };
}

async function ok(session: FakeSession, payload: Buffer): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, true, `${ack.errorCode}: ${ack.errorMessage}`);
}

async function disconnect(session: FakeSession): Promise<void> {
  session.close();
  await new Promise((resolve) => setImmediate(resolve));
}

describe('several routers per network', () => {
  test("each router has its own session: a new session of A never replaces B's", async () => {
    const { manager, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    assert.equal(a.closed, false);
    assert.deepEqual(
      manager.sessions().map((s) => [s.router, s.connected, s.clientName]),
      [
        ['vifb', true, 'a'],
        ['vifb2', true, 'b'],
      ],
    );
    const a2 = await connect(KEY_A);
    assert.equal(a.closed, true, "A's newer session replaces A's older one");
    assert.equal(b.closed, false, "B's session is untouched");
    await disconnect(a2);
    assert.deepEqual(
      manager.sessions().map((s) => s.connected),
      [false, true],
    );
  });

  test("a session with a key that is none of the network's routers is closed", async () => {
    const { manager } = setup();
    const stranger = new FakeSession('blue', '192.0.2.9:40000', Buffer.alloc(32, 9).toString('base64'));
    await manager.attachSession(stranger);
    assert.equal(stranger.closed, true);
  });

  test('end-of-sync of one router removes only the routes that router installed', async () => {
    const { dp, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    await ok(a, routes([blackhole('10.9.0.0/16')]));
    await ok(a, endOfSync());
    await ok(b, routes([blackhole('10.20.0.0/16')]));
    await ok(b, endOfSync());
    // A reconnects and resyncs with an empty table: only A's route goes.
    const a2 = await connect(KEY_A);
    assert.deepEqual(
      dp.view(1),
      { '10.20.0.0/16': 'blackhole', '10.9.0.0/16': 'blackhole' },
      'a resync keeps routes until its end',
    );
    await ok(a2, endOfSync());
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': 'blackhole' });
    // B's resync with an empty table takes B's.
    await ok(b, encodeHello({ version: PROTOCOL_VERSION, clientName: 'b' }));
    await ok(b, endOfSync());
    assert.deepEqual(dp.view(1), {});
  });

  test('a router whose session expires loses only its own routes and neighbours', async () => {
    const { dp, clock, manager, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    await ok(a, neighbours([{ address: '10.1.0.2', mac: MAC.g1, interface: ETH0_A }]));
    await ok(a, routes([via('10.9.0.0/16', '10.1.0.2', ETH0_A)]));
    await ok(b, neighbours([{ address: '10.1.0.3', mac: MAC.g2, interface: ETH0_B }]));
    await ok(b, routes([via('10.20.0.0/16', '10.1.0.3', ETH0_B)]));
    await disconnect(a);
    assert.equal(manager.routeCounts('blue').stale, 1, "A's route is stale, B's is not");
    clock.advance(60_000);
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': NH(MAC.g2, '02:00:00:01:00:03') });
    assert.equal(b.closed, false);
    assert.equal(dp.nexthops.size, 1);
  });

  test('a prefix both announce: the most recent announcement is installed, and it stays while either announces it', async () => {
    const { dp, clock, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    await ok(a, neighbours([{ address: '10.1.0.2', mac: MAC.g1, interface: ETH0_A }]));
    await ok(b, neighbours([{ address: '10.1.0.3', mac: MAC.g2, interface: ETH0_B }]));
    await ok(a, routes([via('10.9.0.0/16', '10.1.0.2', ETH0_A)]));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g1, '02:00:00:01:00:01'));
    await ok(b, routes([via('10.9.0.0/16', '10.1.0.3', ETH0_B)]));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g2, '02:00:00:01:00:03'), 'the most recent announcement wins');
    // A withdraws: B's announcement is the installed one and stays.
    await ok(a, routes([], ['10.9.0.0/16']));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g2, '02:00:00:01:00:03'));
    // A announces again (now the installed one); B withdrawing changes nothing.
    await ok(a, routes([via('10.9.0.0/16', '10.1.0.2', ETH0_A)]));
    await ok(b, routes([], ['10.9.0.0/16']));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g1, '02:00:00:01:00:01'));
    // B announces (installed), then withdraws: A's next hop is not remembered, the VM forwards until A announces again.
    await ok(b, routes([via('10.9.0.0/16', '10.1.0.3', ETH0_B)]));
    await ok(b, routes([], ['10.9.0.0/16']));
    assert.equal(dp.view(1)['10.9.0.0/16'], 'via-vm');
    await ok(a, routes([via('10.9.0.0/16', '10.1.0.2', ETH0_A)]));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g1, '02:00:00:01:00:01'));
    // B announces it again, then B's session expires: the route stays (A announces it), via the VM.
    await ok(b, routes([via('10.9.0.0/16', '10.1.0.3', ETH0_B)]));
    await disconnect(b);
    assert.equal(dp.view(1)['10.9.0.0/16'], NH(MAC.g2, '02:00:00:01:00:03'), 'stale, still forwarding');
    clock.advance(60_000);
    assert.equal(dp.view(1)['10.9.0.0/16'], 'via-vm');
    // A withdrawing it now removes it: no router announces it.
    await ok(a, routes([], ['10.9.0.0/16']));
    assert.deepEqual(dp.view(1), {});
  });

  test('a router cannot delete a route only another router announced', async () => {
    const { dp, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    await ok(b, routes([blackhole('10.20.0.0/16')]));
    await ok(a, routes([], ['10.20.0.0/16']));
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': 'blackhole' });
  });

  test("a neighbour both report stays when one router's session expires", async () => {
    const { dp, clock, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    // A connected route on eth0 (index 2 on both routers): the neighbour key is shared.
    await ok(a, routes([{ prefix: '10.1.0.0/24', kind: 'unicast', gateway: null, interface: ETH0_A }]));
    await ok(a, neighbours([{ address: '10.1.0.7', mac: MAC.g1, interface: ETH0_A }]));
    await ok(b, neighbours([{ address: '10.1.0.7', mac: MAC.g1, interface: ETH0_B }]));
    assert.ok(dp.view(1)['10.1.0.7/32'], 'the neighbour has its host route');
    await ok(b, routes([{ prefix: '10.1.0.0/24', kind: 'unicast', gateway: null, interface: ETH0_A }]));
    await disconnect(a);
    clock.advance(60_000);
    assert.ok(dp.view(1)['10.1.0.7/32'], 'B still reports the neighbour: its host route stays');
    await disconnect(b);
    clock.advance(60_000);
    assert.deepEqual(dp.view(1), {});
  });

  test('after a host restart, adopted routes stay until every router resynced', async () => {
    const dp = new FakeDataPlane();
    {
      const { connect, manager } = setup({ dp });
      const a = await connect(KEY_A);
      const b = await connect(KEY_B);
      await ok(a, routes([blackhole('10.9.0.0/16')]));
      await ok(b, routes([blackhole('10.20.0.0/16')]));
      manager.close();
    }
    const { connect, clock } = setup({ dp });
    const a = await connect(KEY_A);
    await ok(a, routes([blackhole('10.9.0.0/16')]));
    await ok(a, endOfSync());
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': 'blackhole', '10.9.0.0/16': 'blackhole' }, 'B has not resynced yet');
    const b = await connect(KEY_B);
    await ok(b, endOfSync());
    assert.deepEqual(dp.view(1), { '10.9.0.0/16': 'blackhole' }, 'B announced nothing: the adopted 10.20/16 goes');
    clock.advance(120_000);
    assert.deepEqual(dp.view(1), { '10.9.0.0/16': 'blackhole' });
  });

  test('adopted routes go at the end of the hold time when a router never comes back', async () => {
    const dp = new FakeDataPlane();
    {
      const { connect, manager } = setup({ dp });
      const b = await connect(KEY_B);
      await ok(b, routes([blackhole('10.20.0.0/16')]));
      manager.close();
    }
    const { connect, clock } = setup({ dp });
    const a = await connect(KEY_A);
    await ok(a, endOfSync());
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': 'blackhole' });
    clock.advance(60_000);
    assert.deepEqual(dp.view(1), {});
  });

  test('after a host restart, a refused resync keeps the adopted routes while the router is connected; they go once it leaves', async () => {
    const dp = new FakeDataPlane();
    {
      const { connect, manager } = setup({ dp });
      const a = await connect(KEY_A);
      await ok(a, routes([blackhole('10.9.0.0/16')]));
      manager.close();
    }
    const { connect, clock, manager } = setup({ dp });
    const a = await connect(KEY_A);
    const mgmt: RouterInterface = { index: 4, name: 'mgmt0', mac: '52:54:00:12:34:56' };
    const refused = await a.request(routes([blackhole('10.9.0.0/16'), via('10.10.0.0/16', '10.1.0.2', mgmt)]));
    assert.equal(refused.errorCode, 'ERR_INVALID');
    assert.equal((await a.request(endOfSync())).errorCode, 'ERR_RESYNC_INCOMPLETE');
    clock.advance(3_600_000);
    assert.deepEqual(dp.view(1), { '10.9.0.0/16': 'blackhole' }, 'kept while A is connected');
    assert.equal(manager.routeCounts('blue').stale, 1);
    await disconnect(a);
    clock.advance(60_000);
    assert.deepEqual(dp.view(1), {});
  });

  test('a router removed from the configuration loses its routes and session; the other keeps both', async () => {
    const { dp, manager, connect } = setup();
    const a = await connect(KEY_A);
    const b = await connect(KEY_B);
    await ok(a, routes([blackhole('10.9.0.0/16'), blackhole('10.30.0.0/16')]));
    await ok(b, routes([blackhole('10.20.0.0/16'), blackhole('10.30.0.0/16')]));
    manager.updateConfig(twoRouterConfig('only-a'));
    assert.equal(b.closed, true);
    assert.equal(a.closed, false);
    // 10.30/16 stays (A announces it); B's announcement was the installed one: the VM forwards it until A announces it again.
    assert.deepEqual(dp.view(1), { '10.30.0.0/16': 'via-vm', '10.9.0.0/16': 'blackhole' });
    assert.deepEqual(
      manager.sessions().map((s) => s.router),
      ['vifb'],
    );
    // Put back: B starts afresh with its own session.
    manager.updateConfig(twoRouterConfig('both'));
    const b2 = await connect(KEY_B);
    await ok(b2, routes([blackhole('10.20.0.0/16')]));
    assert.equal(dp.view(1)['10.20.0.0/16'], 'blackhole');
  });
});
