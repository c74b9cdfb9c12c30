// The client's watching logic on dumps captured from a real kernel: parsing iproute2's JSON
// into a snapshot, and diffing two snapshots into adds and deletes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  diffSnapshots,
  EMPTY_SNAPSHOT,
  isEmptyChange,
  snapshotFromDumps,
  type FibRoute,
  type KernelSnapshot,
} from '../../src/client/index.js';
import { LINKS, NEIGHBOURS, ROUTES4, ROUTES6 } from '../support/client-samples.js';

const dumps = { links: LINKS, routes4: ROUTES4, routes6: ROUTES6, neighbours: NEIGHBOURS };

function routeSummary(snapshot: KernelSnapshot): Record<string, string> {
  return Object.fromEntries(
    [...snapshot.routes].map(([prefix, r]) => [prefix, [r.kind, r.gateway ?? '-', r.interface?.name ?? '-'].join(' ')]),
  );
}

describe('snapshot from captured dumps', () => {
  test('main + local tables (the default): what the host gets for each kind of route', () => {
    const { snapshot } = snapshotFromDumps(dumps, { tables: ['main', 'local'], interfaces: null });
    assert.deepEqual(routeSummary(snapshot), {
      '0.0.0.0/0': 'unicast 10.1.0.254 eth0',
      '10.1.0.0/24': 'unicast - eth0', // connected: the host hands it to the router
      '10.8.0.0/16': 'unicast - eth0',
      '10.9.0.0/16': 'unicast 10.1.0.2 eth0', // ip route add ... via
      '10.10.0.0/24': 'unicast - eth1',
      '10.20.0.0/16': 'unicast 10.10.0.2 eth1', // metric 20 wins over metric 30
      '10.21.0.0/16': 'via-vm - -', // multipath: the router balances itself
      '10.22.0.0/16': 'unicast 10.10.0.2 eth1', // proto bird
      '10.23.0.1/32': 'unicast 10.1.0.2 eth0', // onlink host route
      '10.66.0.0/16': 'blackhole - -',
      '10.67.0.0/16': 'via-vm - -', // unreachable: the router sends the ICMP error
      '10.68.0.0/16': 'via-vm - -', // prohibit
      '10.1.0.1/32': 'local - -', // local table, type local
      '10.10.0.1/32': 'local - -',
      '2001:db8:1::/64': 'unicast - eth0',
      '2001:db8:7::/48': 'unicast fe80::2 eth0', // link-local gateway
      '2001:db8:9::/48': 'unicast 2001:db8:1::2 eth0',
      '2001:db8:66::/48': 'blackhole - -',
      '2001:db8:1::1/128': 'local - -',
    });
    // Table 100 is not replicated unless asked for; broadcast, multicast, loopback and link-local never.
    assert.equal(snapshot.routes.has('172.16.0.0/12'), false);
    assert.equal(snapshot.routes.has('127.0.0.0/8'), false);
    assert.equal(
      [...snapshot.routes.keys()].some((p) => p.startsWith('fe80') || p.startsWith('ff00')),
      false,
    );
    const eth0 = snapshot.routes.get('10.9.0.0/16')!.interface!;
    assert.deepEqual(eth0, { index: 3, name: 'eth0', mac: '02:00:00:00:00:01' });
  });

  test('other tables by name or number; local first, then the configured order', () => {
    const { snapshot } = snapshotFromDumps(dumps, { tables: ['100', 'main'], interfaces: null });
    assert.equal(routeSummary(snapshot)['172.16.0.0/12'], 'unicast 10.1.0.2 eth0');
    assert.equal(snapshot.routes.has('10.1.0.1/32'), false, 'local table not asked for');
    const onlyMain = snapshotFromDumps(dumps, { tables: ['main'], interfaces: null }).snapshot;
    assert.equal(onlyMain.routes.has('172.16.0.0/12'), false);
    // Same prefix in two tables: the earlier table wins.
    const twoTables = [
      ...(ROUTES4 as object[]),
      { dst: '10.9.0.0/16', gateway: '10.10.0.9', dev: 'eth1', table: '100', flags: [] },
    ];
    const first100 = snapshotFromDumps(
      { ...dumps, routes4: twoTables },
      { tables: ['100', 'main'], interfaces: null },
    ).snapshot;
    assert.equal(first100.routes.get('10.9.0.0/16')!.gateway, '10.10.0.9');
    const firstMain = snapshotFromDumps(
      { ...dumps, routes4: twoTables },
      { tables: ['main', '100'], interfaces: null },
    ).snapshot;
    assert.equal(firstMain.routes.get('10.9.0.0/16')!.gateway, '10.1.0.2');
  });

  test("routes out of interfaces that are not on the host's segments go via the VM", () => {
    const { snapshot } = snapshotFromDumps(dumps, { tables: ['main', 'local'], interfaces: ['eth0'] });
    assert.equal(routeSummary(snapshot)['10.20.0.0/16'], 'via-vm - -');
    assert.equal(routeSummary(snapshot)['10.10.0.0/24'], 'via-vm - -');
    assert.equal(routeSummary(snapshot)['10.9.0.0/16'], 'unicast 10.1.0.2 eth0');
    assert.deepEqual([...snapshot.neighbours.keys()].sort(), ['eth0|10.1.0.2', 'eth0|2001:db8:1::2']);
  });

  test('neighbours: only usable states with a MAC', () => {
    const { snapshot } = snapshotFromDumps(dumps, { tables: ['main'], interfaces: null });
    assert.deepEqual([...snapshot.neighbours.values()].map((n) => `${n.interface.name} ${n.address} ${n.mac}`).sort(), [
      'eth0 10.1.0.2 02:00:00:00:00:02',
      'eth0 2001:db8:1::2 02:00:00:00:00:03',
      'eth1 10.10.0.2 02:00:00:00:01:02',
    ]);
  });

  test('malformed records are skipped, not fatal; a non-array dump is an error', () => {
    const junk = [
      null,
      5,
      { dst: 'nonsense' },
      { dst: '10.0.0.1/8', dev: 'eth0' },
      { dst: '10.3.0.0/16', dev: 'nosuch' },
      { dst: '10.4.0.0/16', gateway: '2001:db8::1', dev: 'eth0' },
    ];
    const { snapshot, skipped } = snapshotFromDumps(
      { ...dumps, routes4: junk },
      { tables: ['main'], interfaces: null },
    );
    assert.equal([...snapshot.routes.keys()].filter((p) => !p.includes(':')).length, 0);
    assert.deepEqual(
      skipped
        .filter((s) => !s.what.includes(':') && !s.what.includes('ff00') && !s.what.includes('fe80'))
        .map((s) => s.reason),
      ['not a prefix of this family', 'host bits set', 'unknown interface nosuch', 'gateway 2001:db8::1 is not IPv4'],
    );
    assert.throws(
      () => snapshotFromDumps({ ...dumps, routes4: {} }, { tables: ['main'], interfaces: null }),
      /not a JSON array/,
    );
  });
});

