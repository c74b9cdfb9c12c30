// Config file format: the example, the rules (one table of bad configs), serialization, diffs.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ValidationError, XnetmonError } from '../../src/errors/index.js';
import {
  applyNetworkChange,
  defaultCosts,
  diffConfigs,
  loadConfigFile,
  parseConfig,
  parseLinkSpec,
  parseListenAddress,
  reservedShares,
  serializeConfig,
  validateConfig,
  type ConfigChecks,
  type XnetmonConfig,
} from '../../src/config/index.js';

/** The repository root: the closest directory above this file whose package.json is xnetmon's
 *  (so the test runs from src/ through ts loaders, from dist/, or from an out-of-tree build run in the repo). */
function repoRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'xnetmon')
        return dir;
      if (dirname(dir) === dir) break;
    }
  }
  throw new Error('repository root (package.json of xnetmon) not found above the test file or the working directory');
}

const EXAMPLE_PATH = join(repoRoot(), 'docs', 'examples', 'xnetmon.yaml');
const EXAMPLE_TEXT = readFileSync(EXAMPLE_PATH, 'utf8');

// biome-ignore lint/suspicious/noExplicitAny: the example's YAML tree, edited freely by the bad-config table (test-local)
type Raw = Record<string, any>;

function exampleRaw(): Raw {
  return parseYaml(EXAMPLE_TEXT) as Raw;
}

function expectInvalid(run: () => unknown, path: string, valueText: string): ValidationError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ValidationError, `expected a ValidationError, got ${String(caught)}`);
  assert.ok(caught instanceof XnetmonError);
  assert.equal(caught.code, 'ERR_INVALID');
  assert.equal(caught.path, path, caught.message);
  assert.ok(caught.message.includes(valueText), `message should name ${valueText}: ${caught.message}`);
  return caught;
}

