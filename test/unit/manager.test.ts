// The data plane manager against an in-memory data plane: validation (a router can only use
// its own network's segments), atomic batches, neighbour resolution, graceful restart of
// either side, memory control, filters, and protocol misuse.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeEndOfSync,
  encodeFilterReplace,
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatch,
  neighbourBatchFromLists,
  routeChangesFromLists,
  UpdateManager,
  PROTOCOL_VERSION,
  type FilterRule,
  type RouterInterface,
  type SegmentMap,
  type WireNeighbour,
  type WireNeighbourKey,
  type WireRoute,
} from '../../src/manager/index.js';
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
const neighbourBatch = (adds: WireNeighbour[], deletes: WireNeighbourKey[] = []): Buffer =>
  encodeNeighbourBatch(neighbourBatchFromLists(sequence++, adds, deletes));
const endOfSync = (): Buffer => encodeEndOfSync({ sequence: sequence++ });
const hello = (): Buffer => encodeHello({ version: PROTOCOL_VERSION, clientName: 'r1' });

const via = (prefix: string, gateway: string, iface: RouterInterface = BLUE.eth0): WireRoute => ({
  prefix,
  kind: 'unicast',
  gateway,
  interface: iface,
});
const special = (prefix: string, kind: WireRoute['kind']): WireRoute => ({
  prefix,
  kind,
  gateway: null,
  interface: null,
});
const neighbour = (address: string, mac: string, iface: RouterInterface = BLUE.eth0): WireNeighbour => ({
  address,
  mac,
  interface: iface,
});

const MAC = { r1: '02:00:00:ee:00:01', r2: '02:00:00:ee:00:02', r6: '02:00:00:ee:00:06', r10: '02:00:00:ee:00:10' };
const NH_P0 = (dmac: string) => `nh ${dmac} 10/0 from 02:00:00:01:00:01`;
const NH_Q0 = (dmac: string) => `nh ${dmac} 11/10 from 02:00:00:01:00:02`;

function setup(options: { staleRouteTimeoutS?: number; dp?: FakeDataPlane; segmentMap?: SegmentMap } = {}) {
  const dp = options.dp ?? new FakeDataPlane();
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const manager = new UpdateManager({
    dataPlane: dp,
    config: twoNetworkConfig(options.staleRouteTimeoutS ?? 60),
    segments: options.segmentMap ?? segments,
    logger,
    clock,
  });
  const connect = async (network = 'blue'): Promise<FakeSession> => {
    const session = new FakeSession(network);
    void manager.attachSession(session);
    const ack = await session.request(hello());
    assert.equal(ack.ok, true, ack.errorMessage);
    return session;
  };
  return { dp, clock, logger, manager, connect };
}

async function ok(session: FakeSession, payload: Buffer): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, true, `${ack.errorCode}: ${ack.errorMessage}`);
}

async function refused(session: FakeSession, payload: Buffer, code: string, message: RegExp): Promise<void> {
  const ack = await session.request(payload);
  assert.equal(ack.ok, false, 'expected a refusal');
  assert.equal(ack.errorCode, code, ack.errorMessage);
  assert.match(ack.errorMessage, message);
}

/** Closes a session and lets the manager see it end. */
async function disconnect(session: FakeSession): Promise<void> {
  session.close();
  await new Promise((resolve) => setImmediate(resolve));
}

describe('routes and next hops', () => {
  test('each kind of route gets its target; unicast goes via the VM until the next hop MAC is known', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(
      s,
      routeBatch([
        via('10.9.0.0/16', '10.1.0.2'),
        via('10.20.0.0/16', '10.10.0.2', BLUE.eth1),
        via('2001:db8:9::/48', 'fe80::2'),
        { prefix: '10.8.0.0/16', kind: 'unicast', gateway: null, interface: BLUE.eth0 },
        special('10.66.0.0/16', 'blackhole'),
        special('10.1.0.1/32', 'local'),
        special('10.67.0.0/16', 'via-vm'),
      ]),
    );
    assert.deepEqual(dp.view(1), {
      '10.1.0.1/32': 'local',
      '10.20.0.0/16': 'via-vm',
      '10.66.0.0/16': 'blackhole',
      '10.67.0.0/16': 'via-vm',
      '10.8.0.0/16': 'via-vm',
      '10.9.0.0/16': 'via-vm',
      '2001:db8:9::/48': 'via-vm',
    });
    assert.equal(manager.routeCounts('blue').unresolved, 3);

    // Paper IV-B: the neighbour batch resolves the next hops; the route switches to the fast path.
    await ok(
      s,
      neighbourBatch([
        neighbour('10.1.0.2', MAC.r1),
        neighbour('fe80::2', MAC.r6),
        neighbour('10.10.0.2', MAC.r10, BLUE.eth1),
      ]),
    );
    assert.deepEqual(dp.view(1), {
      '10.1.0.1/32': 'local',
      '10.20.0.0/16': NH_Q0(MAC.r10),
      '10.66.0.0/16': 'blackhole',
      '10.67.0.0/16': 'via-vm',
      '10.8.0.0/16': 'via-vm',
      '10.9.0.0/16': NH_P0(MAC.r1),
      '2001:db8:9::/48': NH_P0(MAC.r6),
    });
    assert.equal(manager.routeCounts('blue').unresolved, 0);
    assert.deepEqual(
      [...dp.nexthops.values()].map((n) => n.netId),
      [1, 1, 1],
    );

    // A new MAC moves the route to a new next hop and frees the old one; a deleted neighbour sends it back to the VM.
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r2)], [{ address: 'fe80::2', interface: BLUE.eth0 }]));
    assert.equal(dp.view(1)['10.9.0.0/16'], NH_P0(MAC.r2));
    assert.equal(dp.view(1)['2001:db8:9::/48'], 'via-vm');
    assert.deepEqual([...dp.nexthops.values()].map((n) => n.dmac).sort(), [MAC.r2, MAC.r10]);

    // Routes sharing a gateway share one next hop; deleting the last route frees it.
    await ok(s, routeBatch([via('10.30.0.0/16', '10.1.0.2')]));
    assert.equal(dp.nexthops.size, 2);
    await ok(s, routeBatch([], ['10.9.0.0/16', '10.30.0.0/16']));
    assert.deepEqual(
      [...dp.nexthops.values()].map((n) => n.dmac),
      [MAC.r10],
    );
  });

  test("a virtual router's MAC is never a fast-path next hop", async () => {
    const { dp, connect } = setup();
    const s = await connect();
    await ok(
      s,
      neighbourBatch([neighbour('10.1.0.7', '02:00:00:02:00:01'), neighbour('10.1.0.8', '02:00:00:01:00:02')]),
    );
    await ok(s, routeBatch([via('10.9.0.0/16', '10.1.0.7'), via('10.10.0.0/16', '10.1.0.8')]));
    assert.deepEqual(dp.view(1), { '10.10.0.0/16': 'via-vm', '10.9.0.0/16': 'via-vm' });
    assert.equal(dp.nexthops.size, 0);
  });
});

