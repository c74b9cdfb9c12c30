// The IPv4 fast path's exact-match route index (bpf/xnetmon.h, src/dataplane/route-index.ts):
// the longest prefix wins through it as through the trie, after a delete the next shorter one
// does, a network with more prefix lengths than the fast path probes is answered by the trie,
// and a flushed network leaves nothing behind. Flow cache off: every packet is looked up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DataPlane } from '../../src/dataplane/index.js';
import { ROUTE4_MAX_PROBES, route4LengthsLayout, type ReasonName } from '../../src/loader/index.js';
import type { parseFrame } from '../../src/packet/index.js';
import { Scratch } from '../support/host.js';
import { runCase } from '../support/xdp-cases.js';
import { fastpathFixture, MAC, TABLE1_COSTS, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xri');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
  dp.configure({
    accounting: true,
    punish: true,
    filter: true,
    flowCache: false,
    pathCost: TABLE1_COSTS,
    costPerKib: 1,
  });
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

const lengthsOf = (netId: number) => {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(netId);
  const value = dp.object.map('xnm_route4_lengths').lookup(key);
  assert.ok(value, 'lengths entry');
  return route4LengthsLayout.decode(value);
};

/** Sends a packet to `dst` from blue's segment; `dmac`: the next hop's MAC it must leave with. */
const send = (dst: string, reason: ReasonName, dmac?: string) =>
  runCase(dp, fx, {
    name: `to ${dst}`,
    frame: { dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst, udp: { sport: 1, dport: 2 }, payload: 18 } },
    verdict: reason === 'forward' ? 'REDIRECT' : 'DROP',
    net: 1,
    reason,
    check: dmac ? (out: ReturnType<typeof parseFrame>) => assert.equal(out.dst, dmac, `${dst}: next hop`) : undefined,
  });

test("the fixture's lengths are probed longest first, and the longest match wins", () => {
  const l = lengthsOf(1);
  assert.equal(l.indexed, 1);
  assert.equal(l.more, 0);
  assert.deepEqual((l.len as number[]).slice(0, l.count as number), [32, 24, 16]);
  send('10.9.7.1', 'forward', MAC.ext1b); // /24 over /16
  send('10.9.8.1', 'forward', MAC.ext1); // /16 alone
  send('10.66.0.1', 'drop_blackhole');
  send('10.77.0.1', 'drop_no_route');
});

test('after a delete the next shorter prefix answers; after a re-add the longer one again', () => {
  assert.equal(dp.deleteRoutes(1, ['10.9.7.0/24']), 1);
  send('10.9.7.1', 'forward', MAC.ext1);
  dp.addRoutes(1, [{ prefix: '10.9.7.0/24', target: { kind: 'nexthop', nexthopId: fx.nexthopLoop } }]);
  send('10.9.7.1', 'forward', MAC.blueP);
});

test(`more than ${ROUTE4_MAX_PROBES} lengths: the trie answers what the probes miss`, () => {
  // /17 .. /31 in 10.9.128.0/17, one each, all to ext1b: 15 more lengths
  const routes = Array.from({ length: 15 }, (_, i) => ({
    prefix: `10.9.128.0/${17 + i}`,
    target: { kind: 'nexthop' as const, nexthopId: fx.nexthopBlue },
  }));
  routes[0] = { prefix: '10.9.128.0/17', target: { kind: 'blackhole' as const } } as never;
  dp.addRoutes(1, routes);
  const l = lengthsOf(1);
  assert.equal(l.more, 1, 'lengths beyond the probes');
  assert.equal(l.count, ROUTE4_MAX_PROBES);
  send('10.9.128.1', 'forward', MAC.ext1); // the /31, probed first
  send('10.9.200.1', 'drop_blackhole'); // only the /17 (past the probes) and the /16 cover it: the trie
  send('10.9.7.1', 'forward', MAC.blueP); // the /24, probed
  send('10.9.1.1', 'forward', MAC.ext1); // the /16, past the probes: the trie
});

test('routes deleted in one batch: absent ones are skipped and not counted, the index loses the others', () => {
  const exact = dp.object.map('xnm_routes4_exact');
  const indexed = () => exact.lookupAll().count;
  dp.addRoutes(1, [
    { prefix: '10.44.1.0/24', target: { kind: 'blackhole' } },
    { prefix: '10.44.2.0/24', target: { kind: 'blackhole' } },
    { prefix: '10.44.3.0/24', target: { kind: 'blackhole' } },
  ]);
  const before = indexed();
  send('10.44.2.1', 'drop_blackhole');
  // Absent prefixes first, between and last: the kernel's batch stops at each, the delete goes on.
  const removed = dp.deleteRoutes(1, [
    '10.45.0.0/24',
    '10.44.1.0/24',
    '10.45.1.0/24',
    '10.44.2.0/24',
    '10.44.3.0/24',
    '10.45.2.0/24',
  ]);
  assert.equal(removed, 3);
  assert.equal(indexed(), before - 3, 'their index entries are gone');
  send('10.44.2.1', 'drop_no_route');
  assert.equal(dp.deleteRoutes(1, ['10.44.1.0/24']), 0, 'deleted twice: nothing the second time');
});

test('a flushed network leaves no index entry and goes back to the trie', () => {
  dp.flushRoutes(1);
  assert.equal(lengthsOf(1).indexed, 0);
  const { keys, count } = dp.object.map('xnm_routes4_exact').lookupAll();
  for (let i = 0; i < count; i++) assert.notEqual(keys.readUInt32LE(i * 12), 1, 'no entry of network 1');
  send('10.9.7.1', 'drop_no_route');
  send('10.9.1.1', 'drop_no_route');
});

test('maps pinned by a data plane without the index are indexed at open', () => {
  const pinDir = `/sys/fs/bpf/xri-${process.pid}`;
  mkdirSync(pinDir, { recursive: true });
  const old = DataPlane.open({ pinDir });
  try {
    old.defineNetwork({ id: 3, name: 'adopted' });
    old.addRoutes(3, [
      { prefix: '10.33.0.0/16', target: { kind: 'blackhole' } },
      { prefix: '10.33.1.0/24', target: { kind: 'via-vm' } },
    ]);
  } finally {
    old.close();
  }
  // What an older version left behind: the trie pinned, no index beside it.
  rmSync(join(pinDir, 'xnm_routes4_exact'));
  rmSync(join(pinDir, 'xnm_route4_lengths'));
  const adopted = DataPlane.open({ pinDir });
  try {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(3);
    const value = adopted.object.map('xnm_route4_lengths').lookup(key);
    assert.ok(value);
    const lengths = route4LengthsLayout.decode(value);
    assert.equal(lengths.indexed, 1);
    assert.deepEqual((lengths.len as number[]).slice(0, lengths.count as number), [24, 16]);
    const { count } = adopted.object.map('xnm_routes4_exact').lookupAll();
    assert.equal(count, 2, 'both routes indexed');
  } finally {
    adopted.close();
    rmSync(pinDir, { recursive: true, force: true });
  }
});
