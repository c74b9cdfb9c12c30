// The client's kernel watcher in a throwaway network namespace (root): it sees `ip route
// add/del`, a burst of changes, routes of a BIRD static protocol and an nftables forward rule
// appear and go. Everything it makes (namespace, bird, temp dir) is removed in after().
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { margin } from '../support/timing.js';
import { createCommandRunner, diffSnapshots, KernelWatcher, type KernelSnapshot } from '../../src/client/index.js';

const ns = `xmw${randomBytes(3).toString('hex')}`;
let dir = '';
let bird: ChildProcess | null = null;
let watcher: KernelWatcher | null = null;
let latest: KernelSnapshot | null = null;
let snapshots = 0;

function inNs(command: string, args: readonly string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', ns, command, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

async function waitFor(
  what: string,
  predicate: (snapshot: KernelSnapshot) => boolean,
  timeoutMs = 10_000,
): Promise<KernelSnapshot> {
  const deadline = Date.now() + margin(timeoutMs);
  for (;;) {
    if (latest && predicate(latest)) return latest;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function cleanup(): void {
  watcher?.stop();
  watcher = null;
  if (bird && bird.exitCode === null) bird.kill('SIGTERM');
  bird = null;
  execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  if (dir) rmSync(dir, { recursive: true, force: true });
}

before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    dir = mkdtempSync(join(tmpdir(), 'xmw-'));
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p'],
      ['link', 'set', 'eth0', 'address', '02:00:00:01:00:01'],
      ['link', 'set', 'eth0', 'up'],
      ['link', 'set', 'eth0p', 'up'],
      ['addr', 'add', '10.1.0.1/24', 'dev', 'eth0'],
      ['-6', 'addr', 'add', '2001:db8:1::1/64', 'dev', 'eth0', 'nodad'],
      ['neigh', 'add', '10.1.0.2', 'lladdr', '02:00:00:ee:00:01', 'dev', 'eth0'],
    ])
      inNs('ip', args);
  } catch (error) {
    cleanup();
    throw error;
  }
  watcher = new KernelWatcher({
    tables: ['main', 'local'],
    interfaces: null,
    filter: true,
    coalesceMs: 20,
    pollIntervalMs: 60_000,
    commands: createCommandRunner({ netns: ns }),
  });
  watcher.start((snapshot) => {
    latest = snapshot;
    snapshots++;
  });
});

after(cleanup);

test('the first snapshot: connected, local and neighbour entries', async () => {
  const snapshot = await waitFor('the first dump', () => true);
  assert.deepEqual(snapshot.routes.get('10.1.0.0/24'), {
    prefix: '10.1.0.0/24',
    family: 4,
    kind: 'unicast',
    gateway: null,
    interface: snapshot.routes.get('10.1.0.0/24')!.interface,
  });
  assert.equal(snapshot.routes.get('10.1.0.0/24')!.interface!.mac, '02:00:00:01:00:01');
  assert.equal(snapshot.routes.get('10.1.0.1/32')!.kind, 'local');
  assert.equal(snapshot.neighbours.get('eth0|10.1.0.2')!.mac, '02:00:00:ee:00:01');
  assert.deepEqual(snapshot.filter, []);
});

test('ip route add and del show up as an add and a delete', async () => {
  const before = await waitFor('a snapshot', () => true);
  inNs('ip', ['route', 'add', '10.9.0.0/16', 'via', '10.1.0.2']);
  const added = await waitFor('10.9.0.0/16', (s) => s.routes.has('10.9.0.0/16'));
  const changes = diffSnapshots(before, added);
  assert.deepEqual(
    changes.routeAdds.map((r) => `${r.prefix} ${r.kind} ${r.gateway} ${r.interface?.name}`),
    ['10.9.0.0/16 unicast 10.1.0.2 eth0'],
  );
  assert.deepEqual(changes.routeDeletes, []);
  inNs('ip', ['route', 'del', '10.9.0.0/16']);
  const removed = await waitFor('10.9.0.0/16 gone', (s) => !s.routes.has('10.9.0.0/16'));
  assert.deepEqual(diffSnapshots(added, removed).routeDeletes, ['10.9.0.0/16']);
});