describe('validation', () => {
  test("a route whose out-interface is on another network's segment, VLAN or MAC is refused", async () => {
    const { dp, connect } = setup();
    const s = await connect();
    await ok(s, routeBatch([via('10.9.0.0/16', '10.1.0.2')]));
    const before = dp.view(1);
    await refused(
      s,
      routeBatch([via('10.5.0.0/16', '10.1.0.2', BLUE.spoof)]),
      'ERR_INVALID',
      /routeBatch\.adds4\[0\] \(10\.5\.0\.0\/16\): interface eth9 \(index 9, MAC 02:00:00:02:00:01\) is not on any of network blue's segments/,
    );
    await refused(
      s,
      routeBatch([via('10.5.0.0/16', '10.1.0.2', BLUE.mgmt)]),
      'ERR_INVALID',
      /mgmt0 .* is not on any of network blue's segments/,
    );
    await refused(
      s,
      routeBatch([via('10.5.0.0/16', '10.1.0.2', { index: 2, name: 'eth0', mac: null })]),
      'ERR_INVALID',
      /not on any of network blue's segments/,
    );
    assert.deepEqual(dp.view(1), before);
    assert.deepEqual(dp.view(2), {});
  });

  test("a wrong segment map cannot hand a router another network's link, VLAN or MAC", async () => {
    const wrongAnswers: SegmentMap[] = [
      { segmentFor: () => ({ link: 'q0', ifindex: 11, linkSlot: 1, vlan: 20, routerMac: '02:00:00:02:00:02' }) }, // green's segment
      { segmentFor: () => ({ link: 'q0', ifindex: 11, linkSlot: 1, vlan: 20, routerMac: '02:00:00:01:00:02' }) }, // blue's MAC, green's VLAN
      { segmentFor: () => ({ link: 'p0', ifindex: 10, linkSlot: 0, vlan: 0, routerMac: '02:00:00:02:00:01' }) }, // green's MAC on p0
    ];
    for (const segmentMap of wrongAnswers) {
      const { dp, connect } = setup({ segmentMap });
      const s = await connect();
      await refused(
        s,
        routeBatch([via('10.9.0.0/16', '10.1.0.2')]),
        'ERR_INVALID',
        /which is not an attachment of network blue/,
      );
      assert.deepEqual(dp.view(1), {});
    }
  });

  test('one bad entry refuses the whole batch: nothing is written, no next hop is left behind', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1)]));
    await ok(s, routeBatch([via('10.9.0.0/16', '10.1.0.2'), special('10.66.0.0/16', 'blackhole')]));
    const maps = dp.view(1);
    const table = manager.routes('blue');
    const writes = dp.log.length;
    const good = [
      via('10.30.0.0/16', '10.1.0.2'),
      via('10.31.0.0/16', '10.1.0.2', BLUE.eth1),
      special('10.9.0.0/16', 'via-vm'),
    ];
    const cases: [WireRoute[], string[], RegExp][] = [
      [[...good, via('10.9.1.0/16', '10.1.0.2')], [], /adds4\[3\] \(10\.9\.1\.0\/16\): host bits are set/],
      [
        [...good, special('10.30.0.0/16', 'local')],
        [],
        /adds4\[3\] \(10\.30\.0\.0\/16\): 10\.30\.0\.0\/16 appears twice/,
      ],
      [good, ['10.31.0.0/16'], /deletes4\[0\] \(10\.31\.0\.0\/16\): 10\.31\.0\.0\/16 is both added and deleted/],
      [
        [...good, { prefix: '10.40.0.0/16', kind: 'blackhole', gateway: '10.1.0.2', interface: null }],
        [],
        /a blackhole route has no gateway/,
      ],
      [[...good, via('10.41.0.0/16', '0.0.0.0')], [], /gateway 0\.0\.0\.0 is not a unicast address/],
      [
        [...good, via('2001:db8:41::/48', 'ff02::1')],
        [],
        /adds6\[0\] \(2001:db8:41::\/48\): gateway ff02::1 is not a unicast address/,
      ],
      [
        [...good, { prefix: '10.42.0.0/16', kind: 'unicast', gateway: '10.1.0.2', interface: null }],
        [],
        /a unicast route needs an out-interface/,
      ],
      [good, ['10.9.0.1/16'], /deletes4\[0\] \(10\.9\.0\.1\/16\): host bits are set/],
    ];
    for (const [adds, deletes, message] of cases) {
      await refused(s, routeBatch(adds, deletes), 'ERR_INVALID', message);
      assert.deepEqual(dp.view(1), maps);
      assert.deepEqual(manager.routes('blue'), table);
      assert.equal(dp.log.length, writes);
      assert.deepEqual(
        [...dp.nexthops.values()].map((n) => n.dmac),
        [MAC.r1],
      );
    }
    // Neighbours are checked the same way.
    await refused(
      s,
      neighbourBatch([neighbour('10.1.0.3', MAC.r2), neighbour('10.1.0.4', 'ff:ff:ff:ff:ff:ff')]),
      'ERR_INVALID',
      /adds4\[1\] \(10\.1\.0\.4\): MAC ff:ff:ff:ff:ff:ff is not a unicast MAC/,
    );
    await refused(s, neighbourBatch([neighbour('224.0.0.5', MAC.r2)]), 'ERR_INVALID', /is not a unicast address/);
    assert.equal(manager.routeCounts('blue').neighbours, 1);
  });

  test('a failed kernel write is rolled back: maps and table as before', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(
      s,
      routeBatch([
        via('10.9.0.0/16', '10.1.0.2'),
        via('10.20.0.0/16', '10.1.0.2'),
        special('10.66.0.0/16', 'blackhole'),
      ]),
    );
    const maps = dp.view(1);
    const table = manager.routes('blue');
    dp.failNextAddAfter = 2;
    await refused(
      s,
      routeBatch(
        [via('10.9.0.0/16', '10.1.0.3'), special('10.20.0.0/16', 'via-vm'), via('10.30.0.0/16', '10.1.0.3')],
        ['10.66.0.0/16'],
      ),
      'ERR_MAP_FULL',
      /writing network blue's maps failed, nothing changed: xnm_routes4 is full/,
    );
    assert.deepEqual(dp.view(1), maps);
    assert.deepEqual(manager.routes('blue'), table);
    assert.deepEqual(
      [...dp.nexthops.values()].map((n) => n.dmac),
      [MAC.r1],
      'the next hop made for the failed batch is released',
    );
    // The table is the record of what to put back: no write asks the data plane to read the maps
    // first (a read of the network's whole table before each batch made a full resync quadratic).
    assert.ok(dp.undoModes.length >= 3, 'the batches and the rollback wrote routes');
    assert.deepEqual(new Set(dp.undoModes), new Set(['caller']));
  });

  test('each network writes only its own tables', async () => {
    const { dp, connect } = setup();
    const blue = await connect('blue');
    const green = await connect('green');
    const greenEth0 = { index: 2, name: 'eth0', mac: '02:00:00:02:00:01' };
    await ok(green, neighbourBatch([neighbour('10.1.0.2', MAC.r1, greenEth0)]));
    await ok(green, routeBatch([via('10.9.0.0/16', '10.1.0.2', greenEth0)]));
    assert.deepEqual(dp.view(1), {});
    assert.deepEqual(dp.view(2), { '10.9.0.0/16': `nh ${MAC.r1} 10/0 from 02:00:00:02:00:01` });
    // Same router interface index and gateway in blue: a separate neighbour and next hop.
    await ok(blue, routeBatch([via('10.9.0.0/16', '10.1.0.2')]));
    assert.deepEqual(dp.view(1), { '10.9.0.0/16': 'via-vm' });
    // Green claiming blue's interface is refused.
    await refused(
      green,
      routeBatch([via('10.8.0.0/16', '10.1.0.2', BLUE.eth0)]),
      'ERR_INVALID',
      /not on any of network green's segments/,
    );
  });
});

