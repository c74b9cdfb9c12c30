// client.yaml: defaults, and errors that name the field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientConfig } from '../../src/client/index.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const minimal = `host: "192.0.2.1:7400"\nhost_public_key: "${KEY}"\nprivate_key_file: /etc/xnetmon/client.key\n`;

test('a minimal file gets the documented defaults', () => {
  const config = parseClientConfig(`${minimal}name: blue-r1\n`);
  assert.deepEqual(config, {
    host: { host: '192.0.2.1', port: 7400, family: 'ipv4' },
    hostPublicKey: KEY,
    privateKeyFile: '/etc/xnetmon/client.key',
    name: 'blue-r1',
    tables: ['main', 'local'],
    interfaces: null,
    coalesceMs: 50,
    pollIntervalMs: 30_000,
    reconnectMaxMs: 5000,
    filter: true,
  });
});

test('every setting', () => {
  const config = parseClientConfig(
    `${minimal}tables: [main, 100, bgp]\ninterfaces: [eth0, eth1]\ncoalesce_ms: 20\npoll_interval_s: 5\nreconnect_max_ms: 2000\nfilter: false\n`,
  );
  assert.deepEqual(
    [config.tables, config.interfaces, config.coalesceMs, config.pollIntervalMs, config.reconnectMaxMs, config.filter],
    [['main', '100', 'bgp'], ['eth0', 'eth1'], 20, 5000, 2000, false],
  );
  assert.deepEqual(parseClientConfig(minimal.replace('192.0.2.1:7400', '[2001:db8::1]:7400')).host, {
    host: '2001:db8::1',
    port: 7400,
    family: 'ipv6',
  });
});

test('errors name the field', () => {
  const cases: [string, string, RegExp][] = [
    [minimal.replace('host: "192.0.2.1:7400"\n', ''), 'host', /host/],
    [minimal.replace('192.0.2.1:7400', '192.0.2.1'), 'host', /host:port/],
    [minimal.replace(KEY, 'abc'), 'host_public_key', /32-byte public key/],
    [minimal.replace('/etc/xnetmon/client.key', 'client.key'), 'private_key_file', /absolute path/],
    [`${minimal}tables: []\n`, 'tables', /at least one table/],
    [`${minimal}tables: [main, "bad table"]\n`, 'tables[1]', /table name/],
    [`${minimal}interfaces: [eth0, "way-too-long-interface"]\n`, 'interfaces[1]', /interface name/],
    [`${minimal}coalesce_ms: 0\n`, 'coalesce_ms', /integer from 1 to 10000/],
    [`${minimal}filter: yes please\n`, 'filter', /true or false/],
    [`${minimal}colaesce_ms: 10\n`, 'colaesce_ms', /not a client setting/],
    ['host: [\n', 'client.yaml', /YAML syntax error/],
  ];
  for (const [text, path, message] of cases) {
    assert.throws(
      () => parseClientConfig(text),
      (error: unknown) => {
        assert.equal((error as { code?: string }).code, 'ERR_INVALID', String(error));
        assert.equal((error as { path?: string }).path, path, String(error));
        assert.match(String((error as Error).message), message);
        return true;
      },
      path,
    );
  }
});
