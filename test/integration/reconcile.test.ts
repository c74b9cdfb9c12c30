// Start-up reconciles the data plane with the configuration: a network removed from the file
// while the daemon was killed (-9) leaves nothing in any map and no program on its vif, the
// others keep every route and keep forwarding, and `status` reports the drift it repaired.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import { parseConfig, removeNetwork, serializeConfig } from '../../src/config/index.js';
import { readPinnedCounters } from '../../src/dataplane/index.js';
import { xnetmon, ping, startDaemon, stopProcess, inNs } from '../support/lab.js';

const prefix = uniquePrefix('xr');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;

/** The network ids found in a pinned map, by the field that names them. */
function idsIn(map: string, field: 'net_id', part: 'key' | 'value'): number[] {
  const entries = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${lab.pinDir}/${map}`], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ) as { formatted?: { key: Record<string, unknown>; value: Record<string, unknown> } }[];
  return entries.map((e) => Number(e.formatted?.[part]?.[field] ?? -1));
}

const routesOf = (net: string) =>
  (JSON.parse(xnetmon(['routes', net, '--json', '--socket', socket])) as { routes: unknown[] }).routes.length;

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]);
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

test('a network removed while the daemon was killed is gone from every map after the restart; the others keep forwarding', async () => {
  const red = lab.topology.networks[2];
  assert.ok(idsIn('xnm_classify', 'net_id', 'value').includes(3), 'red is classified before');
  assert.ok(idsIn('xnm_routes4', 'net_id', 'key').includes(3), 'red has routes before');
  const blueRoutes = routesOf('blue');
  const greenRoutes = routesOf('green');
  await stopProcess(daemon, 'SIGKILL');
  const config = parseConfig(readFileSync(lab.configPath, 'utf8'), lab.configPath);
  writeFileSync(lab.configPath, serializeConfig(removeNetwork(config, 'red')));
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);

  for (const [map, part] of [
    ['xnm_classify', 'value'],
    ['xnm_routes4', 'key'],
    ['xnm_routes6', 'key'],
    ['xnm_ifaces', 'value'],
    ['xnm_vif_macs', 'value'],
  ] as const) {
    if (map === 'xnm_vif_macs') continue; // its value is a bare u32: checked below
    assert.ok(!idsIn(map, 'net_id', part).includes(3), `nothing of red left in ${map}`);
  }
  const macs = JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${lab.pinDir}/xnm_vif_macs`], { encoding: 'utf8' }),
  ) as { formatted?: { value: number } }[];
  assert.ok(
    macs.every((m) => m.formatted?.value !== 3),
    "none of red's MACs left",
  );
  for (const iface of red.router.interfaces) {
    assert.doesNotMatch(
      inNs(lab.topology.host.ns, ['ip', 'link', 'show', iface.vif]),
      /xdp/,
      `no program left on ${iface.vif}`,
    );
  }
  const status = JSON.parse(xnetmon(['status', '--json', '--socket', socket])) as {
    drift: { networks: number[]; entries: number };
  };
  assert.deepEqual(status.drift.networks, [3], 'status reports the drift repaired');
  assert.ok(status.drift.entries > 0);
  assert.equal(routesOf('blue'), blueRoutes, 'blue keeps every route');
  assert.equal(routesOf('green'), greenRoutes, 'green keeps every route');
  const blue = lab.topology.networks[0];
  assert.equal(ping(blue.externals[0].ns, blue.externals[1].iface.address, 5, 0.05), 5, 'blue still forwards');
  // red's router still runs and the host bridge still reaches it: its traffic now takes the
  // slow path through the host, as on a host without XNetMon, and is nobody's in the data plane.
  const redBefore = readPinnedCounters(lab.pinDir, [3])[0].verdicts;
  ping(red.externals[0].ns, red.externals[1].iface.address, 3, 0.05);
  const redAfter = readPinnedCounters(lab.pinDir, [3])[0].verdicts;
  assert.equal(redAfter.forward, redBefore.forward, 'red is not in the fast path any more');
  assert.equal(redAfter.to_vm_control, redBefore.to_vm_control, 'nor classified as red');
});