describe('graceful restart', () => {
  async function installThree(connect: (network?: string) => Promise<FakeSession>) {
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(
      s,
      routeBatch([
        via('10.9.0.0/16', '10.1.0.2'),
        via('10.20.0.0/16', '10.1.0.2'),
        special('10.66.0.0/16', 'blackhole'),
      ]),
    );
    await ok(s, endOfSync());
    return s;
  }

  test('disconnect keeps routes as stale; the resync re-marks them and EndOfSync sweeps the rest', async () => {
    const { dp, manager, connect } = setup();
    const s = await installThree(connect);
    await disconnect(s);
    assert.equal(manager.routeCounts('blue').stale, 3);
    assert.equal(Object.keys(dp.view(1)).length, 3, 'still forwarding');
    assert.equal(manager.sessions()[0]!.connected, false);

    const s2 = await connect();
    const writes = dp.log.length;
    await ok(s2, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s2, routeBatch([via('10.9.0.0/16', '10.1.0.3'), via('10.20.0.0/16', '10.1.0.2')]));
    assert.equal(manager.routeCounts('blue').stale, 1);
    await ok(s2, endOfSync());
    assert.deepEqual(dp.view(1), { '10.20.0.0/16': NH_P0(MAC.r1), '10.9.0.0/16': NH_P0(MAC.r2) });
    // The unchanged route was not rewritten: no churn for what did not change.
    assert.deepEqual(dp.log.slice(writes), ['add 1 10.9.0.0/16', 'del 1 10.66.0.0/16']);
    assert.equal(manager.routeCounts('blue').stale, 0);
  });

  test('a router that does not come back within stale_route_timeout_s loses its routes', async () => {
    const { dp, clock, manager, connect } = setup({ staleRouteTimeoutS: 60 });
    const s = await installThree(connect);
    await disconnect(s);
    clock.advance(59_000);
    assert.equal(Object.keys(dp.view(1)).length, 3);
    clock.advance(2_000);
    assert.deepEqual(dp.view(1), {});
    assert.equal(dp.nexthops.size, 0);
    assert.deepEqual(manager.routeCounts('blue'), {
      netId: 1,
      network: 'blue',
      installed: 0,
      routes: 0,
      stale: 0,
      evicted: 0,
      unresolved: 0,
      neighbours: 0,
      neighbourRoutes: 0,
    });
  });

  test('stale_route_timeout_s = 0 withdraws at once on disconnect, and a resync still sweeps only at EndOfSync', async () => {
    const { dp, clock, connect } = setup({ staleRouteTimeoutS: 0 });
    const s = await installThree(connect);
    await ok(s, hello());
    await ok(s, routeBatch([special('10.66.0.0/16', 'blackhole')]));
    clock.advance(1000);
    assert.equal(Object.keys(dp.view(1)).length, 3, 'no sweep in the middle of a resync');
    await ok(s, endOfSync());
    assert.deepEqual(dp.view(1), { '10.66.0.0/16': 'blackhole' });
    await disconnect(s);
    assert.deepEqual(dp.view(1), {});
  });

  test('a slow resync keeps the stale routes while it makes progress; only what was not re-sent is swept at the timeout', async () => {
    const { dp, clock, connect } = setup({ staleRouteTimeoutS: 60 });
    const s = await installThree(connect);
    await disconnect(s);
    clock.advance(50_000);
    const s2 = await connect();
    clock.advance(50_000);
    await ok(s2, routeBatch([special('10.66.0.0/16', 'blackhole')]));
    clock.advance(50_000);
    assert.equal(Object.keys(dp.view(1)).length, 3, 'progress re-arms the hold timer');
    clock.advance(11_000);
    assert.deepEqual(dp.view(1), { '10.66.0.0/16': 'blackhole' });
  });

  test('a refused batch during a resync: EndOfSync sweeps nothing and the stale routes stay while connected', async () => {
    const { dp, clock, manager, connect } = setup({ staleRouteTimeoutS: 60 });
    const s = await installThree(connect);
    await disconnect(s);
    const s2 = await connect();
    await refused(
      s2,
      routeBatch([via('10.9.0.0/16', '10.1.0.2'), via('10.20.0.0/16', '10.1.0.2', BLUE.mgmt)]),
      'ERR_INVALID',
      /mgmt0/,
    );
    await refused(s2, endOfSync(), 'ERR_RESYNC_INCOMPLETE', /stale routes are kept/);
    clock.advance(3_600_000);
    assert.equal(Object.keys(dp.view(1)).length, 3);
    assert.equal(manager.routeCounts('blue').stale, 3);
    // The next complete resync (a new Hello in the same session) sweeps.
    await ok(s2, hello());
    await ok(s2, routeBatch([via('10.9.0.0/16', '10.1.0.2')]));
    await ok(s2, endOfSync());
    assert.deepEqual(Object.keys(dp.view(1)), ['10.9.0.0/16']);
  });

  test("after a host daemon restart the manager starts from the installed routes: the resync leaves exactly the router's FIB, with no gap", async () => {
    const dp = new FakeDataPlane();
    const first = setup({ dp });
    await installThree(first.connect);
    first.manager.close();
    const nexthopsBefore = new Map(dp.nexthops);

    // A new daemon on the same maps.
    const { manager, connect } = setup({ dp });
    assert.deepEqual(manager.routeCounts('blue'), {
      netId: 1,
      network: 'blue',
      installed: 3,
      routes: 3,
      stale: 3,
      evicted: 0,
      unresolved: 0,
      neighbours: 0,
      neighbourRoutes: 0,
    });
    const writes = dp.log.length;
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(
      s,
      routeBatch([
        via('10.9.0.0/16', '10.1.0.2'),
        special('10.66.0.0/16', 'blackhole'),
        via('10.50.0.0/16', '10.1.0.3'),
      ]),
    );
    await ok(s, endOfSync());
    assert.deepEqual(dp.view(1), {
      '10.50.0.0/16': NH_P0(MAC.r2),
      '10.66.0.0/16': 'blackhole',
      '10.9.0.0/16': NH_P0(MAC.r1),
    });
    // Routes the router still has were never deleted (no gap), and kept their next hop.
    assert.deepEqual(
      dp.log.slice(writes).filter((w) => w.startsWith('del')),
      ['del 1 10.20.0.0/16'],
    );
    assert.equal(dp.nexthops.get(1)?.dmac, nexthopsBefore.get(1)?.dmac);
    assert.equal(manager.routeCounts('blue').stale, 0);
  });

  test('after a host restart a router that never returns is withdrawn at the timeout', async () => {
    const dp = new FakeDataPlane();
    const first = setup({ dp });
    await installThree(first.connect);
    first.manager.close();
    const { clock } = setup({ dp, staleRouteTimeoutS: 30 });
    clock.advance(31_000);
    assert.deepEqual(dp.view(1), {});
    assert.equal(dp.nexthops.size, 0);
  });
});

