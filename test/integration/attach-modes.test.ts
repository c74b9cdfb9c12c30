// Attach modes in a lab (issue: the kernels operators run). The daemon attaches the link
// accounting program as a cls_bpf filter on clsact, as it must on kernels before 6.6 (no
// tcx links), and the link counters still move; `status` says which mode runs where; a
// SIGKILL restart in auto mode moves to tcx where the kernel has it, with forwarding never
// stopping and one program on the link, never two or none; `down` leaves no filter behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { release } from 'node:os';
import { kernelHasTcx } from '../../src/loader/index.js';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import { readPinnedCounters } from '../../src/dataplane/index.js';
import { xnetmon, pingViaRouter, startDaemon, stopProcess, spawnInNs, inNs, sleep } from '../support/lab.js';

const prefix = uniquePrefix('xa');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;
let baseConfig: string;

interface AttachmentView {
  ifname: string;
  xdp: string;
  tc: string;
}

const status = () => JSON.parse(xnetmon(['status', '--json', '--socket', socket])) as { attachments: AttachmentView[] };
/** Our cls_bpf filters on a link's egress hook, as tc lists them. */
const egressFilters = (link: string): string =>
  inNs(lab.topology.host.ns, ['tc', 'filter', 'show', 'dev', link, 'egress']);

function writeConfig(tcMode: string): void {
  writeFileSync(lab.configPath, baseConfig.replace(/^host:\n/m, `host:\n  tc_mode: ${tcMode}\n`));
}

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  baseConfig = readFileSync(lab.configPath, 'utf8');
  writeConfig('cls_bpf');
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]);
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

test('cls_bpf mode: status names it, tc lists the filter, bridged bytes are charged per link', () => {
  const s = status();
  for (const link of lab.topology.host.links) {
    const a = s.attachments.find((x) => x.ifname === link.name);
    assert.ok(a, `${link.name} in status`);
    assert.equal(a.tc, 'cls_bpf');
    assert.equal(a.xdp, 'native');
    assert.match(egressFilters(link.name), /bpf .*xnm_link_out.*direct-action/);
  }
  const vif = s.attachments.find((x) => x.ifname === lab.topology.networks[0].router.interfaces[0].vif);
  assert.equal(vif?.xdp, 'native');
  // The router's own traffic to its external machine is bridged: XDP never sees it on the link,
  // the TC program charges it to the router's network.
  const blue = lab.topology.networks[0];
  const before = readPinnedCounters(lab.pinDir, [1])[0].linkCarried[0];
  assert.equal(pingViaRouter(lab.pinDir, blue.id, blue.router.ns, blue.externals[0].iface.address, 5), 5);
  const after = readPinnedCounters(lab.pinDir, [1])[0].linkCarried[0];
  assert.ok(after - before >= 5n * 98n, `link bytes charged to blue: ${after - before}`);
});

test('restart in auto mode: tcx where the kernel has it, no gap, one program', async () => {
  const blue = lab.topology.networks[0];
  const [ext0, ext1] = blue.externals;
  const pinger = spawnInNs(ext0.ns, ['ping', '-n', '-q', '-i', '0.01', '-c', '300', '-W', '1', ext1.iface.address]);
  let out = '';
  pinger.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((resolve) => pinger.on('exit', () => resolve()));
  await sleep(300);
  await stopProcess(daemon, 'SIGKILL');
  writeConfig('auto');
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  await done;
  const received = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  assert.ok(received >= 297, `${received}/300 answered across the restart`);
  const expected = kernelHasTcx(release()) ? 'tcx' : 'cls_bpf';
  for (const link of lab.topology.host.links) {
    assert.equal(status().attachments.find((x) => x.ifname === link.name)?.tc, expected);
    const filters = egressFilters(link.name);
    if (expected === 'tcx') assert.doesNotMatch(filters, /xnm_link_out/, 'the cls_bpf filter went when tcx took over');
    else assert.equal(filters.match(/handle 0x584e/g)?.length, 1, 'one filter, replaced in place');
  }
});

test('down detaches both kinds and leaves no filter', async () => {
  await stopProcess(daemon, 'SIGTERM');
  daemon = undefined;
  writeConfig('cls_bpf'); // the filter comes back for down to find
  const again = await startDaemon(lab.topology.host.ns, lab.configPath);
  await stopProcess(again, 'SIGTERM');
  inNs(lab.topology.host.ns, [
    process.execPath,
    new URL('../../src/cli/main.js', import.meta.url).pathname,
    'down',
    '-c',
    lab.configPath,
  ]);
  for (const link of lab.topology.host.links) {
    assert.doesNotMatch(egressFilters(link.name), /xnm_link_out/);
    assert.doesNotMatch(inNs(lab.topology.host.ns, ['ip', 'link', 'show', link.name]), /xdp/);
  }
});
