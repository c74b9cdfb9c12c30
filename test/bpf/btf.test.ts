// The TypeScript mirror of bpf/xnetmon.h is checked against the compiled object's
// BTF: every struct's size, field names, offsets and sizes, and every enum value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { defaultObjectPath } from '../../src/dataplane/index.js';
import { LAYOUTS, ENUMS, PROG_INFO_RUN_CNT, PROG_INFO_RUN_TIME_NS, PROG_INFO_SIZE } from '../../src/loader/index.js';

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

const btf: BtfType[] = JSON.parse(
  execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', defaultObjectPath()], { encoding: 'utf8' }),
).types;
const byId = new Map(btf.map((t) => [t.id, t]));

function sizeOf(id: number): number {
  const t = byId.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  switch (t.kind) {
    case 'TYPEDEF':
    case 'CONST':
    case 'VOLATILE':
      return sizeOf(t.type_id!);
    case 'ARRAY':
      return sizeOf(t.type_id!) * t.nr_elems!;
    default:
      return t.size!;
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

test("struct bpf_prog_info: the run-time statistics offsets match the running kernel's BTF", () => {
  const raw = execFileSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'raw'], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  });
  const at = raw.indexOf("STRUCT 'bpf_prog_info' ");
  assert.ok(at >= 0, 'bpf_prog_info in vmlinux BTF');
  const block = raw.slice(at, raw.indexOf('\n[', at));
  const offset = (field: string): number =>
    Number(new RegExp(`'${field}' type_id=\\d+ bits_offset=(\\d+)`).exec(block)?.[1]) / 8;
  assert.equal(offset('run_time_ns'), PROG_INFO_RUN_TIME_NS);
  assert.equal(offset('run_cnt'), PROG_INFO_RUN_CNT);
  assert.ok(
    Number(/size=(\d+)/.exec(block)?.[1]) >= PROG_INFO_SIZE,
    "our buffer is not larger than the kernel's struct",
  );
});