describe('memory control (paper IV-A)', () => {
  const table: WireRoute[] = [
    via('0.0.0.0/0', '10.1.0.254'),
    via('10.0.0.0/8', '10.1.0.2'),
    via('10.9.0.0/16', '10.1.0.3'),
    via('10.9.7.0/24', '10.1.0.2'),
    via('10.9.7.1/32', '10.1.0.3'),
    via('10.20.0.0/16', '10.1.0.3'),
    via('192.168.1.0/24', '10.1.0.2'),
    via('2001:db8::/32', 'fe80::2'),
  ];

  function lpm(view: Record<string, string>, address: string): string | undefined {
    const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const target = toInt(address);
    let best: [number, string] | undefined;
    for (const [prefix, value] of Object.entries(view)) {
      if (prefix.includes(':')) continue;
      const [base, lengthText] = prefix.split('/');
      const length = Number(lengthText);
      const size = 2 ** (32 - length);
      if (Math.floor(target / size) === Math.floor(toInt(base!) / size) && (!best || length > best[0]))
        best = [length, value];
    }
    return best?.[1];
  }

  test('most specific first, covering routes with them, a default to the VM; restore puts everything back', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(
      s,
      neighbourBatch([
        neighbour('10.1.0.254', MAC.r10),
        neighbour('10.1.0.2', MAC.r1),
        neighbour('10.1.0.3', MAC.r2),
        neighbour('fe80::2', MAC.r6),
      ]),
    );
    await ok(s, routeBatch(table));
    const full = dp.view(1);

    assert.equal(manager.evictRoutes('blue', 0.25), 5);
    const evicted = dp.view(1);
    assert.deepEqual(evicted, {
      '0.0.0.0/0': 'via-vm',
      '10.20.0.0/16': NH_P0(MAC.r2),
      '192.168.1.0/24': NH_P0(MAC.r1),
      '2001:db8::/32': NH_P0(MAC.r6),
    });
    assert.deepEqual(manager.routeCounts('blue'), {
      netId: 1,
      network: 'blue',
      installed: 4,
      routes: 8,
      stale: 0,
      evicted: 5,
      unresolved: 0,
      neighbours: 4,
      neighbourRoutes: 0,
    });
    // No packet is lost or misrouted, only slowed: every destination either takes its own route or goes to the VM.
    for (const address of ['10.9.7.1', '10.9.7.2', '10.9.8.1', '10.10.0.1', '10.20.3.4', '192.168.1.9', '8.8.8.8']) {
      const now = lpm(evicted, address);
      assert.ok(now === lpm(full, address) || now === 'via-vm', `${address}: ${now} instead of ${lpm(full, address)}`);
    }

    // While evicted: a route that would shadow an evicted one is evicted too; a more specific one is installed.
    await ok(
      s,
      routeBatch([via('10.8.0.0/14', '10.1.0.2'), via('10.9.7.128/25', '10.1.0.2'), via('10.30.0.0/16', '10.1.0.2')]),
    );
    assert.equal(dp.view(1)['10.8.0.0/14'], undefined);
    assert.equal(dp.view(1)['10.9.7.128/25'], NH_P0(MAC.r1));
    assert.equal(dp.view(1)['10.30.0.0/16'], NH_P0(MAC.r1));
    assert.equal(manager.routeCounts('blue').evicted, 6);

    assert.equal(manager.restoreRoutes('blue'), 6);
    assert.deepEqual(dp.view(1), {
      ...full,
      '10.8.0.0/14': NH_P0(MAC.r1),
      '10.9.7.128/25': NH_P0(MAC.r1),
      '10.30.0.0/16': NH_P0(MAC.r1),
    });
    assert.equal(manager.routeCounts('blue').evicted, 0);
  });

  test('without a router default route, restore removes the added default', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(
      s,
      routeBatch([
        special('10.66.0.0/16', 'blackhole'),
        special('10.1.0.1/32', 'local'),
        special('2001:db8:66::/48', 'blackhole'),
      ]),
    );
    assert.equal(manager.evictRoutes(1, 0.5), 2);
    assert.deepEqual(dp.view(1), { '0.0.0.0/0': 'via-vm', '2001:db8:66::/48': 'blackhole' });
    manager.restoreRoutes(1);
    assert.deepEqual(dp.view(1), {
      '10.1.0.1/32': 'local',
      '10.66.0.0/16': 'blackhole',
      '2001:db8:66::/48': 'blackhole',
    });
    assert.throws(() => manager.evictRoutes(1, 1.5), { code: 'ERR_INVALID' });
    assert.equal(manager.evictRoutes(1, 0), 0);
  });
});