describe('config: example file', () => {
  it('parses docs/examples/xnetmon.yaml into three networks on two links', () => {
    const config = parseConfig(EXAMPLE_TEXT, EXAMPLE_PATH);
    assert.deepEqual(
      config.networks.map((n) => n.name),
      ['blue', 'green', 'red'],
    );
    assert.deepEqual(
      config.host.links.map((l) => l.name),
      ['ext0', 'ext1'],
    );
    const blue = config.networks[0]!;
    assert.equal(blue.weight, 800);
    assert.deepEqual(blue.reserve, { cpu: 0.4, fib: 0.3, links: { ext0: 0.5, ext1: 0.5 } });
    assert.deepEqual(blue.routers[0], {
      vif: 'vif1.0',
      clientPublicKey: '7ygV5lAsMGOE+P82Ov4KrzgzCD8GSGogtceYYaWDfBE=',
    });
    assert.deepEqual(blue.attachments[0], { interface: 'ext0', vlan: 0, mac: '02:00:00:00:01:01' });
    assert.equal(config.networks[2]!.filterDefault, 'drop');
    assert.equal(config.host.controlLaw, 'algorithm1');
    assert.equal(config.host.metricsListen, '127.0.0.1:9469');
    const shares = reservedShares(config);
    assert.ok(Math.abs(shares.cpu - 0.9) < 1e-12);
    assert.deepEqual(shares.links, { ext0: 1, ext1: 1 });
  });

  it('loads the example from disk, and names the path of a file it cannot read', async () => {
    const config = await loadConfigFile(EXAMPLE_PATH);
    assert.equal(config.networks.length, 3);
    const missing = join(tmpdir(), 'xnetmon-no-such-dir', 'xnetmon.yaml');
    await assert.rejects(loadConfigFile(missing), (error: unknown) => {
      assert.ok(error instanceof XnetmonError);
      assert.ok(!(error instanceof ValidationError));
      assert.equal(error.code, 'ERR_CONFIG_READ');
      assert.ok(error.message.includes(missing));
      assert.ok(error.message.includes('ENOENT'));
      return true;
    });
  });

  it('reports a bad file with its source and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xnetmon-config-'));
    try {
      const file = join(dir, 'bad.yaml');
      writeFileSync(file, EXAMPLE_TEXT.replace('weight: 800', 'weight: 0'));
      await assert.rejects(loadConfigFile(file), (error: unknown) => {
        assert.ok(error instanceof ValidationError);
        assert.equal(error.path, 'networks[0].weight');
        assert.match(error.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 37`));
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fills defaults for everything but host.links and each network's id, name and routers", () => {
    const config = parseConfig(`
host:
  links: [{ name: eth1, capacity_mbps: 1000 }]
networks:
  - id: 7
    name: solo
    routers: [{ vif: veth-solo, client_public_key: "${Buffer.alloc(32, 7).toString('base64')}" }]
`);
    assert.equal(config.host.periodMs, 100);
    assert.equal(config.host.controlLaw, 'share');
    assert.equal(config.host.beta, 0.9);
    assert.equal(config.host.phiInitial, 0.05);
    assert.equal(config.host.residualDrop, 0.001);
    assert.deepEqual(config.host.costs, defaultCosts);
    assert.equal(config.host.costPerKib, 0);
    assert.equal(config.host.pinDir, '/sys/fs/bpf/xnetmon');
    assert.equal(
      config.host.listen,
      'auto:7400',
      "the secure channel listens on the routers' segments only, not on every address",
    );
    assert.equal(config.host.metricsListen, '127.0.0.1:9469');
    const solo = config.networks[0]!;
    assert.equal(solo.weight, 500);
    assert.deepEqual(solo.reserve, { cpu: 0, fib: 0, links: {} });
    assert.deepEqual(solo.attachments, []);
    assert.equal(solo.filterDefault, 'accept');
  });

  it('accepts partial cost tables, null metrics, IPv6 listen and upper-case MACs (stored lower-case)', () => {
    const raw = exampleRaw();
    raw.host.costs = { vm_vm: 90 };
    raw.host.metrics_listen = null;
    raw.host.listen = '[::]:7400';
    raw.networks[0].attachments[0].mac = '02:00:00:00:0A:BC';
    const config = parseConfig(stringifyYaml(raw));
    assert.deepEqual(config.host.costs, { ...defaultCosts, vmVm: 90 });
    assert.equal(config.host.metricsListen, null);
    assert.deepEqual(parseListenAddress(config.host.listen), { host: '::', port: 7400, family: 'ipv6' });
    assert.equal(config.networks[0]!.attachments[0]!.mac, '02:00:00:00:0a:bc');
  });
});

describe('config: YAML conveniences', () => {
  it('shares settings through x- anchors and merge keys', () => {
    const k = (i: number): string => Buffer.alloc(32, i).toString('base64');
    const config = parseConfig(`
x-tenant: &tenant
  weight: 300
  filter_default: drop
host:
  links: [{ name: e0, capacity_mbps: 10 }]
networks:
  - <<: *tenant
    id: 1
    name: a
    routers: [{ vif: v1, client_public_key: "${k(1)}" }]
  - <<: *tenant
    id: 2
    name: b
    weight: 600
    routers: [{ vif: v2, client_public_key: "${k(2)}" }]
`);
    assert.deepEqual(
      config.networks.map((n) => [n.name, n.weight, n.filterDefault]),
      [
        ['a', 300, 'drop'],
        ['b', 600, 'drop'],
      ],
    );
    expectInvalid(
      () => parseConfig('y-tenant: {}\nhost: { links: [{ name: e0, capacity_mbps: 1 }] }\n'),
      'y-tenant',
      '"y-tenant"',
    );
  });
});

// One table of bad configs: each is the example with one thing wrong.
const KEY_OF_BLUE = '7ygV5lAsMGOE+P82Ov4KrzgzCD8GSGogtceYYaWDfBE=';
const badConfigs: { name: string; mutate: (raw: Raw) => void; path: string; names: string; checks?: ConfigChecks }[] = [
  {
    name: 'an update message rate of 0 (no router could ever update)',
    path: 'host.update_messages_per_s',
    names: '0',
    mutate: (raw) => {
      raw.host.update_messages_per_s = 0;
    },
  },
  {
    name: 'an update burst that is not a whole number',
    path: 'host.update_messages_burst',
    names: '2.5',
    mutate: (raw) => {
      raw.host.update_messages_burst = 2.5;
    },
  },
  {
    name: 'overlapping attachments',
    path: 'networks[2].attachments[0]',
    names: '02:00:00:00:01:01',
    mutate: (raw) => {
      raw.networks[2].attachments[0] = { interface: 'ext0', vlan: 0, mac: '02:00:00:00:01:01' };
    },
  },
  {
    name: 'overlapping attachments differing only in MAC case',
    path: 'networks[2].attachments[0]',
    names: '02:00:00:00:01:01',
    mutate: (raw) => {
      raw.networks[2].attachments[0] = { interface: 'ext0', vlan: 0, mac: '02:00:00:00:01:01'.toUpperCase() };
    },
  },
  {
    name: 'a router address another network owns on the same segment',
    path: 'networks[1].attachments[0].addresses[0]',
    names: '10.1.0.1',
    mutate: (raw) => {
      raw.networks[0].attachments[0].addresses = ['10.1.0.1'];
      raw.networks[1].attachments[0].addresses = ['10.1.0.1'];
    },
  },
  {
    name: 'a router address spelled differently (IPv6 case and zeros) is still one address',
    path: 'networks[1].attachments[0].addresses[0]',
    names: '2001:db8::1',
    mutate: (raw) => {
      raw.networks[0].attachments[0].addresses = ['2001:DB8:0::1'];
      raw.networks[1].attachments[0].addresses = ['2001:db8::1'];
    },
  },
  {
    name: 'a router address that is not an address',
    path: 'networks[0].attachments[0].addresses[0]',
    names: '10.1.0.300',
    mutate: (raw) => {
      raw.networks[0].attachments[0].addresses = ['10.1.0.300'];
    },
  },
  {
    name: 'a multicast router address',
    path: 'networks[0].attachments[0].addresses[1]',
    names: 'ff02::1',
    mutate: (raw) => {
      raw.networks[0].attachments[0].addresses = ['10.1.0.1', 'ff02::1'];
    },
  },
  {
    name: 'the same attachment twice in one network',
    path: 'networks[0].attachments[1]',
    names: 'ext0',
    mutate: (raw) => {
      raw.networks[0].attachments[1] = { ...raw.networks[0].attachments[0] };
    },
  },
  {
    name: 'duplicate id',
    path: 'networks[2].id',
    names: '2',
    mutate: (raw) => {
      raw.networks[2].id = 2;
    },
  },
  {
    name: 'duplicate name',
    path: 'networks[1].name',
    names: '"blue"',
    mutate: (raw) => {
      raw.networks[1].name = 'blue';
    },
  },
  {
    name: 'duplicate vif',
    path: 'networks[1].routers[0].vif',
    names: '"vif1.0"',
    mutate: (raw) => {
      raw.networks[1].routers[0].vif = 'vif1.0';
    },
  },
  {
    name: 'vif that is a host link',
    path: 'networks[1].routers[0].vif',
    names: '"ext1"',
    mutate: (raw) => {
      raw.networks[1].routers[0].vif = 'ext1';
    },
  },
  {
    name: 'duplicate client key',
    path: 'networks[2].routers[0].client_public_key',
    names: KEY_OF_BLUE,
    mutate: (raw) => {
      raw.networks[2].routers[0].client_public_key = KEY_OF_BLUE;
    },
  },
  {
    name: 'cpu alphas summing over 1',
    path: 'networks[2].reserve.cpu',
    names: '1.1',
    mutate: (raw) => {
      raw.networks[2].reserve.cpu = 0.4;
    },
  },
  {
    name: 'fib alphas summing over 1',
    path: 'networks[2].reserve.fib',
    names: '1.05',
    mutate: (raw) => {
      raw.networks[2].reserve.fib = 0.45;
    },
  },
  {
    name: "one link's alphas summing over 1",
    path: 'networks[2].reserve.links.ext1',
    names: '1.25',
    mutate: (raw) => {
      raw.networks[2].reserve.links.ext1 = 0.25;
    },
  },
  {
    name: 'weight 0',
    path: 'networks[0].weight',
    names: '0',
    mutate: (raw) => {
      raw.networks[0].weight = 0;
    },
  },
  {
    name: 'weight 1001',
    path: 'networks[0].weight',
    names: '1001',
    mutate: (raw) => {
      raw.networks[0].weight = 1001;
    },
  },
  {
    name: 'weight 2.5',
    path: 'networks[0].weight',
    names: '2.5',
    mutate: (raw) => {
      raw.networks[0].weight = 2.5;
    },
  },
  {
    name: 'weight as a string',
    path: 'networks[0].weight',
    names: '"high"',
    mutate: (raw) => {
      raw.networks[0].weight = 'high';
    },
  },
  {
    name: 'alpha -0.1',
    path: 'networks[1].reserve.cpu',
    names: '-0.1',
    mutate: (raw) => {
      raw.networks[1].reserve.cpu = -0.1;
    },
  },
  {
    name: 'alpha 1.1',
    path: 'networks[1].reserve.fib',
    names: '1.1',
    mutate: (raw) => {
      raw.networks[1].reserve.fib = 1.1;
    },
  },
  {
    name: 'link alpha 1.1',
    path: 'networks[1].reserve.links.ext1',
    names: '1.1',
    mutate: (raw) => {
      raw.networks[1].reserve.links.ext1 = 1.1;
    },
  },
  {
    name: 'unknown link in reserve',
    path: 'networks[1].reserve.links.eth9',
    names: '"eth9"',
    mutate: (raw) => {
      raw.networks[1].reserve.links.eth9 = 0.1;
    },
  },
  {
    name: 'unknown attachment interface',
    path: 'networks[2].attachments[0].interface',
    names: '"eth9"',
    mutate: (raw) => {
      raw.networks[2].attachments[0].interface = 'eth9';
    },
  },
  {
    name: 'unknown key in a network',
    path: 'networks[0].wieght',
    names: '"wieght"',
    mutate: (raw) => {
      raw.networks[0].wieght = 3;
    },
  },
  {
    name: 'unknown host key (camelCase)',
    path: 'host.periodMs',
    names: '"periodMs"',
    mutate: (raw) => {
      raw.host.periodMs = 100;
    },
  },
  {
    name: 'unknown top-level key',
    path: 'hosts',
    names: '"hosts"',
    mutate: (raw) => {
      raw.hosts = {};
    },
  },
  {
    name: 'bad MAC',
    path: 'networks[0].attachments[0].mac',
    names: '"02:00:00:00:01"',
    mutate: (raw) => {
      raw.networks[0].attachments[0].mac = '02:00:00:00:01';
    },
  },
  {
    name: 'multicast MAC',
    path: 'networks[0].attachments[0].mac',
    names: '"01:00:5e:00:00:01"',
    mutate: (raw) => {
      raw.networks[0].attachments[0].mac = '01:00:5e:00:00:01';
    },
  },
  {
    name: 'key of 31 bytes',
    path: 'networks[0].routers[0].client_public_key',
    names: Buffer.alloc(31, 1).toString('base64'),
    mutate: (raw) => {
      raw.networks[0].routers[0].client_public_key = Buffer.alloc(31, 1).toString('base64');
    },
  },
  {
    name: 'key that is not base64',
    path: 'networks[0].routers[0].client_public_key',
    names: 'not a key!',
    mutate: (raw) => {
      raw.networks[0].routers[0].client_public_key = 'not a key!';
    },
  },
  {
    name: 'listen without a port',
    path: 'host.listen',
    names: '"0.0.0.0"',
    mutate: (raw) => {
      raw.host.listen = '0.0.0.0';
    },
  },
  {
    name: 'IPv6 listen without brackets',
    path: 'host.listen',
    names: '"::1:7400"',
    mutate: (raw) => {
      raw.host.listen = '::1:7400';
    },
  },
  {
    name: 'metrics on "auto"',
    path: 'host.metrics_listen',
    names: 'only for host.listen',
    mutate: (raw) => {
      raw.host.metrics_listen = 'auto:9469';
    },
  },
  {
    name: 'metrics on the secure channel port',
    path: 'host.metrics_listen',
    names: '"0.0.0.0:7400"',
    mutate: (raw) => {
      raw.host.metrics_listen = '0.0.0.0:7400';
    },
  },
  {
    name: 'period below 10 ms',
    path: 'host.period_ms',
    names: '5',
    mutate: (raw) => {
      raw.host.period_ms = 5;
    },
  },
  {
    name: 'unknown control law',
    path: 'host.control_law',
    names: '"pid"',
    mutate: (raw) => {
      raw.host.control_law = 'pid';
    },
  },
  {
    name: 'beta 0',
    path: 'host.beta',
    names: '0',
    mutate: (raw) => {
      raw.host.beta = 0;
    },
  },
  {
    name: 'residual drop 0.1',
    path: 'host.residual_drop',
    names: '0.1',
    mutate: (raw) => {
      raw.host.residual_drop = 0.1;
    },
  },
  {
    name: 'flow cache not a power of two',
    path: 'host.flow_cache_slots',
    names: '1000',
    mutate: (raw) => {
      raw.host.flow_cache_slots = 1000;
    },
  },
  {
    name: 'relative pin_dir',
    path: 'host.pin_dir',
    names: '"bpf/xnetmon"',
    mutate: (raw) => {
      raw.host.pin_dir = 'bpf/xnetmon';
    },
  },
  {
    name: 'vlan 4095',
    path: 'networks[2].attachments[0].vlan',
    names: '4095',
    mutate: (raw) => {
      raw.networks[2].attachments[0].vlan = 4095;
    },
  },
  {
    name: 'network id 4096',
    path: 'networks[2].id',
    names: '4096',
    mutate: (raw) => {
      raw.networks[2].id = 4096;
    },
  },
  {
    name: 'upper-case network name',
    path: 'networks[2].name',
    names: '"Red"',
    mutate: (raw) => {
      raw.networks[2].name = 'Red';
    },
  },
  {
    name: 'network without routers',
    path: 'networks[2].routers',
    names: 'empty list',
    mutate: (raw) => {
      raw.networks[2].routers = [];
    },
  },
  {
    name: 'missing network id',
    path: 'networks[2].id',
    names: 'missing',
    mutate: (raw) => {
      delete raw.networks[2].id;
    },
  },
  {
    name: 'duplicate host link',
    path: 'host.links[1].name',
    names: '"ext0"',
    mutate: (raw) => {
      raw.host.links[1].name = 'ext0';
    },
  },
  {
    name: 'interfaceExists false for a vif',
    path: 'networks[1].routers[0].vif',
    names: '"vif2.0"',
    mutate: () => {},
    checks: { interfaceExists: (name) => name !== 'vif2.0' },
  },
  {
    name: 'interfaceExists false for a host link',
    path: 'host.links[1].name',
    names: '"ext1"',
    mutate: () => {},
    checks: { interfaceExists: (name) => name !== 'ext1' },
  },
];

describe('config: bad configs', () => {
  for (const bad of badConfigs) {
    it(`rejects ${bad.name} at ${bad.path}`, () => {
      const raw = exampleRaw();
      bad.mutate(raw);
      const error = expectInvalid(() => parseConfig(stringifyYaml(raw), 'bad.yaml', bad.checks), bad.path, bad.names);
      assert.match(error.message, /bad\.yaml line \d+/);
    });
  }

  it('names the resource and the sum when alphas exceed 1', () => {
    const raw = exampleRaw();
    raw.networks[2].reserve.links.ext1 = 0.25;
    const error = expectInvalid(() => parseConfig(stringifyYaml(raw)), 'networks[2].reserve.links.ext1', 'link ext1');
    assert.match(error.message, /sum to 1\.25 \(blue 0\.5 \+ green 0\.5 \+ red 0\.25\)/);
  });

  it('lists further problems after the first', () => {
    const raw = exampleRaw();
    raw.networks[0].weight = 0;
    raw.networks[1].weight = 1001;
    const error = expectInvalid(() => parseConfig(stringifyYaml(raw)), 'networks[0].weight', '0');
    assert.match(error.message, /also networks\[1\]\.weight: 1001/);
  });

  it('suggests the snake_case or nearby key for a typo', () => {
    const raw = exampleRaw();
    raw.host.periodMs = 100;
    assert.throws(() => parseConfig(stringifyYaml(raw)), /did you mean "period_ms"/);
    const typo = exampleRaw();
    typo.networks[0].wieght = 3;
    assert.throws(() => parseConfig(stringifyYaml(typo)), /did you mean "weight"/);
  });

  it('turns YAML syntax errors into a ValidationError with the line', () => {
    const error = expectInvalid(
      () => parseConfig('host:\n  period_ms: [1\n  beta: 2\n', 'broken.yaml'),
      'broken.yaml',
      'line 3',
    );
    assert.match(error.message, /YAML syntax error/);
    expectInvalid(() => parseConfig('host: {}\nhost: {}\n', 'dup.yaml'), 'dup.yaml', 'unique');
    expectInvalid(() => parseConfig('', 'empty.yaml'), 'empty.yaml', 'empty');
  });

  it('validateConfig applies the same rules to a config built in code', () => {
    const config = parseConfig(EXAMPLE_TEXT);
    validateConfig(config);
    const tooHeavy: XnetmonConfig = {
      ...config,
      networks: config.networks.map((n, i) => (i === 0 ? { ...n, weight: 1001 } : n)),
    };
    expectInvalid(() => validateConfig(tooHeavy), 'networks[0].weight', '1001');
    expectInvalid(() => validateConfig(config, { interfaceExists: () => false }), 'host.links[0].name', '"ext0"');
  });
});

describe('config: parseLinkSpec', () => {
  it('parses LINK=SHARE', () => {
    assert.deepEqual(parseLinkSpec('eth1=0.5'), { link: 'eth1', share: 0.5 });
    assert.deepEqual(parseLinkSpec('ext0=1'), { link: 'ext0', share: 1 });
    assert.deepEqual(parseLinkSpec('ext0=0'), { link: 'ext0', share: 0 });
    assert.deepEqual(parseLinkSpec('vif1.0=.25'), { link: 'vif1.0', share: 0.25 });
  });

  for (const spec of [
    'eth1',
    'eth1=',
    '=0.5',
    'eth1=1.5',
    'eth1=abc',
    'eth1=0.5=1',
    'eth1=-0.1',
    'eth1=NaN',
    ' eth1=0.5',
    'eth/1=0.5',
    '',
  ]) {
    it(`rejects ${JSON.stringify(spec)}`, () => {
      expectInvalid(() => parseLinkSpec(spec, '--link'), '--link', JSON.stringify(spec));
    });
  }
});

describe('config: serializeConfig', () => {
  it('round-trips the example through parseConfig', () => {
    const config = parseConfig(EXAMPLE_TEXT);
    const text = serializeConfig(config);
    assert.deepEqual(parseConfig(text), config);
    // MACs are quoted so YAML 1.1 readers do not see sexagesimal numbers.
    assert.match(text, /mac: "02:00:00:00:01:01"/);
  });

  it('round-trips null metrics and fractional shares', () => {
    const config = parseConfig(EXAMPLE_TEXT);
    const changed = applyNetworkChange({ ...config, host: { ...config.host, metricsListen: null } }, 'red', {
      cpu: 0.1,
      fib: 1e-7,
      links: { ext0: 0.1234567 },
    });
    assert.deepEqual(parseConfig(serializeConfig(changed)), changed);
  });

  it('refuses to write an invalid config', () => {
    const config = parseConfig(EXAMPLE_TEXT);
    expectInvalid(() => serializeConfig({ ...config, host: { ...config.host, beta: 2 } }), 'host.beta', '2');
  });
});

describe('config: diffConfigs', () => {
  const base = parseConfig(EXAMPLE_TEXT);

  it('finds nothing between equal configs', () => {
    const diff = diffConfigs(base, parseConfig(serializeConfig(base)));
    assert.equal(diff.empty, true);
    assert.equal(diff.restartRequired, false);
  });

  it('lists live host settings and those that need a restart', () => {
    const after: XnetmonConfig = {
      ...base,
      host: {
        ...base.host,
        periodMs: 200,
        controlLaw: 'share',
        beta: 0.8,
        costs: { ...base.host.costs, vmVm: 90 },
        pinDir: '/sys/fs/bpf/other',
      },
    };
    const diff = diffConfigs(base, after);
    const live = Object.fromEntries(diff.hostChanged.map((c) => [c.setting, c.live]));
    assert.deepEqual(live, { pinDir: false, periodMs: true, controlLaw: true, beta: true, costs: true });
    assert.equal(diff.restartRequired, true);
    assert.equal(diff.empty, false);
    const listen = diffConfigs(base, {
      ...base,
      host: { ...base.host, listen: '0.0.0.0:7500', adminSocket: '/run/x.sock' },
    });
    assert.deepEqual(
      listen.hostChanged.map((c) => [c.setting, c.live]),
      [
        ['listen', false],
        ['adminSocket', false],
      ],
    );
  });

  it('applies a link capacity change live but a new link only after a restart', () => {
    const capacity = diffConfigs(base, {
      ...base,
      host: { ...base.host, links: [base.host.links[0]!, { name: 'ext1', capacityMbps: 10_000 }] },
    });
    assert.deepEqual(
      capacity.hostChanged.map((c) => [c.setting, c.live]),
      [['links', true]],
    );
    const added = diffConfigs(base, {
      ...base,
      host: { ...base.host, links: [...base.host.links, { name: 'ext2', capacityMbps: 10 }] },
    });
    assert.deepEqual(
      added.hostChanged.map((c) => [c.setting, c.live]),
      [['links', false]],
    );
    const reordered = diffConfigs(base, { ...base, host: { ...base.host, links: [...base.host.links].reverse() } });
    assert.equal(reordered.empty, true);
  });

  it('lists networks added, removed and changed with their fields', () => {
    const changed = applyNetworkChange(base, 'green', { weight: 900, cpu: 0.1, links: { ext0: 0 } });
    const withoutRed: XnetmonConfig = { ...changed, networks: changed.networks.filter((n) => n.name !== 'red') };
    const withPurple: XnetmonConfig = {
      ...withoutRed,
      networks: [...withoutRed.networks, { ...base.networks[2]!, id: 4, name: 'purple' }],
    };
    const diff = diffConfigs(base, withPurple);
    assert.deepEqual(
      diff.networksAdded.map((n) => n.name),
      ['purple'],
    );
    assert.deepEqual(
      diff.networksRemoved.map((n) => n.name),
      ['red'],
    );
    assert.deepEqual(
      diff.networksChanged.map((c) => [c.name, c.fields]),
      [['green', ['weight', 'reserve.cpu', 'reserve.links']]],
    );
    assert.equal(diff.networksChanged[0]!.before.weight, 500);
    assert.equal(diff.networksChanged[0]!.after.weight, 900);
    assert.equal(diff.restartRequired, false);
  });

  it('treats a network whose id changed as removed and added; ignores router order', () => {
    const renumbered: XnetmonConfig = {
      ...base,
      networks: base.networks.map((n) => (n.name === 'red' ? { ...n, id: 30 } : n)),
    };
    const diff = diffConfigs(base, renumbered);
    assert.deepEqual([diff.networksRemoved.map((n) => n.id), diff.networksAdded.map((n) => n.id)], [[3], [30]]);
    const twoRouters = {
      ...base.networks[0]!,
      routers: [
        ...base.networks[0]!.routers,
        { vif: 'vif1.1', clientPublicKey: Buffer.alloc(32, 9).toString('base64') },
      ],
    };
    const a: XnetmonConfig = { ...base, networks: [twoRouters, ...base.networks.slice(1)] };
    const b: XnetmonConfig = {
      ...base,
      networks: [{ ...twoRouters, routers: [...twoRouters.routers].reverse() }, ...base.networks.slice(1)],
    };
    assert.equal(diffConfigs(a, b).empty, true);
    assert.deepEqual(
      diffConfigs(base, a).networksChanged.map((c) => c.fields),
      [['routers']],
    );
  });
});
