// The secure data plane update end to end in a lab (paper IV-B, IV-C): each router's
// client over the secure channel, BIRD learning routes by OSPF in network 1's router,
// routes appearing in and vanishing from the host's maps, a daemon restart with the
// client reconnecting (forwarding never stops, stale routes swept), a handshake
// flood from one router not stopping another's updates, and two routers (two real clients,
// two keys) of one network, each with its own session and replica.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '../../src/crypto/index.js';
import { uniquePrefix, startBird, birdc, type LabState, type BirdLab } from '../../src/lab/index.js';
import { AdminClient, adminRequest, type RoutesView } from '../../src/admin/index.js';
import { margin } from '../support/timing.js';
import { xnetmon, startDaemon, stopProcess, spawnInNs, inNs, sleep, ping, CLI } from '../support/lab.js';

type Route = RoutesView['routes'][number];

const prefix = uniquePrefix('xu');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;
let bird: BirdLab | undefined;
const clients: ChildProcess[] = [];

const routes = async (network: string): Promise<Route[]> => (await new AdminClient(socket).routes(network)).routes;
type Session = {
  network: string;
  router: string;
  connected: boolean;
  resyncing: boolean;
  lastUpdate: string | null;
  stale: number;
  connectedSince: string | null;
};
const sessions = async () => (await adminRequest(socket, { cmd: 'clients' })) as Session[];

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + margin(timeoutMs);
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function startClient(netId: number): ChildProcess {
  const net = lab.topology.networks.find((n) => n.id === netId)!;
  const child = spawn(
    'ip',
    ['netns', 'exec', net.router.ns, process.execPath, CLI, 'client', '-c', `${lab.stateDir}/client${netId}.yaml`],
    { stdio: 'ignore' },
  );
  clients.push(child);
  return child;
}

const inSync = async (network: string) =>
  (await sessions()).find((s) => s.network === network && s.connected && !s.resyncing && s.lastUpdate);

before(async () => {
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  // The routers connect (until then the host has no routes of theirs), then resolve their
  // external machines (the host learns the MACs from their neighbour tables).
  for (const net of lab.topology.networks) startClient(net.id);
  for (const net of lab.topology.networks) await until(`${net.name} in sync`, () => inSync(net.name));
  for (const net of lab.topology.networks)
    for (const ext of net.externals) inNs(net.router.ns, ['ping', '-c', '1', '-W', '1', ext.iface.address]);
});