describe('filters', () => {
  const rules: FilterRule[] = [
    {
      handle: 4,
      family: 4,
      proto: 6,
      src: '10.1.0.0/24',
      dst: '10.9.0.0/16',
      sport: [1024, 65535],
      dport: [80, 80],
      action: 'accept',
    },
    { handle: 7, family: 6, proto: 0, src: null, dst: '2001:db8::/32', sport: null, dport: null, action: 'drop' },
  ];

  test("written to the network's own filter, with the network's default last", async () => {
    const { dp, connect } = setup();
    const blue = await connect('blue');
    const green = await connect('green');
    await ok(blue, encodeFilterReplace({ sequence: sequence++, rules }));
    await ok(green, encodeFilterReplace({ sequence: sequence++, rules: rules.slice(0, 1) }));
    assert.deepEqual(dp.filters.get(1), [
      {
        family: 4,
        action: 'accept',
        proto: 6,
        src: '10.1.0.0/24',
        dst: '10.9.0.0/16',
        sport: [1024, 65535],
        dport: [80, 80],
      },
      { family: 6, action: 'drop', dst: '2001:db8::/32' },
    ]);
    // green's filter_default is drop.
    assert.deepEqual(dp.filters.get(2)!.slice(1), [
      { family: 4, action: 'drop' },
      { family: 6, action: 'drop' },
    ]);
  });

  test('bad rules and too many rules are refused and leave the filter as it was', async () => {
    const { dp, connect } = setup();
    const s = await connect();
    await ok(s, encodeFilterReplace({ sequence: sequence++, rules }));
    const before = dp.filters.get(1);
    await refused(
      s,
      encodeFilterReplace({ sequence: sequence++, rules: [{ ...rules[0]!, src: '10.1.0.1/24' }] }),
      'ERR_INVALID',
      /rules\[0\] \(handle 4\)\.src: host bits are set/,
    );
    await refused(
      s,
      encodeFilterReplace({ sequence: sequence++, rules: [{ ...rules[0]!, proto: 1 }] }),
      'ERR_INVALID',
      /ports need protocol tcp \(6\) or udp \(17\)/,
    );
    await refused(
      s,
      encodeFilterReplace({ sequence: sequence++, rules: Array.from({ length: 40 }, () => rules[1]!) }),
      'ERR_QUOTA',
      /over its quota of filterRules \(xnm_filters\): the batch would hold 40, the quota is 32/,
    );
    assert.deepEqual(dp.filters.get(1), before);
  });
});

