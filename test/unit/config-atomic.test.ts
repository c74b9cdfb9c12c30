// Everything start-up would refuse is refused by validation, before a live change or a reload
// touches anything, with the field named: a small-order client key (the channel refuses it),
// more links than the data plane has slots, two listeners that may share a port, a vif that
// does not exist, and unknown fields in `net add`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../src/errors/index.js';
import { addNetwork, parseConfig, MAX_HOST_LINKS } from '../../src/config/index.js';
import { MAX_LINKS } from '../../src/loader/index.js';

const key = (seed: number): string => {
  const bytes = Buffer.alloc(32, 0x5a);
  bytes.writeUInt32BE(seed);
  return bytes.toString('base64');
};
/** A small-order X25519 point (RFC 7748: the all-zero u-coordinate). */
const LOW_ORDER_KEY = Buffer.alloc(32).toString('base64');

const BASE = parseConfig(
  `
host:
  links:
    - { name: l0, capacity_mbps: 1000 }
networks:
  - id: 1
    name: blue
    routers: [{ vif: vb, client_public_key: "${key(1)}" }]
`,
  'test.yaml',
);

function refuses(action: () => unknown, path: string, message: RegExp): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof ValidationError, String(err));
    assert.equal(err.path, path);
    assert.match(err.message, message);
    return true;
  });
}

describe('validation refuses what start-up would', () => {
  it('a small-order client key, in the file and in net add', () => {
    refuses(
      () =>
        parseConfig(
          `
host: { links: [{ name: l0, capacity_mbps: 1 }] }
networks: [{ id: 1, name: blue, routers: [{ vif: vb, client_public_key: "${LOW_ORDER_KEY}" }] }]
`,
          'x.yaml',
        ),
      'networks[0].routers[0].client_public_key',
      /small-order/,
    );
    refuses(
      () => addNetwork(BASE, { id: 2, name: 'gold', routers: [{ vif: 'vg', clientPublicKey: LOW_ORDER_KEY }] }),
      'networks.gold.routers[0].client_public_key',
      /small-order/,
    );
  });

  it('more links than the data plane has slots for', () => {
    assert.equal(MAX_HOST_LINKS, MAX_LINKS, 'config and bpf/xnetmon.h agree');
    const links = Array.from({ length: MAX_LINKS + 1 }, (_, i) => `    - { name: l${i}, capacity_mbps: 1 }`).join('\n');
    refuses(() => parseConfig(`host:\n  links:\n${links}\n`, 'x.yaml'), `host.links[${MAX_LINKS}]`, /at most 16/);
    const sixteen = Array.from({ length: MAX_LINKS }, (_, i) => `    - { name: l${i}, capacity_mbps: 1 }`).join('\n');
    assert.equal(parseConfig(`host:\n  links:\n${sixteen}\n`, 'x.yaml').host.links.length, MAX_LINKS);
  });

  it('two listeners that may be one socket: a host name overlaps any address on its port', () => {
    refuses(
      () =>
        parseConfig(
          `
host: { links: [{ name: l0, capacity_mbps: 1 }], listen: "localhost:7400", metrics_listen: "127.0.0.1:7400" }
`,
          'x.yaml',
        ),
      'host.metrics_listen',
      /different ports/,
    );
    assert.ok(
      parseConfig(
        `
host: { links: [{ name: l0, capacity_mbps: 1 }], listen: "localhost:7400", metrics_listen: "127.0.0.1:7401" }
`,
        'x.yaml',
      ),
    );
  });

  it('an attachment vif that does not exist on this machine, when interfaces are checked', () => {
    refuses(
      () =>
        addNetwork(
          BASE,
          {
            id: 2,
            name: 'gold',
            routers: [{ vif: 'vg', clientPublicKey: key(2) }],
            attachments: [{ interface: 'l0', vlan: 0, mac: '02:00:00:00:02:01', vif: 'vg2' }],
          },
          { interfaceExists: (name) => name !== 'vg2' },
        ),
      'networks.gold.attachments[0].vif',
      /does not exist/,
    );
  });

  it('unknown fields in net add, at any depth, with the allowed ones', () => {
    const gold = { id: 2, name: 'gold', routers: [{ vif: 'vg', clientPublicKey: key(2) }] };
    refuses(
      () => addNetwork(BASE, { ...gold, bogus: 1 } as never),
      'networks.gold.bogus',
      /unknown key "bogus".*allowed keys/,
    );
    refuses(
      () =>
        addNetwork(BASE, {
          ...gold,
          routers: [{ vif: 'vg', clientPublicKey: key(2), client_public_key: key(3) }],
        } as never),
      'networks.gold.routers[0].client_public_key',
      /unknown key/,
    );
    refuses(
      () => addNetwork(BASE, { ...gold, reserve: { cpu: 0.1, disk: 1 } } as never),
      'networks.gold.reserve.disk',
      /unknown key/,
    );
    assert.equal(addNetwork(BASE, gold).networks.length, 2, 'the same network without them is accepted');
  });
});
