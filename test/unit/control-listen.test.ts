// host.listen "auto:PORT" (the default): the secure channel listens on the host's
// addresses on its routers' segments only; an explicit address is kept as is.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { resolveChannelListen, type InterfaceProbe } from '../../src/control/listen.js';
import { createSecureServer, generateKeyPair } from '../../src/crypto/index.js';

function repoRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'docs', 'examples', 'xnetmon.yaml'))) return dir;
  }
  throw new Error('repository root not found');
}
const EXAMPLE = readFileSync(join(repoRoot(), 'docs', 'examples', 'xnetmon.yaml'), 'utf8');
const withListen = (line: string | null) =>
  parseConfig(EXAMPLE.replace(/^ {2}listen: .*\n/m, line === null ? '' : `  listen: ${line}\n`), 'test');

/** Xen bridged mode: vif1.0 and vif2.0 on xenbr0 (with ext0), vif3.0 on xenbr1 (with ext1); eth9 is management. */
const xen: InterfaceProbe = {
  bridgeOf: (ifname) =>
    (
      ({ 'vif1.0': 'xenbr0', 'vif2.0': 'xenbr0', ext0: 'xenbr0', 'vif3.0': 'xenbr1', ext1: 'xenbr1' }) as Record<
        string,
        string
      >
    )[ifname],
  addressesOf: (ifname) =>
    (
      ({
        xenbr0: [
          { address: '192.0.2.1', family: 'IPv4' as const },
          { address: 'fe80::1', family: 'IPv6' as const },
          { address: '2001:db8::1', family: 'IPv6' as const },
        ],
        xenbr1: [{ address: '198.51.100.1', family: 'IPv4' as const }],
        eth9: [{ address: '203.0.113.7', family: 'IPv4' as const }],
      }) as Record<string, { address: string; family: 'IPv4' | 'IPv6' }[]>
    )[ifname] ?? [],
};

describe('host.listen', () => {
  it('defaults to auto:7400, not every address', () => {
    assert.equal(withListen(null).host.listen, 'auto:7400');
  });

  it("auto: the addresses of the bridges the routers' vifs are on (no link-local, no management address)", () => {
    assert.deepEqual(resolveChannelListen(withListen(null), xen), {
      hosts: ['192.0.2.1', '2001:db8::1', '198.51.100.1'],
      port: 7400,
    });
  });

  it("auto with vifs that are not bridged (veth, tap): the vifs' own addresses", () => {
    const probe: InterfaceProbe = {
      bridgeOf: () => undefined,
      addressesOf: (ifname) => (ifname === 'vif3.0' ? [{ address: '10.3.0.1', family: 'IPv4' }] : []),
    };
    assert.deepEqual(resolveChannelListen(withListen('"auto:7401"'), probe).hosts, ['10.3.0.1']);
  });

  it('auto with no address found: a clear error, not a silent 0.0.0.0', () => {
    const bare: InterfaceProbe = { bridgeOf: () => undefined, addressesOf: () => [] };
    assert.throws(() => resolveChannelListen(withListen(null), bare), {
      code: 'ERR_LISTEN_AUTO',
      message: /vif1\.0, vif2\.0, vif3\.0.*explicit "address:port"/,
    });
  });

  it('an explicit address is used as is', () => {
    assert.deepEqual(resolveChannelListen(withListen('"0.0.0.0:7400"'), xen), { hosts: ['0.0.0.0'], port: 7400 });
    assert.deepEqual(resolveChannelListen(withListen('"[::1]:7500"'), xen), { hosts: ['::1'], port: 7500 });
  });

  it('the secure server listens on several addresses with one port', async () => {
    const server = await createSecureServer({
      privateKey: generateKeyPair().privateKey,
      peers: [],
      host: ['127.0.0.1', '127.0.0.2'],
    });
    try {
      const addresses = server.addresses();
      assert.deepEqual(
        addresses.map((a) => a.address),
        ['127.0.0.1', '127.0.0.2'],
      );
      assert.equal(addresses[0]!.port, addresses[1]!.port);
    } finally {
      await server.close();
    }
  });
});