describe('sessions', () => {
  test('protocol misuse: no Hello, wrong version, garbage, unknown network', async () => {
    const { manager } = setup();
    const s = new FakeSession('blue');
    void manager.attachSession(s);
    await refused(s, routeBatch([special('10.66.0.0/16', 'blackhole')]), 'ERR_NO_HELLO', /send Hello first/);
    await refused(s, encodeHello({ version: 99, clientName: 'x' }), 'ERR_VERSION', /version 99 is not supported/);
    assert.equal(s.closed, true);

    const s2 = new FakeSession('blue');
    void manager.attachSession(s2);
    await refused(s2, Buffer.from([2, 0, 0]), 'ERR_PROTOCOL', /routeBatch\.sequence at byte 1: truncated/);
    assert.equal(s2.closed, true);

    const stranger = new FakeSession('red');
    await manager.attachSession(stranger);
    assert.equal(stranger.closed, true);
  });

  test('session info for `xnetmon clients`; a newer session replaces an older one', async () => {
    const { clock, manager, connect } = setup();
    const start = clock.now();
    const s = await connect();
    clock.advance(5000);
    await ok(s, routeBatch([special('10.66.0.0/16', 'blackhole')]));
    const [blue, green] = manager.sessions();
    assert.deepEqual(blue, {
      netId: 1,
      network: 'blue',
      router: 'vifb',
      connected: true,
      peer: 'blue',
      remoteAddress: '192.0.2.9:40000',
      clientName: 'r1',
      connectedSince: new Date(start),
      disconnectedSince: null,
      lastUpdate: new Date(start + 5000),
      resyncing: true,
      routes: 1,
      stale: 0,
      evicted: 0,
      lastError: null,
    });
    assert.equal(green!.connected, false);
    const s2 = await connect();
    assert.equal(s.closed, true);
    assert.equal(manager.sessions()[0]!.connected, true);
    await ok(s2, endOfSync());
    assert.equal(manager.sessions()[0]!.resyncing, false);
    await disconnect(s2);
    assert.equal(manager.sessions()[0]!.connected, false);
    assert.deepEqual(manager.sessions()[0]!.disconnectedSince, new Date(clock.now()));
  });

  test('a configuration change re-resolves routes and drops removed networks', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect('green');
    const greenEth0 = { index: 2, name: 'eth0', mac: '02:00:00:02:00:01' };
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1, greenEth0)]));
    await ok(s, routeBatch([via('10.9.0.0/16', '10.1.0.2', greenEth0)]));
    const config = twoNetworkConfig();
    manager.updateConfig({ ...config, networks: config.networks.filter((n) => n.name !== 'green') });
    assert.deepEqual(dp.view(2), {});
    assert.equal(dp.nexthops.size, 0);
    assert.equal(s.closed, true);
    assert.equal(manager.sessions().length, 1);
  });
});

