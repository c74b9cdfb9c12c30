// Quotas on the shared tables: default shares that never sum over a table, explicit quotas,
// and the rules that refuse quotas and capacities the maps cannot hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyNetworkChange,
  DEFAULT_TABLE_CAPACITIES,
  diffConfigs,
  networkQuotas,
  parseConfig,
  QUOTA_TABLES,
  serializeConfig,
  type ConfigChecks,
  type XnetmonConfig,
} from '../../src/config/index.js';
import { ValidationError } from '../../src/errors/index.js';

const key = (n: number): string => Buffer.alloc(32, n).toString('base64');

function config(networks: string, host = '', checks?: ConfigChecks): XnetmonConfig {
  return parseConfig(
    `
host:
  links: [{ name: p0, capacity_mbps: 1000 }]
  ${host}
networks:
${networks}`,
    'quota.yaml',
    checks,
  );
}

const THREE = `
  - { id: 1, name: blue, weight: 500, reserve: { fib: 0.2 }, routers: [{ vif: v1, client_public_key: "${key(1)}" }] }
  - { id: 2, name: green, weight: 300, reserve: { fib: 0.1 }, routers: [{ vif: v2, client_public_key: "${key(2)}" }] }
  - { id: 3, name: red, weight: 200, routers: [{ vif: v3, client_public_key: "${key(3)}" }] }`;

function refusal(run: () => unknown): ValidationError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ValidationError, String(error));
    return error;
  }
  assert.fail('expected a ValidationError');
}

test('default quotas follow alpha + (1 - sum alpha) * W / sum W and never sum over a table', () => {
  const quotas = networkQuotas(config(THREE));
  // Shares: blue 0.2 + 0.7 * 0.5 = 0.55, green 0.1 + 0.7 * 0.3 = 0.31, red 0.7 * 0.2 = 0.14.
  assert.equal(quotas.get(1)!.nexthops, Math.floor(65_535 * 0.55));
  assert.equal(quotas.get(2)!.routes4, Math.floor(4_194_304 * 0.31));
  assert.equal(quotas.get(3)!.routes6, Math.floor(1_048_576 * 0.14));
  for (const table of QUOTA_TABLES) {
    const sum = [...quotas.values()].reduce((s, q) => s + q[table], 0);
    assert.ok(sum <= DEFAULT_TABLE_CAPACITIES[table], `${table}: ${sum}`);
    assert.ok(
      sum >= DEFAULT_TABLE_CAPACITIES[table] - 3,
      `${table}: ${sum} leaves at most one slot per network unused`,
    );
  }
});

test('an explicit quota is kept; the other networks share what it leaves', () => {
  const cfg = config(THREE.replace('name: red,', 'name: red, quota: { nexthops: 535, routes4: 0 },'));
  const quotas = networkQuotas(cfg);
  assert.equal(quotas.get(3)!.nexthops, 535);
  assert.equal(quotas.get(3)!.routes4, 0);
  // blue and green split 65,000 as 0.55 : 0.31.
  assert.equal(quotas.get(1)!.nexthops, Math.floor((65_000 * 0.55) / 0.86));
  assert.equal(quotas.get(2)!.nexthops, Math.floor((65_000 * 0.31) / 0.86));
  assert.deepEqual(cfg.networks[2]!.quota, { nexthops: 535, routes4: 0 });
  assert.deepEqual(cfg.networks[0]!.quota, {});
  assert.deepEqual(parseConfig(serializeConfig(cfg)), cfg);
});

test('small tables (a data plane opened with small maps) set the defaults', () => {
  const capacities = { routes4: 100, routes6: 10, nexthops: 7, neighbours: 9 };
  const quotas = networkQuotas(config(THREE, 'fib_capacity: 50', { tableCapacities: capacities }), capacities);
  assert.deepEqual(quotas.get(1), { routes4: 55, routes6: 5, nexthops: 3, neighbours: 4 });
});

test('quotas that sum over a table are refused, naming the field and the numbers', () => {
  const error = refusal(() =>
    config(
      THREE.replace('name: blue,', 'name: blue, quota: { nexthops: 40000 },').replace(
        'name: green,',
        'name: green, quota: { nexthops: 30000 },',
      ),
    ),
  );
  assert.equal(error.path, 'networks[1].quota.nexthops');
  assert.match(
    error.message,
    /30000 makes the nexthops quotas sum to 70000 \(blue 40000 \+ green 30000\); xnm_nexthops holds 65535 entries for all networks/,
  );
});

test('a quota that is not a whole number, or an unknown quota key, is refused', () => {
  assert.equal(
    refusal(() => config(THREE.replace('name: red,', 'name: red, quota: { routes6: -1 },'))).path,
    'networks[2].quota.routes6',
  );
  const typo = refusal(() => config(THREE.replace('name: red,', 'name: red, quota: { nexthop: 5 },')));
  assert.equal(typo.path, 'networks[2].quota.nexthop');
  assert.match(typo.message, /did you mean "nexthops"/);
});

test("fib_capacity larger than the route maps is refused, with the maps' sizes", () => {
  const error = refusal(() => config(THREE, 'fib_capacity: 6000000'));
  assert.equal(error.path, 'host.fib_capacity');
  assert.match(
    error.message,
    /6000000 routes is more than the route maps hold: 5242880 \(xnm_routes4 4194304 \+ xnm_routes6 1048576\)/,
  );
  const small = refusal(() =>
    config(THREE, 'fib_capacity: 2000000', { tableCapacities: { routes4: 1000, routes6: 24 } }),
  );
  assert.match(small.message, /2000000 routes is more than the route maps hold: 1024/);
  assert.equal(config(THREE, 'fib_capacity: 5242880').host.fibCapacity, 5_242_880);
});

test('a quota change is a live network change; null returns to the default share', () => {
  const before = config(THREE);
  const after = applyNetworkChange(before, 'green', { quota: { routes4: 1000 } });
  assert.deepEqual(after.networks[1]!.quota, { routes4: 1000 });
  assert.equal(networkQuotas(after).get(2)!.routes4, 1000);
  const diff = diffConfigs(before, after);
  assert.deepEqual(
    diff.networksChanged.map((c) => [c.name, c.fields]),
    [['green', ['quota']]],
  );
  assert.equal(diff.restartRequired, false);
  assert.deepEqual(applyNetworkChange(after, 'green', { quota: { routes4: null } }).networks[1]!.quota, {});
  const over = refusal(() => applyNetworkChange(after, 'green', { quota: { routes6: 2_000_000 } }));
  assert.equal(over.path, 'networks.green.quota.routes6');
  assert.match(over.message, /xnm_routes6 holds 1048576/);
});
