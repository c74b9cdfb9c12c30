// Live changes: applyNetworkChange, addNetwork, removeNetwork never mutate their input, return a
// config that keeps every invariant, or throw a ValidationError naming the field.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ValidationError } from '../../src/errors/index.js';
import {
  addNetwork,
  applyNetworkChange,
  diffConfigs,
  parseConfig,
  removeNetwork,
  serializeConfig,
  validateConfig,
  type NetworkChange,
  type NetworkDefinition,
  type XnetmonConfig,
} from '../../src/config/index.js';

const key = (seed: number): string => {
  const bytes = Buffer.alloc(32, 0x5a);
  bytes.writeUInt32BE(seed);
  return bytes.toString('base64');
};

// Headroom everywhere: cpu 0.6, fib 0.6, l0 0.6, l1 0.5 reserved.
const BASE = parseConfig(`
host:
  links:
    - { name: l0, capacity_mbps: 1000 }
    - { name: l1, capacity_mbps: 100 }
networks:
  - id: 1
    name: blue
    weight: 500
    reserve: { cpu: 0.3, fib: 0.2, links: { l0: 0.4 } }
    routers: [{ vif: vb, client_public_key: "${key(1)}" }]
    attachments: [{ interface: l0, vlan: 0, mac: "02:00:00:00:00:01" }]
  - id: 2
    name: green
    weight: 200
    reserve: { cpu: 0.2, fib: 0.2, links: { l0: 0.2, l1: 0.5 } }
    routers: [{ vif: vg, client_public_key: "${key(2)}" }]
    attachments: [{ interface: l1, vlan: 10, mac: "02:00:00:00:00:02" }]
  - id: 3
    name: red
    weight: 10
    reserve: { cpu: 0.1, fib: 0.2 }
    routers: [{ vif: vr, client_public_key: "${key(3)}" }]
`);

