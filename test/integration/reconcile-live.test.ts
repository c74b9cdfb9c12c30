// Live changes and reloads, in a lab with the real daemon: all-or-nothing (a net add that fails,
// before or after it wrote anything, leaves the maps, the running config and the file as they
// were, and names the field), kept networks converge (a MAC moves from one network to another,
// a deleted network's vif is re-used), an unchanged network forwards throughout, `xnetmon check`
// shows drift without repairing it, and signals during start-up do not kill the daemon.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import { parseConfig, serializeConfig, type XnetmonConfig } from '../../src/config/index.js';
import { generateKeyPair } from '../../src/crypto/index.js';
import { xnetmon, xnetmonResult, startDaemon, stopProcess, inNs, spawnInNs, sleep, CLI } from '../support/lab.js';
import { margin } from '../support/timing.js';

const prefix = uniquePrefix('xa');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;
let foreign = '';

const cli = (args: string[]) => xnetmon([...args, '--socket', socket]);
const cliResult = (args: string[]) => xnetmonResult([...args, '--socket', socket]);
const host = (args: string[]) => inNs(lab.topology.host.ns, args);
const ifindex = (name: string) => Number(host(['cat', `/sys/class/net/${name}/ifindex`]).trim());

interface Entry {
  formatted?: { key: Record<string, unknown>; value: Record<string, unknown> | number };
}
function dump(map: string): Entry[] {
  return JSON.parse(
    execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${lab.pinDir}/${map}`], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ) as Entry[];
}
/** The data plane's topology and routes, and what the daemon and the file say: what a failed change must leave alone. */
function snapshot(): Record<string, string> {
  const maps = ['xnm_ifaces', 'xnm_classify', 'xnm_vif_macs', 'xnm_tx_ports', 'xnm_routes4'];
  const out: Record<string, string> = Object.fromEntries(
    maps.map((m) => [
      m,
      JSON.stringify(
        dump(m)
          .map((e) => e.formatted)
          .map((f) => JSON.stringify(f))
          .sort(),
      ),
    ]),
  );
  out.file = readFileSync(lab.configPath, 'utf8');
  out.networks = cli(['net', 'list', '--json']);
  out.programs = host(['ip', '-o', 'link', 'show'])
    .split('\n')
    .filter((l) => /xdp/.test(l))
    .map((l) => l.split(':')[1])
    .sort()
    .join(',');
  return out;
}
const classifyEntry = (mac: string) =>
  dump('xnm_classify')
    .map((e) => e.formatted!)
    .find((f) => (f.key.mac as number[]).map((b) => Number(b).toString(16).padStart(2, '0')).join(':') === mac);
const ifaceEntry = (index: number) =>
  dump('xnm_ifaces')
    .map((e) => e.formatted!)
    .find((f) => Number(f.key) === index || (f.key as unknown) === index);
const config = (): XnetmonConfig => parseConfig(readFileSync(lab.configPath, 'utf8'), lab.configPath);
/** `xnetmon check --json`: exit 0 when the data plane matches the config, 2 with the drift. */
const check = () => {
  const r = cliResult(['check', '--json']);
  assert.ok(r.code === 0 || r.code === 2, `check: ${r.stderr}`);
  return {
    code: r.code,
    drift: JSON.parse(r.stdout) as {
      networks: number[];
      maps: Record<string, { add: number; change: number; remove: number }>;
      entries: number;
    },
  };
};

/** A ping of blue across the whole test: its forwarding must never stop. */
function pingBlue(count: number): { done: Promise<number> } {
  const [ext0, ext1] = lab.topology.networks[0].externals;
  const pinger = spawnInNs(ext0.ns, [
    'ping',
    '-n',
    '-q',
    '-i',
    '0.02',
    '-c',
    String(count),
    '-W',
    '1',
    ext1.iface.address,
  ]);
  let out = '';
  pinger.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    done: new Promise((resolve) => pinger.on('exit', () => resolve(Number(/(\d+) received/.exec(out)?.[1] ?? 0)))),
  };
}

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]);
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  if (foreign)
    try {
      host(['ip', 'link', 'del', foreign]);
    } catch {
      /* gone with the namespace */
    }
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

test('after start-up and lab load, check finds nothing to repair', () => {
  const { code, drift } = check();
  assert.equal(code, 0, JSON.stringify(drift));
  assert.equal(drift.entries, 0);
});

test('a net add that fails changes nothing: maps, programs, running config and file; the error names the field', () => {
  const link0 = lab.topology.host.links[0].name;
  const good = (vif: string) => ({
    id: 4,
    name: 'gold',
    routers: [{ vif, clientPublicKey: generateKeyPair().publicKey }],
    attachments: [{ interface: link0, vlan: 0, mac: '02:00:01:00:04:00', vif }],
  });
  const before = snapshot();
  // Refused by validation, before anything is written.
  const lowOrder = {
    ...good('vif1.0'),
    routers: [{ vif: 'vif1.0', clientPublicKey: Buffer.alloc(32).toString('base64') }],
  };
  const cases: [unknown, RegExp][] = [
    [lowOrder, /networks\.gold\.routers\[0\]\.client_public_key: .*small-order/],
    [{ ...good('vif1.0'), colour: 'gold' }, /networks\.gold\.colour: unknown key "colour"/],
    [good(`${prefix}nope`), /networks\.gold\.routers\[0\]\.vif: interface .* does not exist/],
  ];
  for (const [definition, pattern] of cases) {
    const r = cliResult(['net', 'add', '--definition', JSON.stringify(definition)]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr.trim(), pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  assert.deepEqual(snapshot(), before, 'validation failures change nothing');

  // Refused half-way: the maps are written, then the vif refuses our program (another XDP
  // program holds it): everything is put back.
  foreign = `${prefix}g0`;
  host(['ip', 'link', 'add', foreign, 'type', 'veth', 'peer', 'name', `${prefix}g1`]);
  host(['ip', 'link', 'set', foreign, 'up']);
  host([
    'ip',
    'link',
    'set',
    'dev',
    foreign,
    'xdpgeneric',
    'obj',
    new URL('../../../build/baseline.bpf.o', import.meta.url).pathname,
    'sec',
    'xdp',
  ]);
  const withForeign = snapshot();
  const r = cliResult(['net', 'add', '--definition', JSON.stringify(good(foreign))]);
  assert.notEqual(r.code, 0, 'the add fails');
  assert.match(r.stderr.trim(), /networks\.gold\.routers\[0\]\.vif: .*XDP attach/);
  assert.deepEqual(snapshot(), withForeign, 'maps, programs, running config and file are as before');
  assert.ok(
    !dump('xnm_ifaces').some((e) => Number(e.formatted?.key) === ifindex(foreign)),
    'the vif entry written before the failure is gone',
  );
  // The daemon is not stuck: the next change applies.
  host(['ip', 'link', 'set', 'dev', foreign, 'xdpgeneric', 'off']);
  cli(['net', 'add', '--definition', JSON.stringify(good(foreign))]);
  assert.ok(
    config().networks.some((n) => n.name === 'gold'),
    'written to the file',
  );
  cli(['net', 'del', 'gold']);
  assert.equal(check().code, 0);
});

test('reload moves a MAC from red to green in place; net del red then net add re-using its vif works; blue forwards throughout', async () => {
  const [, green, red] = lab.topology.networks;
  const blue = pingBlue(250);
  // red's attachment on link 1 becomes green's (on green's vif of that link).
  const redLink1 = red.router.interfaces[1];
  const greenLink1 = green.router.interfaces[1];
  const moved = config();
  const next: XnetmonConfig = {
    ...moved,
    networks: moved.networks.map((n) =>
      n.name === 'red'
        ? { ...n, attachments: n.attachments.filter((a) => a.mac !== redLink1.mac) }
        : n.name === 'green'
          ? {
              ...n,
              attachments: [
                ...n.attachments,
                { interface: redLink1.link, vlan: 0, mac: redLink1.mac, vif: greenLink1.vif },
              ],
            }
          : n,
    ),
  };
  writeFileSync(lab.configPath, serializeConfig(next));
  cli(['reload']);
  const entry = classifyEntry(redLink1.mac);
  assert.equal(
    Number((entry?.value as Record<string, unknown> | undefined)?.net_id),
    2,
    'the MAC classifies to green now',
  );
  assert.equal(Number((entry?.value as Record<string, unknown> | undefined)?.vif_ifindex), ifindex(greenLink1.vif));
  assert.equal(ifaceEntry(ifindex(redLink1.vif)), undefined, "red's vif of link 1, no longer named, left the maps");
  assert.doesNotMatch(host(['ip', 'link', 'show', redLink1.vif]), /xdp/, 'and lost its program');
  assert.equal(check().code, 0, 'nothing left to repair');

  // net del red, then a network that re-uses red's vif and MAC.
  cli(['net', 'del', 'red']);
  const redLink0 = red.router.interfaces[0];
  const gold = {
    id: 4,
    name: 'gold',
    routers: [{ vif: redLink0.vif, clientPublicKey: generateKeyPair().publicKey }],
    attachments: [{ interface: redLink0.link, vlan: 0, mac: redLink0.mac, vif: redLink0.vif }],
  };
  cli(['net', 'add', '--definition', JSON.stringify(gold)]);
  assert.equal(
    Number((ifaceEntry(ifindex(redLink0.vif))?.value as Record<string, unknown> | undefined)?.net_id),
    4,
    'the vif belongs to gold',
  );
  assert.equal(Number((classifyEntry(redLink0.mac)?.value as Record<string, unknown> | undefined)?.net_id), 4);
  assert.match(host(['ip', 'link', 'show', redLink0.vif]), /xdp/, "gold's vif has the program");
  assert.equal(check().code, 0);
  const received = await blue.done;
  assert.ok(received >= 249, `blue answered ${received}/250 pings across the reload, net del and net add`);
});

test('check shows drift without repairing it; reload repairs it', () => {
  // A classification entry nobody declares (network 7 on link 0), as a crashed change could leave.
  const link0 = ifindex(lab.topology.host.links[0].name);
  const key = Buffer.alloc(12);
  key.writeUInt32LE(link0, 0);
  Buffer.from([0x02, 0x00, 0x07, 0x00, 0x07, 0x07]).copy(key, 6);
  const value = Buffer.alloc(8);
  value.writeUInt32LE(7, 0);
  const hex = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0'));
  execFileSync('bpftool', [
    'map',
    'update',
    'pinned',
    `${lab.pinDir}/xnm_classify`,
    'key',
    'hex',
    ...hex(key),
    'value',
    'hex',
    ...hex(value),
  ]);
  const { code, drift } = check();
  assert.equal(code, 2, 'check exits 2 on drift');
  assert.deepEqual(drift.networks, [7]);
  assert.equal(drift.maps.classify.remove, 1);
  assert.ok(classifyEntry('02:00:07:00:07:07'), 'check changed nothing');
  assert.match(cliResult(['check']).stdout, /networks the configuration does not declare: 7/);
  cli(['reload']);
  assert.equal(classifyEntry('02:00:07:00:07:07'), undefined, 'reload repaired it');
  assert.equal(check().code, 0);
  const status = JSON.parse(cli(['status', '--json'])) as { drift: { trigger: string; networks: number[] } };
  assert.equal(status.drift.trigger, 'reload');
  assert.deepEqual(status.drift.networks, [7]);
});

test('a SIGHUP or a SIGTERM during start-up does not kill the daemon; SIGTERM stops it cleanly', async () => {
  await stopProcess(daemon, 'SIGTERM');
  assert.equal(daemon?.exitCode, 0, 'SIGTERM: a clean stop');
  for (const signal of ['SIGHUP', 'SIGTERM'] as const) {
    const child = spawnInNs(lab.topology.host.ns, [process.execPath, CLI, 'up', '-c', lab.configPath]);
    let log = '';
    let sent = false;
    const onData = (d: Buffer) => {
      log += d.toString();
      // As soon as the daemon says it starts (before it loads anything), the signal.
      if (!sent && /"msg":"starting"/.test(log)) {
        sent = true;
        child.kill(signal);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    if (signal === 'SIGTERM') {
      const code = await Promise.race([exited, sleep(margin(15_000)).then(() => 'timeout' as const)]);
      assert.equal(code, 0, `exits cleanly: ${log}`);
      assert.match(log, /xnetmon stopped/);
      continue;
    }
    const deadline = Date.now() + margin(15_000);
    while (!/"msg":"reloaded"/.test(log) && Date.now() < deadline && child.exitCode === null) await sleep(100);
    assert.equal(child.exitCode, null, `alive after a SIGHUP during start-up: ${log}`);
    assert.match(log, /"msg":"xnetmon up"/);
    assert.match(log, /"msg":"reloaded"/, 'the held reload ran once the daemon was up');
    daemon = child;
    await stopProcess(daemon, 'SIGTERM');
  }
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
});
