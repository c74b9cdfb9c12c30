// Lab integration: real programs attached in real namespaces, real traffic.
// Ping and TCP between external machines are forwarded by XDP without entering
// the virtual router; removing the route moves traffic to the via-VM path; a
// loader restart leaves forwarding running; pinned maps dump with field names.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { DataPlane, readPinnedCounters } from '../../src/dataplane/index.js';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import {
  xnetmon,
  ping,
  pingViaRouter,
  routerIpv4In,
  routerIpv4Forwarded,
  tcpTransfer,
  spawnInNs,
} from '../support/lab.js';

const prefix = uniquePrefix('xi');
let lab: LabState;

before(() => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  xnetmon(['lab', 'load', '--prefix', prefix]);
});

after(() => {
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

const blue = () => lab.topology.networks[0];
const counters = (net: number) => readPinnedCounters(lab.pinDir, [net])[0];

test('ping between external machines goes through the fast path, not the virtual router', () => {
  const [ext0, ext1] = blue().externals;
  assert.equal(ping(ext0.ns, ext1.iface.address, 3), 3, 'warm-up (ARP for the gateways)');
  const ipBefore = routerIpv4Forwarded(blue());
  const fwdBefore = counters(1).verdicts.forward;
  assert.equal(ping(ext0.ns, ext1.iface.address, 20, 0.02), 20);
  const forwarded = counters(1).verdicts.forward - fwdBefore;
  assert.ok(forwarded >= 40n, `XDP forwarded ${forwarded} packets (20 requests + 20 replies)`);
  assert.equal(routerIpv4Forwarded(blue()) - ipBefore, 0, 'the virtual router forwarded none of the 40 packets');
});

test('TCP between external machines goes through the fast path', async () => {
  const [ext0, ext1] = blue().externals;
  const ipBefore = routerIpv4Forwarded(blue());
  const bytesBefore = counters(1).pathBytes.ext_ext;
  const bps = await tcpTransfer(ext1.ns, ext0.ns, ext1.iface.address, 1);
  assert.ok(bps > 10e6, `TCP got ${Math.round(bps / 1e6)} Mbit/s`);
  assert.ok(counters(1).pathBytes.ext_ext - bytesBefore > 1_000_000n, 'bytes accounted on the ext->ext path');
  assert.equal(routerIpv4Forwarded(blue()) - ipBefore, 0, 'the virtual router forwarded none of the segments');
});

test('networks are isolated: green traffic is counted for green only', () => {
  const green = lab.topology.networks[1];
  const blueBefore = counters(1).verdicts.forward;
  const greenBefore = counters(2).verdicts.forward;
  assert.equal(ping(green.externals[0].ns, green.externals[1].iface.address, 5, 0.02), 5);
  assert.equal(counters(1).verdicts.forward, blueBefore);
  assert.ok(counters(2).verdicts.forward - greenBefore >= 10n);
});

test('removing the route moves the traffic to the via-VM path (the virtual router forwards it)', () => {
  const [ext0, ext1] = blue().externals;
  const dp = DataPlane.open({ pinDir: lab.pinDir });
  try {
    dp.defineNetwork({ id: 1, name: 'blue' });
    assert.equal(dp.deleteRoutes(1, [`${ext1.iface.address}/32`]), 1);
    const ipBefore = routerIpv4In(blue());
    const viaVmBefore = counters(1).verdicts.to_vm_route;
    assert.equal(
      pingViaRouter(lab.pinDir, 1, ext0.ns, ext1.iface.address, 10, 0.02),
      10,
      'still reachable through the virtual router',
    );
    assert.ok(
      counters(1).verdicts.to_vm_route - viaVmBefore >= 10n,
      'requests handed to the router by the via-VM route',
    );
    assert.ok(routerIpv4In(blue()) - ipBefore >= 10, 'the virtual router now receives the traffic');
  } finally {
    dp.close();
    xnetmon(['lab', 'load', '--prefix', prefix]); // put the route back
  }
});

test('restarting the loader leaves forwarding running (pinned maps and links)', async () => {
  const [ext0, ext1] = blue().externals;
  ping(ext0.ns, ext1.iface.address, 2);
  const pinger = spawnInNs(ext0.ns, ['ping', '-n', '-q', '-c', '150', '-i', '0.01', '-W', '1', ext1.iface.address]);
  let out = '';
  pinger.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((resolve) => pinger.on('exit', () => resolve()));
  await new Promise((r) => setTimeout(r, 300));
  const reload = JSON.parse(xnetmon(['lab', 'load', '--prefix', prefix, '--json'])) as {
    adopted: boolean;
    attachments: { replaced: boolean }[];
  };
  assert.ok(reload.adopted, 'maps re-adopted');
  assert.ok(
    reload.attachments.every((a) => a.replaced),
    'programs replaced in place through the pinned links',
  );
  await done;
  const received = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  assert.ok(received >= 148, `${received}/150 pings answered across the restart`);
});

test('bpftool dumps the pinned maps with named fields (BTF)', () => {
  const entry = JSON.parse(
    execFileSync(
      'bpftool',
      ['-j', 'map', 'lookup', 'pinned', `${lab.pinDir}/xnm_nexthops`, 'key', '1', '0', '0', '0'],
      { encoding: 'utf8' },
    ),
  ) as { formatted?: { value: Record<string, unknown> } };
  assert.equal(entry.formatted?.value.flags, 1, 'next hop 1 is valid');
  assert.deepEqual(Object.keys(entry.formatted!.value), [
    'ifindex',
    'net_id',
    'link_slot',
    'vlan',
    'flags',
    'smac',
    'dmac',
    'mtu',
    'pad',
  ]);
  const routes = execFileSync('bpftool', ['map', 'dump', 'pinned', `${lab.pinDir}/xnm_routes4`], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.match(routes, /"prefixlen": 64/);
  assert.match(routes, /"nexthop_id"/);
  const stats = execFileSync(
    'bpftool',
    ['map', 'lookup', 'pinned', `${lab.pinDir}/xnm_stats`, 'key', '1', '0', '0', '0'],
    { encoding: 'utf8' },
  );
  assert.match(stats, /"cpu_offered"/);
  assert.match(stats, /"verdict"/);
});