function expectInvalid(run: () => unknown, path: string, valueText: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ValidationError, `expected a ValidationError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_INVALID');
    assert.equal(error.path, path, error.message);
    assert.ok(error.message.includes(valueText), `message should name ${valueText}: ${error.message}`);
    return true;
  });
}

/** The invariants, checked independently of the module's own validation. */
function assertInvariants(config: XnetmonConfig): void {
  const slack = 1e-9;
  const links = new Set(config.host.links.map((l) => l.name));
  assert.equal(links.size, config.host.links.length, 'host link names unique');
  const unique = (values: unknown[], what: string): void =>
    assert.equal(new Set(values).size, values.length, `${what} unique`);
  unique(
    config.networks.map((n) => n.id),
    'ids',
  );
  unique(
    config.networks.map((n) => n.name),
    'names',
  );
  const routers = config.networks.flatMap((n) => n.routers);
  unique(
    routers.map((r) => r.vif),
    'vifs',
  );
  unique(
    routers.map((r) => r.clientPublicKey),
    'keys',
  );
  for (const r of routers) assert.ok(!links.has(r.vif), 'a vif is not a host link');
  const attachments = config.networks.flatMap((n) => n.attachments);
  unique(
    attachments.map((a) => `${a.interface}/${a.vlan}/${a.mac.toLowerCase()}`),
    'classification keys',
  );
  for (const a of attachments) assert.ok(links.has(a.interface), 'attachments on host links');
  let cpu = 0;
  let fib = 0;
  const perLink = new Map<string, number>();
  for (const n of config.networks) {
    assert.ok(Number.isInteger(n.weight) && n.weight >= 1 && n.weight <= 1000, `weight ${n.weight}`);
    for (const share of [n.reserve.cpu, n.reserve.fib, ...Object.values(n.reserve.links)])
      assert.ok(share >= 0 && share <= 1, `share ${share}`);
    for (const [link, share] of Object.entries(n.reserve.links)) {
      assert.ok(links.has(link), `reserved link ${link} is a host link`);
      perLink.set(link, (perLink.get(link) ?? 0) + share);
    }
    cpu += n.reserve.cpu;
    fib += n.reserve.fib;
  }
  assert.ok(cpu <= 1 + slack, `cpu sum ${cpu}`);
  assert.ok(fib <= 1 + slack, `fib sum ${fib}`);
  for (const [link, sum] of perLink) assert.ok(sum <= 1 + slack, `${link} sum ${sum}`);
}

describe('config: applyNetworkChange', () => {
  it('returns a new config with the change and leaves the input alone', () => {
    const before = structuredClone(BASE);
    const after = applyNetworkChange(BASE, 'blue', { cpu: 0.35, fib: 0.1, weight: 1000, links: { l1: 0.5 } });
    assert.deepEqual(BASE, before);
    assert.notEqual(after, BASE);
    const blue = after.networks[0]!;
    assert.equal(blue.weight, 1000);
    assert.deepEqual(blue.reserve, { cpu: 0.35, fib: 0.1, links: { l0: 0.4, l1: 0.5 } });
    assert.deepEqual(after.networks.slice(1), BASE.networks.slice(1));
    assertInvariants(after);
    // No structure is shared, so mutating the result cannot reach the input.
    (after.networks[1]!.reserve.links as Record<string, number>).l0 = 0.9;
    assert.deepEqual(BASE, before);
  });

  it('accepts the limits: weight 1 and 1000, a sum of exactly 1, an empty change', () => {
    assert.equal(applyNetworkChange(BASE, 'red', { weight: 1 }).networks[2]!.weight, 1);
    assert.equal(applyNetworkChange(BASE, 'red', { weight: 1000 }).networks[2]!.weight, 1000);
    assertInvariants(applyNetworkChange(BASE, 'red', { cpu: 0.5, links: { l0: 0.4, l1: 0.5 } }));
    assert.deepEqual(applyNetworkChange(BASE, 'red', {}), BASE);
  });

  const badChanges: { name: string; network: string; change: NetworkChange; path: string; names: string }[] = [
    { name: 'unknown network', network: 'purple', change: { cpu: 0.1 }, path: 'networks.purple', names: '"purple"' },
    { name: 'alpha 1.1', network: 'blue', change: { cpu: 1.1 }, path: 'networks.blue.reserve.cpu', names: '1.1' },
    { name: 'alpha -0.1', network: 'blue', change: { fib: -0.1 }, path: 'networks.blue.reserve.fib', names: '-0.1' },
    { name: 'cpu sum over 1', network: 'red', change: { cpu: 0.6 }, path: 'networks.red.reserve.cpu', names: '1.1' },
    { name: 'fib sum over 1', network: 'blue', change: { fib: 0.7 }, path: 'networks.blue.reserve.fib', names: '1.1' },
    {
      name: 'link sum over 1',
      network: 'red',
      change: { links: { l1: 0.6 } },
      path: 'networks.red.reserve.links.l1',
      names: '1.1',
    },
    { name: 'W = 0', network: 'green', change: { weight: 0 }, path: 'networks.green.weight', names: '0' },
    { name: 'W = 1001', network: 'green', change: { weight: 1001 }, path: 'networks.green.weight', names: '1001' },
    { name: 'W = 2.5', network: 'green', change: { weight: 2.5 }, path: 'networks.green.weight', names: '2.5' },
    { name: 'W = NaN', network: 'green', change: { weight: Number.NaN }, path: 'networks.green.weight', names: 'NaN' },
    {
      name: 'unknown link',
      network: 'green',
      change: { links: { eth9: 0.1 } },
      path: 'networks.green.reserve.links.eth9',
      names: '"eth9"',
    },
    {
      name: 'unknown change field',
      network: 'green',
      change: { wieght: 3 } as NetworkChange,
      path: 'networks.green.wieght',
      names: '"wieght"',
    },
  ];
  for (const bad of badChanges) {
    it(`rejects ${bad.name} at ${bad.path} and leaves the input alone`, () => {
      const before = structuredClone(BASE);
      expectInvalid(() => applyNetworkChange(BASE, bad.network, bad.change), bad.path, bad.names);
      assert.deepEqual(BASE, before);
    });
  }
});

describe('config: addNetwork and removeNetwork', () => {
  const purple = {
    id: 4,
    name: 'purple',
    routers: [{ vif: 'vp', clientPublicKey: key(4) }],
    attachments: [{ interface: 'l1', vlan: 0, mac: '02:00:00:00:00:04' }],
  };

  it('adds a network with file defaults and removes it again', () => {
    const before = structuredClone(BASE);
    const added = addNetwork(BASE, purple);
    assert.deepEqual(BASE, before);
    const p = added.networks[3]!;
    assert.equal(p.weight, 500);
    assert.equal(p.filterDefault, 'accept');
    assert.deepEqual(p.reserve, { cpu: 0, fib: 0, links: {} });
    assertInvariants(added);
    assert.deepEqual(
      diffConfigs(BASE, added).networksAdded.map((n) => n.name),
      ['purple'],
    );
    const removed = removeNetwork(added, 'purple');
    assert.deepEqual(removed, BASE);
    assert.equal(added.networks.length, 4);
  });

  it('rejects overlaps and over-reservation, naming the new network', () => {
    expectInvalid(() => addNetwork(BASE, { ...purple, name: 'blue' }), 'networks.blue.name', '"blue"');
    expectInvalid(() => addNetwork(BASE, { ...purple, id: 2 }), 'networks.purple.id', '2');
    expectInvalid(
      () => addNetwork(BASE, { ...purple, routers: [{ vif: 'vg', clientPublicKey: key(4) }] }),
      'networks.purple.routers[0].vif',
      '"vg"',
    );
    expectInvalid(
      () => addNetwork(BASE, { ...purple, routers: [{ vif: 'vp', clientPublicKey: key(1) }] }),
      'networks.purple.routers[0].client_public_key',
      key(1),
    );
    expectInvalid(
      () => addNetwork(BASE, { ...purple, attachments: [{ interface: 'l0', vlan: 0, mac: '02:00:00:00:00:01' }] }),
      'networks.purple.attachments[0]',
      '02:00:00:00:00:01',
    );
    expectInvalid(() => addNetwork(BASE, { ...purple, reserve: { cpu: 0.5 } }), 'networks.purple.reserve.cpu', '1.1');
    expectInvalid(() => addNetwork(BASE, { ...purple, weight: 0 }), 'networks.purple.weight', '0');
    expectInvalid(
      () => addNetwork(BASE, purple, { interfaceExists: (name) => name !== 'vp' }),
      'networks.purple.routers[0].vif',
      '"vp"',
    );
  });

  it('rejects removing an unknown network', () => {
    expectInvalid(() => removeNetwork(BASE, 'purple'), 'networks.purple', '"purple"');
  });
});

// ---- properties ----

/** n shares in [0, 1] whose sum is at most 1. */
const shares = (n: number) =>
  fc.array(fc.integer({ min: 0, max: 100 }), { minLength: n, maxLength: n }).map((weights) => {
    const total = Math.max(
      100,
      weights.reduce((a, b) => a + b, 0),
    );
    return weights.map((w) => w / total);
  });

const validConfig = (minNetworks: number) =>
  fc
    .record({ linkCount: fc.integer({ min: 1, max: 3 }), networkCount: fc.integer({ min: minNetworks, max: 6 }) })
    .chain(({ linkCount, networkCount }) =>
      fc.record({
        capacities: fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: linkCount, maxLength: linkCount }),
        weights: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: networkCount, maxLength: networkCount }),
        cpu: shares(networkCount),
        fib: shares(networkCount),
        links: fc.array(shares(networkCount), { minLength: linkCount, maxLength: linkCount }),
        filters: fc.array(fc.constantFrom('accept' as const, 'drop' as const), {
          minLength: networkCount,
          maxLength: networkCount,
        }),
      }),
    )
    .map(({ capacities, weights, cpu, fib, links, filters }): XnetmonConfig => {
      const linkNames = capacities.map((_, l) => `l${l}`);
      const networks = weights.map(
        (weight, n): NetworkDefinition => ({
          id: n + 1,
          name: `net${n}`,
          weight,
          reserve: {
            cpu: cpu[n]!,
            fib: fib[n]!,
            links: Object.fromEntries(linkNames.map((name, l) => [name, links[l]![n]!])),
          },
          routers: [{ vif: `v${n}`, clientPublicKey: key(100 + n) }],
          attachments: [
            {
              interface: linkNames[n % linkNames.length]!,
              vlan: n,
              mac: `02:00:00:00:01:${(n + 1).toString(16).padStart(2, '0')}`,
            },
          ],
          filterDefault: filters[n]!,
          quota: {},
        }),
      );
      return {
        host: { ...BASE.host, links: capacities.map((capacityMbps, l) => ({ name: linkNames[l]!, capacityMbps })) },
        networks,
      };
    });

/** Room left for one network on one resource. */
function headroom(config: XnetmonConfig, network: number, share: (n: NetworkDefinition) => number): number {
  const others = config.networks.reduce((sum, n, i) => (i === network ? sum : sum + share(n)), 0);
  return Math.max(0, 1 - others);
}

const linkShare =
  (link: string) =>
  (n: NetworkDefinition): number =>
    n.reserve.links[link] ?? 0;

const validChange = (config: XnetmonConfig) =>
  fc
    .record({
      network: fc.integer({ min: 0, max: config.networks.length - 1 }),
      cpu: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
      fib: fc.option(fc.double({ min: 0, max: 1, noNaN: true })),
      weight: fc.option(fc.integer({ min: 1, max: 1000 })),
      links: fc.array(fc.option(fc.double({ min: 0, max: 1, noNaN: true })), {
        minLength: config.host.links.length,
        maxLength: config.host.links.length,
      }),
    })
    .map(({ network, cpu, fib, weight, links }) => {
      const change: { cpu?: number; fib?: number; weight?: number; links?: Record<string, number> } = {};
      if (cpu !== null) change.cpu = cpu * headroom(config, network, (n) => n.reserve.cpu);
      if (fib !== null) change.fib = fib * headroom(config, network, (n) => n.reserve.fib);
      if (weight !== null) change.weight = weight;
      const linkChange: Record<string, number> = {};
      links.forEach((fraction, l) => {
        const name = config.host.links[l]!.name;
        if (fraction !== null) linkChange[name] = fraction * headroom(config, network, linkShare(name));
      });
      if (Object.keys(linkChange).length > 0) change.links = linkChange;
      return { name: config.networks[network]!.name, change: change as NetworkChange };
    });

const invalidChange = (config: XnetmonConfig) =>
  fc
    .record({
      network: fc.integer({ min: 0, max: config.networks.length - 1 }),
      excess: fc.double({ min: 1e-6, max: 2, noNaN: true }),
      kind: fc.constantFrom(
        'cpu-over',
        'fib-over',
        'link-over',
        'negative',
        'weight',
        'unknown-link',
        'unknown-network',
      ),
      badWeight: fc.constantFrom(0, 1001, 2.5, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e9),
    })
    .map(({ network, excess, kind, badWeight }) => {
      const name = config.networks[network]!.name;
      const firstLink = config.host.links[0]!.name;
      switch (kind) {
        case 'cpu-over':
          return { name, change: { cpu: headroom(config, network, (n) => n.reserve.cpu) + excess } };
        case 'fib-over':
          return { name, change: { fib: headroom(config, network, (n) => n.reserve.fib) + excess } };
        case 'link-over':
          return { name, change: { links: { [firstLink]: headroom(config, network, linkShare(firstLink)) + excess } } };
        case 'negative':
          return { name, change: { cpu: -excess } };
        case 'weight':
          return { name, change: { weight: badWeight } };
        case 'unknown-link':
          return { name, change: { links: { nolink: 0 } } };
        default:
          return { name: 'nonet', change: { cpu: 0 } };
      }
    });

describe('config: properties', () => {
  it('random configs are valid and round-trip through serializeConfig', () => {
    fc.assert(
      fc.property(validConfig(0), (config) => {
        validateConfig(config);
        assertInvariants(config);
        assert.deepEqual(parseConfig(serializeConfig(config)), config);
      }),
      { numRuns: 100 },
    );
  });

  it('random valid changes keep every invariant and never touch the input', () => {
    const scenario = validConfig(1).chain((config) =>
      fc.tuple(fc.constant(config), fc.array(validChange(config), { minLength: 1, maxLength: 1 })),
    );
    fc.assert(
      fc.property(scenario, ([config, [step]]) => {
        const before = structuredClone(config);
        const after = applyNetworkChange(config, step!.name, step!.change);
        assert.deepEqual(config, before);
        assertInvariants(after);
        const changed = after.networks.find((n) => n.name === step!.name)!;
        if (step!.change.weight !== undefined) assert.equal(changed.weight, step!.change.weight);
        if (step!.change.cpu !== undefined) assert.equal(changed.reserve.cpu, step!.change.cpu);
        const diff = diffConfigs(config, after);
        assert.equal(diff.restartRequired, false);
        assert.deepEqual([diff.networksAdded.length, diff.networksRemoved.length], [0, 0]);
      }),
      { numRuns: 200 },
    );
  });

  it('chains of valid changes keep every invariant', () => {
    fc.assert(
      fc.property(validConfig(1), fc.integer({ min: 1, max: 8 }), fc.gen(), (start, length, draw) => {
        let config = start;
        for (let i = 0; i < length; i++) {
          const step = draw(validChange, config);
          config = applyNetworkChange(config, step.name, step.change);
          assertInvariants(config);
        }
      }),
      { numRuns: 50 },
    );
  });

  it('random invalid changes throw a ValidationError and never return a config', () => {
    const scenario = validConfig(1).chain((config) => fc.tuple(fc.constant(config), invalidChange(config)));
    fc.assert(
      fc.property(scenario, ([config, { name, change }]) => {
        const before = structuredClone(config);
        let returned: XnetmonConfig | undefined;
        assert.throws(() => {
          returned = applyNetworkChange(config, name, change);
        }, ValidationError);
        assert.equal(returned, undefined);
        assert.deepEqual(config, before);
      }),
      { numRuns: 300 },
    );
  });

  it('removing any network keeps every invariant and shows as one removal', () => {
    const scenario = validConfig(1).chain((config) =>
      fc.tuple(fc.constant(config), fc.integer({ min: 0, max: config.networks.length - 1 })),
    );
    fc.assert(
      fc.property(scenario, ([config, index]) => {
        const name = config.networks[index]!.name;
        const after = removeNetwork(config, name);
        assertInvariants(after);
        const diff = diffConfigs(config, after);
        assert.deepEqual(
          diff.networksRemoved.map((n) => n.name),
          [name],
        );
        assert.deepEqual([diff.networksAdded.length, diff.networksChanged.length, diff.hostChanged.length], [0, 0, 0]);
      }),
      { numRuns: 100 },
    );
  });
});