test('a burst of 300 changes is seen whole, in a few coalesced dumps', async () => {
  await waitFor('a snapshot', () => true);
  const dumpsBefore = snapshots;
  const batch = Array.from(
    { length: 300 },
    (_, i) => `route add 10.200.${i >> 4}.${(i & 15) * 16}/28 via 10.1.0.2`,
  ).join('\n');
  inNs('ip', ['-batch', '-'], `${batch}\n`);
  inNs('ip', ['route', 'add', 'blackhole', '10.201.0.0/16']);
  const snapshot = await waitFor(
    'all 300 routes',
    (s) => [...s.routes.keys()].filter((p) => p.startsWith('10.200.')).length === 300 && s.routes.has('10.201.0.0/16'),
  );
  assert.equal(snapshot.routes.get('10.200.18.160/28')!.gateway, '10.1.0.2');
  await watcher!.settled();
  console.log(`# ${snapshots - dumpsBefore} coalesced dumps for 301 route changes`);
  assert.ok(snapshots - dumpsBefore < 60, `${snapshots - dumpsBefore} dumps for 301 changes`);
  inNs(
    'ip',
    ['-batch', '-'],
    `${Array.from({ length: 300 }, (_, i) => `route del 10.200.${i >> 4}.${(i & 15) * 16}/28`).join('\n')}\nroute del 10.201.0.0/16\n`,
  );
  await waitFor(
    'the burst withdrawn',
    (s) => ![...s.routes.keys()].some((p) => p.startsWith('10.200.') || p.startsWith('10.201.')),
  );
});

test('routes of a BIRD static protocol appear and are withdrawn with it', async () => {
  const conf = join(dir, 'bird.conf');
  const socket = join(dir, 'bird.ctl');
  writeFileSync(
    conf,
    [
      'router id 10.1.0.1;',
      'protocol device {}',
      'protocol kernel k4 { ipv4 { export all; }; }',
      'protocol kernel k6 { ipv6 { export all; }; }',
      'protocol static s4 { ipv4; route 10.50.0.0/16 via 10.1.0.2; route 10.51.0.0/16 blackhole; }',
      'protocol static s6 { ipv6; route 2001:db8:50::/48 via 2001:db8:1::2; }',
      '',
    ].join('\n'),
  );
  // Foreground (-f), so that the test owns the process and kills it by its pid.
  bird = spawn('ip', ['netns', 'exec', ns, 'bird', '-f', '-c', conf, '-s', socket, '-P', join(dir, 'bird.pid')], {
    stdio: 'ignore',
  });
  const snapshot = await waitFor(
    "BIRD's routes",
    (s) => s.routes.has('10.50.0.0/16') && s.routes.has('10.51.0.0/16') && s.routes.has('2001:db8:50::/48'),
  );
  assert.deepEqual(
    ['10.50.0.0/16', '10.51.0.0/16', '2001:db8:50::/48'].map((p) => {
      const r = snapshot.routes.get(p)!;
      return `${r.kind} ${r.gateway} ${r.interface?.name}`;
    }),
    ['unicast 10.1.0.2 eth0', 'blackhole null undefined', 'unicast 2001:db8:1::2 eth0'],
  );
  inNs('birdc', ['-s', socket, 'disable', 's4']);
  const withdrawn = await waitFor(
    "BIRD's IPv4 routes withdrawn",
    (s) => !s.routes.has('10.50.0.0/16') && !s.routes.has('10.51.0.0/16'),
  );
  assert.ok(withdrawn.routes.has('2001:db8:50::/48'));
  assert.deepEqual(diffSnapshots(snapshot, withdrawn).routeDeletes.sort(), ['10.50.0.0/16', '10.51.0.0/16']);
  bird.kill('SIGTERM');
});

test('an nftables forward rule is replicated; an unsupported one is not', async () => {
  inNs(
    'nft',
    ['-f', '-'],
    [
      'table inet filter {',
      '  chain forward {',
      '    type filter hook forward priority 0; policy accept;',
      '    ip saddr 10.1.0.0/24 ip daddr 10.9.0.0/16 meta l4proto tcp th sport 1024-65535 th dport 80 accept',
      '    ct state established accept',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const snapshot = await waitFor('the filter', (s) => (s.filter?.length ?? 0) > 0);
  assert.deepEqual(
    snapshot.filter!.map(({ handle: _handle, ...rule }) => rule),
    [
      {
        family: 4,
        proto: 6,
        src: '10.1.0.0/24',
        dst: '10.9.0.0/16',
        sport: [1024, 65535],
        dport: [80, 80],
        action: 'accept',
      },
    ],
  );
  inNs('nft', ['flush', 'ruleset']);
  await waitFor('the filter emptied', (s) => s.filter?.length === 0);
});
