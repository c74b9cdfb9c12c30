// Pin names of links: injective for any interface name (vif1.0 and vif1_0 no longer share a pin),
// never a dot (bpffs refuses it), and read back to the interface name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { escapePinName, unescapePinName, linkPinName, parseLinkPinName } from '../../src/dataplane/index.js';

describe('link pin names', () => {
  it('vif1.0 and vif1_0 have different pins', () => {
    assert.notEqual(linkPinName('xdp', 'vif1.0'), linkPinName('xdp', 'vif1_0'));
    assert.equal(linkPinName('xdp', 'vif1.0'), 'xdp-vif1_2e0');
    assert.equal(linkPinName('xdp', 'vif1_0'), 'xdp-vif1__0');
    assert.equal(linkPinName('tc', 'eth0'), 'tc-eth0', 'plain names keep their old pin');
  });

  it('is injective, dot-free and reversible for any interface name', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 15, unit: 'binary' }),
        fc.string({ minLength: 1, maxLength: 15, unit: 'binary' }),
        (a, b) => {
          const ea = escapePinName(a);
          assert.ok(!ea.includes('.') && !ea.includes('/') && !ea.includes('\0'));
          assert.equal(unescapePinName(ea), a);
          if (a !== b) assert.notEqual(ea, escapePinName(b));
        },
      ),
      { numRuns: 2000 },
    );
    for (const name of ['a.b', 'a_b', 'a_2eb', 'a__b', 'a-b', 'x:y', 'vif1.0.1'])
      assert.equal(unescapePinName(escapePinName(name)), name);
  });

  it('parses a pin name back to its program and interface; refuses names no escape produces', () => {
    assert.deepEqual(parseLinkPinName('xdp-vif1_2e0'), { kind: 'xdp', ifname: 'vif1.0' });
    assert.deepEqual(parseLinkPinName('tc-eth_5f'), undefined, 'an escaped "_" is spelled "__" only');
    assert.equal(
      parseLinkPinName('xdp-vif1_0'),
      undefined,
      'an old-style pin (dot as underscore) is not a current name: it is migrated',
    );
    assert.equal(parseLinkPinName('other-eth0'), undefined);
  });
});
