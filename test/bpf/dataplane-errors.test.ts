// Bad input to the data plane API: a typed error that names the problem, and the
// maps exactly as they were.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane, UnknownNetworkError, DuplicateAttachmentError } from '../../src/dataplane/index.js';
import { MapFullError, LoadError, BpfObject } from '../../src/loader/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Scratch, fastpathFixture, MAC, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xte');
  // A small table so that "full" is quick to reach.
  dp = DataPlane.open({ maxRoutes4: 64 });
  fx = fastpathFixture(dp, scratch);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

const snapshot = () => JSON.stringify(dp.listRoutes());

test('an invalid prefix is rejected by name and nothing is written', () => {
  const before = snapshot();
  for (const bad of [
    '10.0.0.0/33',
    '10.0.0.1/8',
    '300.1.1.0/24',
    'blue',
    '10.0.0.0/8/1',
    '2001:db8::/129',
    '10.0.0.0/-1',
  ]) {
    assert.throws(
      () =>
        dp.addRoutes(1, [
          { prefix: '10.200.0.0/16', target: { kind: 'via-vm' } },
          { prefix: bad, target: { kind: 'via-vm' } },
        ]),
      (err: unknown) =>
        err instanceof ValidationError && err.path === 'routes[1].prefix' && err.message.includes(bad.split('/')[0]),
      bad,
    );
  }
  assert.equal(snapshot(), before, 'the valid route of the batch was not applied either');
});

test('an unknown network is a typed error', () => {
  const before = snapshot();
  assert.throws(() => dp.addRoutes(77, [{ prefix: '10.0.0.0/8', target: { kind: 'via-vm' } }]), UnknownNetworkError);
  assert.throws(() => dp.deleteRoutes(77, ['10.0.0.0/8']), /unknown network 77/);
  assert.throws(
    () => dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac: '02:00:00:00:77:01', netId: 77, vifIfindex: 0 }),
    UnknownNetworkError,
  );
  assert.equal(snapshot(), before);
});

test('a next hop of another network cannot be used', () => {
  const green = dp.nexthop({ netId: 2, ifindex: fx.egress, linkSlot: 1, vlan: 0, smac: MAC.greenQ, dmac: MAC.ext2 });
  assert.throws(
    () => dp.addRoutes(1, [{ prefix: '10.201.0.0/16', target: { kind: 'nexthop', nexthopId: green } }]),
    /belongs to network 2/,
  );
  assert.throws(
    () => dp.addRoutes(1, [{ prefix: '10.201.0.0/16', target: { kind: 'nexthop', nexthopId: 9999 } }]),
    /does not exist/,
  );
});

test('a duplicate attachment (same interface, VLAN and MAC in another network) is refused', () => {
  assert.throws(
    () => dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac: MAC.blueP, netId: 2, vifIfindex: fx.vif2 }),
    (err: unknown) => err instanceof DuplicateAttachmentError && /belongs to network 1/.test(err.message),
  );
  assert.throws(
    () => dp.setVif(fx.vif1, { netId: 2, segIfindex: fx.phys, segVlan: 0, linkSlot: 0 }),
    DuplicateAttachmentError,
  );
  assert.throws(
    () => dp.setAttachment({ ifindex: fx.phys, vlan: 4095, mac: MAC.blueP, netId: 1, vifIfindex: 0 }),
    /VLAN 4095/,
  );
});

test('a full table: MapFullError, and the maps keep what they had', () => {
  const before = snapshot();
  const many = Array.from({ length: 80 }, (_, i) => ({
    prefix: `10.210.${i}.0/24`,
    target: { kind: 'via-vm' as const },
  }));
  assert.throws(
    () => dp.addRoutes(1, many),
    (err: unknown) => err instanceof MapFullError && /xnm_routes4 is full/.test(err.message),
  );
  assert.equal(snapshot(), before, 'the part the kernel had accepted was rolled back');
});

test('a bad network id and a bad link slot are validation errors', () => {
  assert.throws(() => dp.defineNetwork({ id: 0, name: 'zero' }), ValidationError);
  assert.throws(() => dp.defineNetwork({ id: 4096, name: 'big' }), ValidationError);
  assert.throws(() => dp.setPhysical(fx.phys, 16), /link slot 16/);
  assert.throws(() => dp.setFilter(1, [{ family: 4, src: '2001:db8::/32', action: 'drop' }]), /not IPv4/);
  assert.throws(() => dp.setFilter(1, [{ family: 4, dport: [90, 80], action: 'drop' }]), /port range 90-80/);
});

test('a program the verifier refuses raises LoadError with errno and the verifier log', () => {
  assert.throws(
    () => BpfObject.load('/nonexistent/x.bpf.o'),
    (err: unknown) => err instanceof LoadError && err.errno === 2,
  );
  const dir = mkdtempSync(join(tmpdir(), 'xnm-bad-'));
  try {
    // Reads the packet without a bounds check: the verifier must say no.
    writeFileSync(
      join(dir, 'bad.bpf.c'),
      '#include <linux/bpf.h>\n#define SEC(n) __attribute__((section(n), used))\nchar LICENSE[] SEC("license") = "GPL";\nSEC("xdp") int bad(struct xdp_md *ctx) { return *(int *)(long)ctx->data; }\n',
    );
    execFileSync('clang', [
      '-g',
      '-O2',
      '-target',
      'bpf',
      `-I/usr/include/${process.arch === 'x64' ? 'x86_64' : 'aarch64'}-linux-gnu`,
      '-c',
      join(dir, 'bad.bpf.c'),
      '-o',
      join(dir, 'bad.bpf.o'),
    ]);
    assert.throws(
      () => BpfObject.load(join(dir, 'bad.bpf.o')),
      (err: unknown) => err instanceof LoadError && err.errno === 13 && /invalid access to packet/.test(err.log),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
