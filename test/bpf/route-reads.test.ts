// Route tables read back whole (xnetmon routes, adoption at start-up): batch lookups where the
// kernel allows them give exactly what get_next_key and a lookup per route give; and a write too
// large for per-route rollback reads (a full table) is still all or nothing when the map fills;
// a write whose caller undoes it (the manager's) leaves what the kernel took.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane, type Route4Columns } from '../../src/dataplane/index.js';
import { MapFullError } from '../../src/loader/index.js';

const CAPACITY = 6000;
let dp: DataPlane;

before(() => {
  dp = DataPlane.open({ maxRoutes4: CAPACITY, maxRoutes6: 256 });
  dp.defineNetwork({ id: 1, name: 'blue' });
  dp.defineNetwork({ id: 2, name: 'red' });
});

after(() => dp?.close());

/** `count` /24 routes from 10.<base>.0.0 on, via the router (flag 1) or local (flag 2). */
function columns(base: number, count: number, flag: number): Route4Columns {
  const addrs = new Uint32Array(count);
  for (let i = 0; i < count; i++) addrs[i] = ((10 << 24) | ((base + (i >> 8)) << 16) | ((i & 255) << 8)) >>> 0;
  return {
    addrs,
    lengths: new Uint8Array(count).fill(24),
    nexthops: new Uint32Array(count),
    flags: new Uint32Array(count).fill(flag),
    count,
  };
}

const sorted = (netId?: number, lookup?: 'batch' | 'per-key') =>
  dp
    .listRoutes(netId, lookup ? { lookup } : {})
    .map((r) => JSON.stringify(r))
    .sort();

test('batch and per-key reads of the route maps agree, for one network and for all', () => {
  dp.addRoutes4(1, columns(0, 1500, 1));
  dp.addRoutes4(2, columns(100, 700, 2));
  dp.addRoutes(1, [
    { prefix: '2001:db8:1::/48', target: { kind: 'blackhole' } },
    { prefix: '0.0.0.0/0', target: { kind: 'via-vm' } },
  ]);
  dp.addRoutes(2, [{ prefix: '2001:db8:2::/64', target: { kind: 'local' } }]);
  const batch = sorted(1, 'batch');
  assert.equal(batch.length, 1502);
  assert.deepEqual(batch, sorted(1, 'per-key'));
  assert.deepEqual(sorted(undefined, 'batch'), sorted(undefined, 'per-key'));
  assert.equal(sorted(2).length, 701);
  assert.ok(batch.includes(JSON.stringify({ netId: 1, prefix: '2001:db8:1::/48', target: { kind: 'blackhole' } })));
  assert.ok(batch.includes(JSON.stringify({ netId: 1, prefix: '10.5.219.0/24', target: { kind: 'via-vm' } })));
  // Which way the kernel let the read go is known (6.18: batch; older kernels may refuse LPM tries).
  assert.ok(['batch', 'per-key'].includes(dp.routeLookupModes().routes4 ?? ''));
});

test('a large write (no per-route rollback reads) that fills the table changes nothing', () => {
  const before = sorted();
  // 6,000 routes: 1,500 replace network 1's (local instead of via-vm), 4,500 are new; the table
  // holds 2,201 IPv4 routes of 6,000, so it fills part of the way through.
  assert.throws(
    () => dp.addRoutes4(1, columns(0, 6000, 2)),
    (err: unknown) => err instanceof MapFullError,
  );
  assert.deepEqual(sorted(), before, 'the replaced routes are back as they were and the new ones gone');
});

test('a small write that fills the table changes nothing either', () => {
  const before = sorted();
  const fill = CAPACITY - 2201 - 10;
  dp.addRoutes4(2, columns(120, fill, 1));
  const full = sorted();
  assert.throws(
    () => dp.addRoutes4(1, columns(200, 50, 1)),
    (err: unknown) => err instanceof MapFullError,
  );
  assert.deepEqual(sorted(), full);
  const filled = Array.from({ length: fill }, (_, i) => `10.${120 + (i >> 8)}.${i & 255}.0/24`);
  assert.equal(dp.deleteRoutes(2, filled), fill);
  assert.deepEqual(sorted(), before);
});

test(
  "undo 'caller' (the manager's writes): nothing is read first, and a write the full table refuses " +
    'throws with part of it applied, for the caller to put back',
  () => {
    const before = sorted();
    assert.throws(
      () => dp.addRoutes4(1, columns(300, CAPACITY, 1), { undo: 'caller' }),
      (err: unknown) => err instanceof MapFullError,
    );
    const after = sorted();
    const added = after.filter((r) => !before.includes(r));
    assert.ok(added.length > 0 && added.length < CAPACITY, `part of the write applied (${added.length})`);
    const prefixes = added.map((r) => (JSON.parse(r) as { prefix: string }).prefix);
    assert.equal(dp.deleteRoutes(1, prefixes), added.length);
    assert.deepEqual(sorted(), before);
  },
);