after(async () => {
  for (const c of clients) c.kill('SIGKILL');
  for (const p of bird?.processes ?? []) p.kill('SIGKILL');
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

test("each router's routes arrive over the secure channel and confine to its network", async () => {
  const blue = await routes('blue');
  assert.ok(
    blue.some((r) => r.prefix === '10.1.1.0/24'),
    "blue's connected subnet",
  );
  assert.ok(
    blue.some((r) => r.prefix === '10.1.0.1/32' && r.target.kind === 'local'),
    "blue's own address is local",
  );
  const green = await routes('green');
  assert.ok(
    green.every((r) => r.prefix.startsWith('10.2.') || r.prefix.includes(':')),
    "green holds only green's routes",
  );
});

test('a static route added and removed in the router appears in and vanishes from the host', async () => {
  const blue = lab.topology.networks[0];
  inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.50.0/24', 'via', '10.1.1.2']);
  await until(
    '10.1.50.0/24 in the host',
    async () => (await routes('blue')).some((r) => r.prefix === '10.1.50.0/24'),
    5000,
  );
  inNs(blue.router.ns, ['ip', 'route', 'del', '10.1.50.0/24']);
  await until('10.1.50.0/24 gone', async () => !(await routes('blue')).some((r) => r.prefix === '10.1.50.0/24'), 5000);
});

test('routes learnt by BIRD (OSPF) appear in the host maps, and vanish when BIRD withdraws them', async () => {
  bird = startBird(lab.topology, lab.stateDir, 1);
  await until(
    'OSPF route in the host',
    async () => (await routes('blue')).find((r) => r.prefix === bird!.stubPrefix),
    30_000,
  );
  const blue = lab.topology.networks[0];
  assert.equal(
    ping(blue.externals[0].ns, bird.stubAddress, 3),
    3,
    'the OSPF-learnt prefix is reachable through the host',
  );
  birdc(bird.routerSocket, ['disable', 'ospf1']);
  await until(
    'OSPF route withdrawn from the host',
    async () => !(await routes('blue')).some((r) => r.prefix === bird!.stubPrefix),
    10_000,
  );
  birdc(bird.routerSocket, ['enable', 'ospf1']);
  await until('OSPF route back', async () => (await routes('blue')).find((r) => r.prefix === bird!.stubPrefix), 30_000);
});

test('daemon killed and restarted: forwarding goes on, the client resyncs, stale routes are swept', async () => {
  const blue = lab.topology.networks[0];
  const [ext0, ext1] = blue.externals;
  ping(ext0.ns, ext1.iface.address, 2);
  const pinger = spawnInNs(ext0.ns, ['ping', '-n', '-q', '-c', '400', '-i', '0.02', '-W', '1', ext1.iface.address]);
  let out = '';
  pinger.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((r) => pinger.on('exit', () => r()));
  inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.61.0/24', 'via', '10.1.1.2']);
  await until(
    '10.1.61.0/24 in the host',
    async () => (await routes('blue')).some((r) => r.prefix === '10.1.61.0/24'),
    5000,
  );
  await stopProcess(daemon, 'SIGKILL');
  // While the host daemon is away the router's FIB changes: one route goes, one comes.
  inNs(blue.router.ns, ['ip', 'route', 'del', '10.1.61.0/24']);
  inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.62.0/24', 'via', '10.1.1.2']);
  await sleep(1000);
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  await until('blue resynced', () => inSync('blue'), 20_000);
  const after = await routes('blue');
  assert.ok(!after.some((r) => r.prefix === '10.1.61.0/24'), 'the route deleted meanwhile was swept');
  assert.ok(
    after.some((r) => r.prefix === '10.1.62.0/24'),
    'the route added meanwhile arrived',
  );
  assert.equal((await sessions()).find((s) => s.network === 'blue')?.stale, 0, 'nothing left stale');
  await done;
  const received = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  assert.ok(received >= 396, `${received}/400 answered through the kill, restart and resync`);
});

test("a handshake flood from one router does not stop another's updates", async () => {
  // red's router opens connection after connection to the host's channel port with garbage handshakes.
  const red = lab.topology.networks[2];
  const blue = lab.topology.networks[0];
  const flood = spawnInNs(red.router.ns, [
    process.execPath,
    '-e',
    `
    const net = require('node:net');
    const end = Date.now() + 4000;
    (function again() {
      if (Date.now() > end) return;
      const s = net.connect(7400, '10.3.0.254', () => { s.write(Buffer.alloc(200, 7)); s.destroy(); setImmediate(again); });
      s.on('error', () => setImmediate(again));
    })();
  `,
  ]);
  try {
    await sleep(500);
    const t0 = Date.now();
    inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.70.0/24', 'via', '10.1.1.2']);
    await until(
      "blue's update during the flood",
      async () => (await routes('blue')).some((r) => r.prefix === '10.1.70.0/24'),
      3000,
    );
    assert.ok(Date.now() - t0 < margin(3000));
  } finally {
    flood.kill('SIGKILL');
  }
});

test("two routers of one network: each its own session; one router's resync removes only its own routes", async () => {
  // Router B of blue: a second real client with its own key, in blue's router namespace, replicating
  // routing table 100 only (router A's client replicates main and local), on a vif of its own.
  const blue = lab.topology.networks[0];
  const vifB = `${prefix}vb2`;
  inNs(lab.topology.host.ns, [
    'ip',
    'link',
    'add',
    vifB,
    'type',
    'veth',
    'peer',
    'name',
    `${prefix}rb2`,
    'netns',
    blue.router.ns,
  ]);
  inNs(lab.topology.host.ns, ['ip', 'link', 'set', vifB, 'up']);
  const keyB = generateKeyPair();
  writeFileSync(`${lab.stateDir}/routerB.key`, `${keyB.privateKey}\n`, { mode: 0o600 });
  const clientA = readFileSync(`${lab.stateDir}/client${blue.id}.yaml`, 'utf8');
  writeFileSync(
    `${lab.stateDir}/clientB.yaml`,
    `${clientA
      .replace(/private_key_file: .*/, `private_key_file: ${lab.stateDir}/routerB.key`)
      .replace(/name: .*/, 'name: blue-router-b')}tables: ["100"]\nfilter: false\n`,
  );
  const original = readFileSync(lab.configPath, 'utf8');
  const routerA = new RegExp(`(name: "?${blue.name}"?\\n[\\s\\S]*?routers:\\n      - \\{[^\\n]*\\})`);
  assert.match(original, routerA);
  const cli = (args: string[]) => xnetmon([...args, '--socket', socket]);
  let clientB: ChildProcess | undefined;
  const dev = /dev (\S+)/.exec(inNs(blue.router.ns, ['ip', 'route', 'get', '10.1.1.2']))![1]!;
  try {
    writeFileSync(
      lab.configPath,
      original.replace(routerA, `$1\n      - { vif: "${vifB}", client_public_key: "${keyB.publicKey}" }`),
    );
    cli(['reload']);
    const before = (await sessions()).find((x) => x.network === 'blue' && x.router !== vifB)!;
    assert.ok(before.connected, 'router A is connected');
    clientB = spawn(
      'ip',
      ['netns', 'exec', blue.router.ns, process.execPath, CLI, 'client', '-c', `${lab.stateDir}/clientB.yaml`],
      { stdio: 'ignore' },
    );
    clients.push(clientB);
    const lineOf = async (vif: string) => (await sessions()).find((x) => x.network === 'blue' && x.router === vif);
    await until('router B in sync', async () => {
      const b = await lineOf(vifB);
      return b?.connected && !b.resyncing && b.lastUpdate ? b : undefined;
    });
    // A: 10.1.81/24 in main; B: 10.1.80/24 in table 100; both: 10.1.82/24.
    inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.81.0/24', 'via', '10.1.1.2']);
    inNs(blue.router.ns, ['ip', 'route', 'add', '10.1.82.0/24', 'via', '10.1.1.2']);
    for (const p of ['10.1.80.0/24', '10.1.82.0/24'])
      inNs(blue.router.ns, ['ip', 'route', 'add', p, 'via', '10.1.1.2', 'dev', dev, 'onlink', 'table', '100']);
    const has = async (p: string) => (await routes('blue')).some((r) => r.prefix === p);
    for (const p of ['10.1.80.0/24', '10.1.81.0/24', '10.1.82.0/24'])
      await until(`${p} in the host`, () => has(p), 5000);
    const a = (await sessions()).find((x) => x.network === 'blue' && x.router !== vifB)!;
    assert.equal(a.connectedSince, before.connectedSince, "B's session did not replace A's");

    // B restarts with 10.1.80/24 gone from its table: its resync removes it, A's routes stay.
    clientB.kill('SIGKILL');
    inNs(blue.router.ns, ['ip', 'route', 'del', '10.1.80.0/24', 'table', '100']);
    await sleep(300);
    clientB = spawn(
      'ip',
      ['netns', 'exec', blue.router.ns, process.execPath, CLI, 'client', '-c', `${lab.stateDir}/clientB.yaml`],
      { stdio: 'ignore' },
    );
    clients.push(clientB);
    await until("10.1.80.0/24 swept by B's resync", async () => !(await has('10.1.80.0/24')), 15_000);
    assert.ok(await has('10.1.81.0/24'), "A's route stays");
    assert.ok(await has('10.1.82.0/24'), 'the route both announce stays');
    assert.equal((await lineOf(before.router))?.connectedSince, before.connectedSince, "A's session is untouched");

    // Router B removed from the configuration: its session closes; what A also announces stays.
    clientB.kill('SIGKILL');
    writeFileSync(lab.configPath, original);
    cli(['reload']);
    assert.equal(await lineOf(vifB), undefined);
    assert.ok(await has('10.1.81.0/24'));
    assert.ok(await has('10.1.82.0/24'));
  } finally {
    clientB?.kill('SIGKILL');
    writeFileSync(lab.configPath, original);
    try {
      cli(['reload']);
    } catch {
      /* the lab goes down in after() */
    }
    const tidy = (ns: string, args: string[]) => {
      try {
        inNs(ns, args);
      } catch {
        /* already gone */
      }
    };
    for (const p of ['10.1.81.0/24', '10.1.82.0/24']) tidy(blue.router.ns, ['ip', 'route', 'del', p]);
    tidy(blue.router.ns, ['ip', 'route', 'flush', 'table', '100']);
    tidy(lab.topology.host.ns, ['ip', 'link', 'del', vifB]);
  }
});
