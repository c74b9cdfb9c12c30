// The TypeScript mirror of bpf/xnetmon.h is checked against the compiled object's
// BTF: every struct's size, field names, offsets and sizes, and every enum value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { defaultObjectPath } from '../../src/dataplane/index.js';
import { LAYOUTS, ENUMS } from '../../src/loader/index.js';

interface BtfType {
  id: number;
  kind: string;
  name?: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  values?: { name: string; val: number }[];
}

const btf: BtfType[] = JSON.parse(execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', defaultObjectPath()], { encoding: 'utf8' })).types;
const byId = new Map(btf.map((t) => [t.id, t]));

function sizeOf(id: number): number {
  const t = byId.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  switch (t.kind) {
    case 'TYPEDEF': case 'CONST': case 'VOLATILE': return sizeOf(t.type_id!);
    case 'ARRAY': return sizeOf(t.type_id!) * t.nr_elems!;
    default: return t.size!;
  }
}

for (const layout of LAYOUTS) {
  test(`struct ${layout.name} matches BTF`, () => {
    const t = btf.find((x) => x.kind === 'STRUCT' && x.name === layout.name);
    assert.ok(t, `${layout.name} is in the object's BTF`);
    assert.equal(layout.size, t.size, 'size');
    assert.deepEqual(
      layout.fields.map((f) => ({ name: f.name, offset: f.offset, size: f.size })),
      t.members!.map((m) => ({ name: m.name, offset: m.bits_offset / 8, size: sizeOf(m.type_id) })),
    );
  });
}

for (const [name, values] of Object.entries(ENUMS)) {
  test(`enum ${name} matches BTF`, () => {
    const t = btf.find((x) => (x.kind === 'ENUM' || x.kind === 'ENUM64') && x.name === name);
    assert.ok(t, `${name} is in the object's BTF`);
    const inC = Object.fromEntries(t.values!.filter((v) => !v.name.endsWith('_MAX')).map((v) => [v.name, v.val]));
    assert.deepEqual(values, inC);
  });
}
