// Upgrades: the pinned maps carry the layout they were written with (xnm_schema). Pins of
// another layout are refused before anything is loaded, with one line naming `xnetmon down`;
// a map whose size changed is refused the same way; pins from before the layout was recorded
// are adopted when their sizes match, and recorded.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { checkPinnedSchema, layoutHash, openPinnedDataPlane, PinnedSchemaError } from '../../src/dataplane/index.js';
import { BpfMap } from '../../src/loader/index.js';

const pinDir = `/sys/fs/bpf/xnm-schema-test-${process.pid}-${randomBytes(3).toString('hex')}`;
const down = 'xnetmon down -c /etc/xnetmon/test.yaml';

after(() => rmSync(pinDir, { recursive: true, force: true }));

function recorded(): Buffer | undefined {
  const map = BpfMap.fromPin(join(pinDir, 'xnm_schema'));
  try {
    return map.lookup(Buffer.alloc(4));
  } finally {
    map.close();
  }
}

function refusedWithOneLine(action: () => unknown, why: RegExp): void {
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof PinnedSchemaError, String(err));
    assert.equal(err.message.split('\n').length, 1, 'one line');
    assert.match(err.message, new RegExp(`run "${down}"`));
    assert.match(err.message, why);
    return true;
  });
}

test('the layout hash is stable and 32 bytes', () => {
  assert.equal(layoutHash().length, 32);
  assert.ok(layoutHash().equals(layoutHash()));
});

test('a first start records the layout; a restart of the same version re-uses the pins', () => {
  assert.equal(checkPinnedSchema(pinDir, down), 'fresh');
  const first = openPinnedDataPlane({ pinDir }, down);
  assert.equal(first.schema, 'fresh');
  first.dp.close();
  assert.ok(recorded()?.equals(layoutHash()));
  const again = openPinnedDataPlane({ pinDir }, down);
  assert.equal(again.schema, 'same');
  assert.ok(again.dp.adopted);
  again.dp.close();
});

test('pins written with another layout (same sizes) are refused before anything is loaded', () => {
  const map = BpfMap.fromPin(join(pinDir, 'xnm_schema'));
  map.update(Buffer.alloc(4), Buffer.alloc(32, 0xab)); // what another version's hash looks like here
  map.close();
  refusedWithOneLine(() => openPinnedDataPlane({ pinDir }, down), /has layout abababababab, this xnetmon uses/);
  assert.ok(recorded()?.equals(Buffer.alloc(32, 0xab)), 'the pins are left as they were');
});

test('pins from before the layout was recorded are adopted when their sizes match, then recorded', () => {
  rmSync(join(pinDir, 'xnm_schema'));
  assert.equal(checkPinnedSchema(pinDir, down), 'unrecorded');
  const { dp, schema } = openPinnedDataPlane({ pinDir }, down);
  assert.equal(schema, 'unrecorded');
  assert.ok(dp.adopted);
  dp.close();
  assert.ok(recorded()?.equals(layoutHash()));
});

test('an unrecorded map whose size changed is refused with the same one line', () => {
  rmSync(pinDir, { recursive: true, force: true });
  // An earlier version with a smaller IPv4 route table.
  const old = openPinnedDataPlane({ pinDir, maxRoutes4: 1024 }, down);
  old.dp.close();
  rmSync(join(pinDir, 'xnm_schema'));
  refusedWithOneLine(() => openPinnedDataPlane({ pinDir }, down), /sizes differ/);
  assert.ok(existsSync(join(pinDir, 'xnm_routes4')), 'the pins are left as they were');
});