describe('diffSnapshots', () => {
  const base = snapshotFromDumps(dumps, { tables: ['main', 'local'], interfaces: null }).snapshot;

  function withRoutes(snapshot: KernelSnapshot, edit: (routes: Map<string, FibRoute>) => void): KernelSnapshot {
    const routes = new Map(snapshot.routes);
    edit(routes);
    return { ...snapshot, routes };
  }

  test('from nothing: everything is an add', () => {
    const changes = diffSnapshots(EMPTY_SNAPSHOT, base);
    assert.equal(changes.routeAdds.length, base.routes.size);
    assert.equal(changes.neighbourAdds.length, 3);
    assert.deepEqual([changes.routeDeletes, changes.neighbourDeletes, changes.filter], [[], [], null]);
  });

  test('the same snapshot: nothing', () => {
    assert.ok(isEmptyChange(diffSnapshots(base, base)));
    const copy = snapshotFromDumps(dumps, { tables: ['main', 'local'], interfaces: null }).snapshot;
    assert.ok(isEmptyChange(diffSnapshots(base, copy)), 'equal content, different objects');
  });

  test('added, changed and removed routes', () => {
    const eth0 = base.routes.get('10.9.0.0/16')!.interface;
    const after = withRoutes(base, (routes) => {
      routes.set('10.50.0.0/16', {
        prefix: '10.50.0.0/16',
        family: 4,
        kind: 'unicast',
        gateway: '10.1.0.2',
        interface: eth0,
      });
      routes.set('10.9.0.0/16', { ...routes.get('10.9.0.0/16')!, gateway: '10.1.0.3' });
      routes.delete('10.66.0.0/16');
      routes.delete('2001:db8:9::/48');
    });
    const changes = diffSnapshots(base, after);
    assert.deepEqual(changes.routeAdds.map((r) => `${r.prefix} ${r.gateway}`).sort(), [
      '10.50.0.0/16 10.1.0.2',
      '10.9.0.0/16 10.1.0.3',
    ]);
    assert.deepEqual(changes.routeDeletes.sort(), ['10.66.0.0/16', '2001:db8:9::/48']);
    // Applying the diff to the before-map gives the after-map.
    const replayed = new Map(base.routes);
    for (const prefix of changes.routeDeletes) replayed.delete(prefix);
    for (const route of changes.routeAdds) replayed.set(route.prefix, route);
    assert.deepEqual(replayed, after.routes);
  });

  test('an interface that comes back with a new ifindex re-sends its routes and neighbours', () => {
    const moved = {
      ...dumps,
      links: (LINKS as { ifname: string; ifindex: number }[]).map((l) =>
        l.ifname === 'eth1' ? { ...l, ifindex: 42 } : l,
      ),
    };
    const after = snapshotFromDumps(moved, { tables: ['main', 'local'], interfaces: null }).snapshot;
    const changes = diffSnapshots(base, after);
    assert.deepEqual(changes.routeAdds.map((r) => r.prefix).sort(), ['10.10.0.0/24', '10.20.0.0/16', '10.22.0.0/16']);
    assert.deepEqual(
      changes.neighbourAdds.map((n) => `${n.interface.index} ${n.address}`),
      ['42 10.10.0.2'],
    );
    assert.deepEqual(
      changes.neighbourDeletes.map((n) => `${n.interface.index} ${n.address}`),
      ['5 10.10.0.2'],
    );
  });

  test('a neighbour whose MAC changed is re-sent; one that went is deleted', () => {
    const neighbours = new Map(base.neighbours);
    const key = 'eth0|10.1.0.2';
    neighbours.set(key, { ...neighbours.get(key)!, mac: '02:00:00:00:00:99' });
    neighbours.delete('eth1|10.10.0.2');
    const changes = diffSnapshots(base, { ...base, neighbours });
    assert.deepEqual(
      changes.neighbourAdds.map((n) => n.mac),
      ['02:00:00:00:00:99'],
    );
    assert.deepEqual(
      changes.neighbourDeletes.map((n) => n.address),
      ['10.10.0.2'],
    );
    assert.equal(changes.routeAdds.length, 0);
  });

  test('the filter is sent whole when any rule differs', () => {
    const rule = {
      handle: 3,
      family: 4 as const,
      proto: 6,
      src: null,
      dst: null,
      sport: null,
      dport: [80, 80] as const,
      action: 'accept' as const,
    };
    const a = { ...base, filter: [rule] };
    assert.equal(diffSnapshots(a, { ...base, filter: [{ ...rule }] }).filter, null);
    assert.deepEqual(diffSnapshots(a, { ...base, filter: [{ ...rule, dport: [81, 81] as const }] }).filter, [
      { ...rule, dport: [81, 81] },
    ]);
    assert.deepEqual(diffSnapshots(a, { ...base, filter: [] }).filter, []);
  });
});