describe('host routes for neighbours on connected subnets', () => {
  const connected = (prefix: string, iface: RouterInterface = BLUE.eth0): WireRoute => ({
    prefix,
    kind: 'unicast',
    gateway: null,
    interface: iface,
  });
  const gone = (address: string, iface: RouterInterface = BLUE.eth0): WireNeighbourKey => ({
    address,
    interface: iface,
  });

  test('each neighbour on a connected subnet gets a /32 or /128 next hop; the subnet itself still goes via the VM', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, routeBatch([connected('10.1.0.0/24'), connected('2001:db8:1::/64')]));
    await ok(
      s,
      neighbourBatch([
        neighbour('10.1.0.5', MAC.r1),
        neighbour('10.1.0.6', MAC.r2),
        neighbour('2001:db8:1::2', MAC.r6),
        neighbour('10.9.9.9', MAC.r10), // on no connected subnet
        neighbour('10.1.0.7', MAC.r10, BLUE.eth1), // inside eth0's subnet, but seen on eth1
      ]),
    );
    assert.deepEqual(dp.view(1), {
      '10.1.0.0/24': 'via-vm',
      '10.1.0.5/32': NH_P0(MAC.r1),
      '10.1.0.6/32': NH_P0(MAC.r2),
      '2001:db8:1::/64': 'via-vm',
      '2001:db8:1::2/128': NH_P0(MAC.r6),
    });
    // They are part of the network's installed set, marked as neighbour routes.
    assert.equal(manager.routeCount('blue'), 5);
    assert.equal(manager.routeCounts('blue').neighbourRoutes, 3);
    assert.deepEqual(
      manager
        .routes('blue')
        .filter((r) => r.source === 'neighbour')
        .map((r) => r.prefix)
        .sort(),
      ['10.1.0.5/32', '10.1.0.6/32', '2001:db8:1::2/128'],
    );

    // A new MAC moves the host route; a neighbour that goes takes its host route (and next hop) along.
    await ok(s, neighbourBatch([neighbour('10.1.0.6', MAC.r10)], [gone('10.1.0.5'), gone('2001:db8:1::2')]));
    assert.deepEqual(dp.view(1), {
      '10.1.0.0/24': 'via-vm',
      '10.1.0.6/32': NH_P0(MAC.r10),
      '2001:db8:1::/64': 'via-vm',
    });
    assert.deepEqual(
      [...dp.nexthops.values()].map((n) => n.dmac),
      [MAC.r10],
    );
    assert.equal(manager.routeCount('blue'), 3);
  });

  test("the router's own routes win: the same /32, or a more specific route around the neighbour", async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, routeBatch([connected('10.1.0.0/24')]));
    await ok(
      s,
      neighbourBatch([neighbour('10.1.0.5', MAC.r1), neighbour('10.1.0.6', MAC.r2), neighbour('10.1.0.20', MAC.r10)]),
    );
    assert.equal(dp.view(1)['10.1.0.5/32'], NH_P0(MAC.r1));

    await ok(s, routeBatch([via('10.1.0.5/32', '10.1.0.6'), via('10.1.0.16/28', '10.1.0.6')]));
    assert.equal(dp.view(1)['10.1.0.5/32'], NH_P0(MAC.r2), "the FIB's /32");
    assert.equal(dp.view(1)['10.1.0.20/32'], undefined, 'the router sends 10.1.0.20 through its /28');
    assert.equal(manager.routes('blue').find((r) => r.prefix === '10.1.0.5/32')?.source, 'router');

    // When the router's routes go, the neighbours' host routes come back, replacing in place.
    const writes = dp.log.length;
    await ok(s, routeBatch([], ['10.1.0.5/32', '10.1.0.16/28']));
    assert.deepEqual(dp.view(1), {
      '10.1.0.0/24': 'via-vm',
      '10.1.0.20/32': NH_P0(MAC.r10),
      '10.1.0.5/32': NH_P0(MAC.r1),
      '10.1.0.6/32': NH_P0(MAC.r2),
    });
    assert.deepEqual(
      dp.log.slice(writes).filter((w) => w.includes('10.1.0.5/32')),
      ['add 1 10.1.0.5/32'],
      'never deleted: no gap',
    );

    // Deleting a neighbour host route the router never announced changes nothing; withdrawing the subnet removes them all.
    await ok(s, routeBatch([], ['10.1.0.6/32']));
    assert.equal(dp.view(1)['10.1.0.6/32'], NH_P0(MAC.r2));
    await ok(s, routeBatch([], ['10.1.0.0/24']));
    assert.deepEqual(dp.view(1), {});
    assert.equal(dp.nexthops.size, 0);
    assert.equal(
      manager.routeCounts('blue').neighbours,
      3,
      'the neighbours are kept: a subnet that returns brings their host routes back',
    );
    await ok(s, routeBatch([connected('10.1.0.0/24')]));
    assert.equal(Object.keys(dp.view(1)).length, 4);
  });

  test("virtual routers' MACs, interfaces off the network's segments and unresolved neighbours stay with the VM", async () => {
    const segmentMap: SegmentMap = {
      // eth1 is not placed: its neighbours have no segment to be reached on.
      segmentFor: (network, iface) => (iface.name === 'eth1' ? undefined : segments.segmentFor(network, iface)),
    };
    const { dp, connect } = setup({ segmentMap });
    const s = await connect();
    await ok(
      s,
      neighbourBatch([
        neighbour('10.1.0.7', '02:00:00:02:00:01'), // green's router on p0
        neighbour('10.1.0.8', '02:00:00:01:00:02'), // blue's own router MAC on q0
        neighbour('10.1.0.9', MAC.r1),
      ]),
    );
    // Neighbours learnt first: the host routes appear with the connected route.
    await ok(s, routeBatch([connected('10.1.0.0/24')]));
    assert.deepEqual(dp.view(1), { '10.1.0.0/24': 'via-vm', '10.1.0.9/32': NH_P0(MAC.r1) });
    await ok(s, neighbourBatch([neighbour('10.1.0.10', MAC.r2, BLUE.eth1)]));
    assert.equal(dp.view(1)['10.1.0.10/32'], undefined);
  });

  test("graceful restart: after a resync and EndOfSync the maps are exactly the FIB plus the neighbours' host routes", async () => {
    const { dp, manager, clock, connect } = setup({ staleRouteTimeoutS: 60 });
    const fib = [connected('10.1.0.0/24'), via('10.9.0.0/16', '10.1.0.2'), special('10.66.0.0/16', 'blackhole')];
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s, routeBatch(fib));
    await ok(s, endOfSync());
    const full = {
      '10.1.0.0/24': 'via-vm',
      '10.1.0.2/32': NH_P0(MAC.r1),
      '10.1.0.3/32': NH_P0(MAC.r2),
      '10.66.0.0/16': 'blackhole',
      '10.9.0.0/16': NH_P0(MAC.r1),
    };
    assert.deepEqual(dp.view(1), full);
    assert.equal(dp.nexthops.size, 2, 'the gateway route and the host route share the next hop');

    await disconnect(s);
    assert.equal(manager.routeCounts('blue').stale, 5);
    assert.deepEqual(dp.view(1), full, 'still forwarding');

    // The router comes back without 10.1.0.3: only that host route goes, nothing else is rewritten.
    const s2 = await connect();
    const writes = dp.log.length;
    await ok(s2, neighbourBatch([neighbour('10.1.0.2', MAC.r1)]));
    await ok(s2, routeBatch(fib));
    assert.deepEqual(dp.log.slice(writes), []);
    await ok(s2, endOfSync());
    assert.deepEqual(dp.log.slice(writes), ['del 1 10.1.0.3/32']);
    const { '10.1.0.3/32': _, ...expected } = full;
    assert.deepEqual(dp.view(1), expected);
    assert.deepEqual(manager.routeCounts('blue'), {
      netId: 1,
      network: 'blue',
      installed: 4,
      routes: 4,
      stale: 0,
      evicted: 0,
      unresolved: 0,
      neighbours: 1,
      neighbourRoutes: 1,
    });

    // A router that does not come back loses its host routes with the rest.
    await disconnect(s2);
    clock.advance(61_000);
    assert.deepEqual(dp.view(1), {});
    assert.equal(dp.nexthops.size, 0);
  });

  test('a resync that drops the connected subnet takes the host routes along at EndOfSync', async () => {
    const { dp, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1)]));
    await ok(s, routeBatch([connected('10.1.0.0/24'), special('10.66.0.0/16', 'blackhole')]));
    await ok(s, endOfSync());
    await ok(s, hello());
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1)]));
    await ok(s, routeBatch([special('10.66.0.0/16', 'blackhole')]));
    assert.equal(dp.view(1)['10.1.0.2/32'], NH_P0(MAC.r1), 'kept until EndOfSync');
    await ok(s, endOfSync());
    assert.deepEqual(dp.view(1), { '10.66.0.0/16': 'blackhole' });
  });

  test('after a host daemon restart the adopted host routes are taken over in place', async () => {
    const dp = new FakeDataPlane();
    const first = setup({ dp });
    const s1 = await first.connect();
    await ok(s1, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s1, routeBatch([connected('10.1.0.0/24'), via('10.9.0.0/16', '10.1.0.3')]));
    await ok(s1, endOfSync());
    first.manager.close();
    const installed = dp.view(1);

    const { manager, connect } = setup({ dp });
    assert.equal(manager.routeCounts('blue').stale, 4);
    assert.deepEqual(
      manager.routes('blue').map((r) => r.source),
      ['adopted', 'adopted', 'adopted', 'adopted'],
    );
    const writes = dp.log.length;
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s, routeBatch([connected('10.1.0.0/24'), via('10.9.0.0/16', '10.1.0.3')]));
    await ok(s, endOfSync());
    assert.deepEqual(dp.view(1), installed);
    assert.deepEqual(dp.log.slice(writes), [], 'same targets and next hops: nothing rewritten, nothing deleted');
    assert.deepEqual(
      manager
        .routes('blue')
        .filter((r) => r.source === 'neighbour')
        .map((r) => r.prefix)
        .sort(),
      ['10.1.0.2/32', '10.1.0.3/32'],
    );
    assert.equal(manager.routeCounts('blue').stale, 0);
  });

  test('memory control evicts host routes first (most specific) with their covering subnet, and restores them', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s, routeBatch([connected('10.1.0.0/24'), via('10.9.0.0/16', '10.1.0.2')]));
    const full = dp.view(1);
    assert.equal(manager.evictRoutes('blue', 0.25), 2); // 10.1.0.2/32 and the /24 that covers it
    assert.deepEqual(dp.view(1), { '0.0.0.0/0': 'via-vm', '10.1.0.3/32': NH_P0(MAC.r2), '10.9.0.0/16': NH_P0(MAC.r1) });
    assert.equal(manager.routeCount('blue'), 3);
    // An evicted host route follows its neighbour's changes, and is restored with the new MAC.
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r10)]));
    assert.equal(dp.view(1)['10.1.0.2/32'], undefined);
    assert.equal(manager.restoreRoutes('blue'), 2);
    assert.deepEqual(dp.view(1), { ...full, '10.1.0.2/32': NH_P0(MAC.r10), '10.9.0.0/16': NH_P0(MAC.r10) });
  });

  test('a refused batch or a failed kernel write leaves host routes, maps and next hops as they were', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1), neighbour('10.1.0.3', MAC.r2)]));
    await ok(s, routeBatch([connected('10.1.0.0/24'), via('10.1.0.2/32', '10.1.0.3')]));
    const maps = dp.view(1);
    const table = manager.routes('blue');
    await refused(
      s,
      routeBatch([via('10.1.0.3/32', '10.1.0.2'), via('10.5.0.0/16', '10.1.0.2', BLUE.mgmt)], ['10.1.0.0/24']),
      'ERR_INVALID',
      /mgmt0/,
    );
    assert.deepEqual(dp.view(1), maps);
    assert.deepEqual(manager.routes('blue'), table);
    // Deleting the router's /32 would turn it into the neighbour's host route in place; the kernel refuses the write.
    dp.failNextAddAfter = 0;
    await refused(s, routeBatch([via('10.7.0.0/16', '10.1.0.3')], ['10.1.0.2/32']), 'ERR_MAP_FULL', /nothing changed/);
    assert.deepEqual(dp.view(1), maps);
    assert.deepEqual(manager.routes('blue'), table);
    assert.deepEqual([...dp.nexthops.values()].map((n) => n.dmac).sort(), [MAC.r2]);
  });

  test('a segment that goes away in a new configuration takes its host routes', async () => {
    const { dp, manager, connect } = setup();
    const s = await connect();
    await ok(s, neighbourBatch([neighbour('10.1.0.2', MAC.r1)]));
    await ok(s, routeBatch([connected('10.1.0.0/24'), via('10.9.0.0/16', '10.1.0.2')]));
    assert.equal(dp.view(1)['10.1.0.2/32'], NH_P0(MAC.r1));
    manager.updateConfig(twoNetworkConfig(), { segmentFor: () => undefined });
    assert.deepEqual(dp.view(1), { '10.1.0.0/24': 'via-vm', '10.9.0.0/16': 'via-vm' });
    manager.updateConfig(twoNetworkConfig(), segments);
    assert.equal(dp.view(1)['10.1.0.2/32'], NH_P0(MAC.r1));
  });
});
