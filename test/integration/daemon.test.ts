// The daemon through the real CLI and admin socket, in a lab: every read command
// with --json, invalid arguments rejected with one clear line and nothing changed,
// live `net set` effective within ten periods, reload whole-or-nothing, the admin
// socket closed to other users, Prometheus text, and a SIGKILL restart that never
// stops forwarding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, statSync, readdirSync } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { uniquePrefix, type LabState } from '../../src/lab/index.js';
import { readPinnedCounters } from '../../src/dataplane/index.js';
import { adminRequest } from '../../src/admin/index.js';
import {
  xnetmon,
  xnetmonResult,
  ping,
  startDaemon,
  stopProcess,
  spawnInNs,
  inNs,
  sleep,
  scrapeMetrics,
  untilListening,
  pinNeighbours,
} from '../support/lab.js';

const prefix = uniquePrefix('xd');
let lab: LabState;
let daemon: ChildProcess | undefined;
let socket: string;

before(async () => {
  // A tiny CPU capacity (300 units/s) so that two ping floods are contention.
  lab = JSON.parse(xnetmon(['lab', 'up', '--prefix', prefix, '--json', '--cpu-capacity', '300'])) as LabState;
  socket = `${lab.stateDir}/admin.sock`;
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  xnetmon(['lab', 'load', '--prefix', prefix]); // routes, as the routers' clients would send them
});

after(async () => {
  await stopProcess(daemon, 'SIGKILL');
  xnetmon(['lab', 'down', '--prefix', prefix]);
});

const cli = (args: string[]) => xnetmon([...args, '--socket', socket]);
const cliResult = (args: string[]) => xnetmonResult([...args, '--socket', socket]);
const status = () =>
  JSON.parse(cli(['status', '--json'])) as {
    lastPeriod: { period: number };
    networks: {
      name: string;
      reserve: { cpu: number };
      resources: { resource: string; dropProbability: number; carried: number }[];
    }[];
  };

test('read commands answer with JSON', () => {
  const s = status();
  assert.deepEqual(
    s.networks.map((n) => n.name),
    ['blue', 'green', 'red'],
  );
  assert.ok(s.networks[0].resources.some((r) => r.resource === 'link:ext0'));
  const list = JSON.parse(cli(['net', 'list', '--json'])) as { name: string }[];
  assert.equal(list.length, 3);
  const show = JSON.parse(cli(['net', 'show', 'green', '--json'])) as { id: number; reserve: { cpu: number } };
  assert.equal(show.id, 2);
  const routes = JSON.parse(cli(['routes', 'blue', '--json'])) as { routes: { prefix: string }[] };
  assert.ok(routes.routes.some((r) => r.prefix === '10.1.1.2/32'));
  const one = JSON.parse(cli(['routes', 'blue', '--prefix', '10.1.1.2/32', '--json'])) as { routes: unknown[] };
  assert.equal(one.routes.length, 1);
  assert.ok(Array.isArray(JSON.parse(cli(['clients', '--json']))));
  assert.match(cli(['status']), /NETWORK\s+RESOURCE/);
  assert.match(cli(['top', '--once']), /blue/);
});

test('invalid arguments: one clear line, non-zero exit, nothing changed', () => {
  const before = cli(['net', 'list', '--json']);
  const cases: [string[], RegExp][] = [
    [['net', 'set', 'nosuch', '--cpu', '0.1'], /unknown network "nosuch"/],
    [['net', 'set', 'blue', '--cpu', '1.5'], /--cpu.*between 0 and 1/],
    [['net', 'set', 'blue', '--cpu', '0.8'], /cpu.*(sum|over)/i],
    [['net', 'set', 'blue', '--weight', '0'], /--weight.*1 to 1000/],
    [['net', 'set', 'blue', '--weight', '1001'], /--weight.*1 to 1000/],
    [['net', 'set', 'blue', '--link', 'ext0'], /ext0/],
    [['net', 'set', 'blue', '--link', 'ext9=0.1'], /ext9/],
    [['net', 'set', 'blue'], /nothing to change/],
    [['routes', 'blue', '--prefix', '10.1.1.300/32'], /10\.1\.1\.300/],
  ];
  for (const [args, pattern] of cases) {
    const r = cliResult(args);
    assert.notEqual(r.code, 0, `${args.join(' ')} fails`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args.join(' ')}: one line, got ${r.stderr}`);
    assert.match(lines[0], pattern, args.join(' '));
  }
  assert.equal(cli(['net', 'list', '--json']), before, 'nothing changed');
});

test('a live net set changes the probabilities within ten periods', async (t) => {
  const [blue, green] = lab.topology.networks;
  // Two open-loop UDP floods (a packet is about one cost unit; R = 30 units a period): blue at
  // ~39 units a period (alpha 0.5), green at ~17.5 (alpha 0.3, so 9 reserved and a target of ~10.5),
  // both over their reservation and punished. Once green's reservation is raised to 0.7 (21 units),
  // green offers less than it reserves, and Paper IV-A says a network within its reservation is
  // not punished: its probability drops to 0, not merely lower. The probe is built for that
  // contrast because the share law's learned correction (up to +-0.2) moves a punished
  // network's probability from period to period: two medians of a lower but non-zero
  // probability once came out 0.35 before and 0.36 after. Ping floods made a poor probe: ping
  // slows down when its replies are lost, so a punished network's offered load fell under its
  // reservation and its probability alternated between 0 and a punishing period.
  // Neighbours pinned: a punished router's ARP replies are dropped like its data (pinNeighbours()).
  for (const n of [blue, green]) pinNeighbours(n);
  const rates = ['200K', '90K'];
  const servers = [blue, green].map((n, i) =>
    spawnInNs(n.externals[1].ns, ['iperf3', '-s', '-1', '-p', String(5411 + i)]),
  );
  for (const [i, n] of [blue, green].entries()) await untilListening(n.externals[1].ns, 5411 + i);
  const floods = [blue, green].map((n, i) =>
    spawnInNs(n.externals[0].ns, [
      'iperf3',
      '-c',
      n.externals[1].iface.address,
      '-p',
      String(5411 + i),
      '-u',
      '-b',
      rates[i],
      '-l',
      '64',
      '-t',
      '60',
    ]),
  );
  // Status straight from the admin socket: a CLI process per sample takes longer than a period
  // on a loaded machine, and each period is one noisy draw, so the test compares medians of
  // several periods, read period by period.
  const ask = async (cmd: string, args?: Record<string, unknown>) => adminRequest(socket, { cmd, args });
  type Cpu = { p: number; target: number; capacity: number; offered: number };
  const greenCpu = async (): Promise<{ period: number } & Cpu> => {
    const s = (await ask('status')) as {
      lastPeriod: { period: number };
      networks: {
        resources: { resource: string; dropProbability: number; target: number; capacity: number; offered: number }[];
      }[];
    };
    const cpu = s.networks[1].resources.find((r) => r.resource === 'cpu')!;
    const { dropProbability: p, target, capacity, offered } = cpu;
    return { period: s.lastPeriod.period, p, target, capacity, offered };
  };
  const periods = async (count: number): Promise<Cpu[]> => {
    const out: Cpu[] = [];
    for (let last = (await greenCpu()).period; out.length < count; ) {
      await sleep(20);
      const now = await greenCpu();
      if (now.period !== last) out.push(now);
      last = now.period;
    }
    return out;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  try {
    // Steady contention first: while the floods start green's probability climbs, and a median
    // taken on the way up is no baseline.
    let contention = 0;
    for (let i = 0; i < 40 && contention < 0.2; i++) contention = median((await periods(3)).map((c) => c.p));
    assert.ok(
      contention >= 0.2,
      `green is punished under contention (p = ${contention}; the floods: ${floods.map((f) => f.exitCode ?? 'running').join(', ')})`,
    );
    const before = await periods(6);
    await ask('net.set', { name: 'blue', change: { cpu: 0.1 } });
    await ask('net.set', { name: 'green', change: { cpu: 0.7 } });
    // The law takes the new reservation in its next period; the median of the ten after it shows it.
    const after = await periods(10);
    assert.equal(
      (JSON.parse(cli(['net', 'show', 'green', '--json'])) as { reserve: { cpu: number } }).reserve.cpu,
      0.7,
    );
    const show = (cs: Cpu[]) => cs.map((c) => `${c.p.toFixed(2)} (${c.offered}/${c.capacity.toFixed(0)})`).join(', ');
    t.diagnostic(`green's p (offered/R): ${show(before)} -> ${show(after)}`);
    // Paper IV-A: green is now guaranteed 0.7 R of what it offers, so its target is all it offers
    // up to that...
    const last = after[after.length - 1];
    assert.ok(
      last.target >= Math.min(last.offered, 0.7 * last.capacity) - 1e-6,
      `green's target ${last.target} covers what it offers (${last.offered}) up to 0.7 R = ${0.7 * last.capacity}`,
    );
    // ... and, offering less than that, it is no longer punished.
    assert.ok(
      median(before.map((c) => c.p)) >= 0.1,
      `green was punished before the change: p (offered/R) ${show(before)}`,
    );
    assert.equal(
      median(after.map((c) => c.p)),
      0,
      `green within its new reservation is not punished: p (offered/R) ${show(before)} -> ${show(after)}`,
    );
  } finally {
    for (const f of [...floods, ...servers]) f.kill('SIGKILL');
    cli(['net', 'set', 'blue', '--cpu', '0.1']);
    cli(['net', 'set', 'green', '--cpu', '0.3']);
    cli(['net', 'set', 'blue', '--cpu', '0.5']);
  }
});

test('reload: one bad field rejects the whole file; a good file applies', () => {
  const original = readFileSync(lab.configPath, 'utf8');
  try {
    writeFileSync(
      lab.configPath,
      original
        .replace('weight: 500', 'weight: 1001')
        .replace(/name: "?red"?\n {4}weight: \d+/, 'name: red\n    weight: 7'),
    );
    const bad = cliResult(['reload']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /weight/);
    assert.deepEqual(
      (JSON.parse(cli(['net', 'list', '--json'])) as { weight: number }[]).map((n) => n.weight),
      [500, 500, 500],
      'nothing applied',
    );
    writeFileSync(lab.configPath, original.replace(/name: "?red"?\n {4}weight: \d+/, 'name: red\n    weight: 7'));
    cli(['reload']);
    assert.deepEqual(
      (JSON.parse(cli(['net', 'list', '--json'])) as { weight: number }[]).map((n) => n.weight),
      [500, 500, 7],
    );
  } finally {
    writeFileSync(lab.configPath, original);
    cli(['reload']);
  }
});

test('the admin socket refuses non-root users', () => {
  const r = (() => {
    try {
      // A bare client (not the CLI): the checkout may sit in a directory other users cannot read
      // (mktemp -d is 0700), and what is tested is the socket, not the CLI's files.
      const probe =
        'require("node:net").connect(process.argv[1]).on("connect", () => process.exit(0)).on("error", (e) => { console.error(e.code); process.exit(1); })';
      execFileSync(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe, socket],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: '/' },
      );
      return { code: 0, stderr: '' };
    } catch (err) {
      return { code: (err as { status: number }).status, stderr: (err as { stderr: string }).stderr };
    }
  })();
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /permission denied|EACCES/i);
});

test('the metrics endpoint serves valid Prometheus text', () => {
  const text = scrapeMetrics(lab.topology.host.ns);
  const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
  assert.ok(samples.length > 20);
  for (const line of samples) assert.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN$/, line);
  assert.match(text, /# TYPE xnetmon_drop_probability gauge/);
  assert.match(text, /# TYPE xnetmon_packets_total counter/);
  assert.match(text, /xnetmon_packets_total\{network="blue",reason="forward"\} \d+/);
  assert.match(text, /xnetmon_reservation_ratio\{network="blue",resource="cpu"\} 0\.5/);
  assert.match(text, /# TYPE xnetmon_controller_period_seconds histogram/);
});

test('hitless restart: SIGKILL and start again, forwarding never stops', async () => {
  const blue = lab.topology.networks[0];
  const [ext0, ext1] = blue.externals;
  ping(ext0.ns, ext1.iface.address, 2);
  const routesBefore = cli(['routes', 'blue', '--json']);
  const blueCpu = () => status().networks[0].resources.find((r) => r.resource === 'cpu')?.dropProbability ?? 0;
  const dropCpu = () => readPinnedCounters(lab.pinDir, [1])[0].verdicts.drop_cpu;
  const dropsBefore = dropCpu();
  // Pings until the restart is over (stopped with SIGINT, when ping prints its summary): a fixed
  // count at -i 0.01 (3 s) had ended before the kill in CI's 6.1 VM, where each CLI call takes seconds.
  const pinger = spawnInNs(ext0.ns, ['ping', '-n', '-q', '-i', '0.01', '-W', '1', ext1.iface.address]);
  let out = '';
  pinger.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const done = new Promise<void>((resolve) => pinger.on('exit', () => resolve()));
  await sleep(500);
  // The pinned drop probabilities outlive the daemon (that is what keeps an attacker punished
  // across a restart), so a kill right after a period that punished blue (R is tiny here: its
  // router's route resync alone can push it over its reservation) would freeze that punishment
  // until the new daemon's first period. The test is about forwarding, so it kills in a period
  // that left blue alone.
  for (let i = 0; i < 50 && blueCpu() > 0; i++) await sleep(20);
  assert.equal(blueCpu(), 0, 'blue is not punished when the daemon is killed');
  const forwardedBefore = readPinnedCounters(lab.pinDir, [1])[0].verdicts.forward;
  await stopProcess(daemon, 'SIGKILL');
  await sleep(500);
  const forwardedDuring = readPinnedCounters(lab.pinDir, [1])[0].verdicts.forward;
  assert.ok(forwardedDuring > forwardedBefore, 'forwarding goes on with no daemon');
  daemon = await startDaemon(lab.topology.host.ns, lab.configPath);
  const period = status().lastPeriod?.period ?? 0;
  await sleep(400);
  assert.ok(status().lastPeriod.period > period, 'the controller resumed');
  await sleep(200);
  pinger.kill('SIGINT');
  await done;
  const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0);
  const received = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  // A ping the controller dropped on purpose (a period in which blue was over its reservation)
  // is counted as drop_cpu; any other loss is the restart's. 1 % is allowed (3 of the 300 this
  // test sent with a fixed count), and the last request, whose reply SIGINT may cut off.
  const punished = Number(dropCpu() - dropsBefore);
  assert.ok(sent >= 100, `ping ran through the restart: ${out}`);
  assert.ok(
    received + punished >= sent - Math.max(3, Math.ceil(sent / 100)) - 1,
    `${received}/${sent} answered across kill and restart, ${punished} dropped by punishment`,
  );
  assert.equal(cli(['routes', 'blue', '--json']), routesBefore, 'maps intact');
});

test('keygen writes a private key (mode 0600) and prints the public key; refuses to overwrite', () => {
  const out = `${lab.stateDir}/test.key`;
  const printed = JSON.parse(xnetmon(['keygen', '-o', out, '--json'])) as { publicKey: string };
  assert.equal(Buffer.from(printed.publicKey, 'base64').length, 32);
  assert.equal(statSync(out).mode & 0o777, 0o600);
  const again = xnetmonResult(['keygen', '-o', out]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /exists/);
});

test('net add and net del, live', () => {
  inNs(lab.topology.host.ns, ['ip', 'link', 'add', 'vif9.0', 'type', 'veth', 'peer', 'name', 'vif9p']);
  try {
    const key = (
      JSON.parse(xnetmon(['keygen', '-o', `${lab.stateDir}/gold.key`, '--force', '--json'])) as { publicKey: string }
    ).publicKey;
    const bad = cliResult([
      'net',
      'add',
      '--definition',
      JSON.stringify({
        id: 9,
        name: 'gold',
        routers: [{ vif: 'vif9.0', clientPublicKey: key }],
        reserve: { cpu: 0.5 },
      }),
    ]);
    assert.notEqual(bad.code, 0, 'cpu reservations would sum over 1');
    assert.match(bad.stderr, /cpu/);
    cli([
      'net',
      'add',
      '--definition',
      JSON.stringify({ id: 9, name: 'gold', weight: 10, routers: [{ vif: 'vif9.0', clientPublicKey: key }] }),
    ]);
    assert.ok((JSON.parse(cli(['net', 'list', '--json'])) as { name: string }[]).some((n) => n.name === 'gold'));
    cli(['net', 'del', 'gold']);
    assert.ok(!(JSON.parse(cli(['net', 'list', '--json'])) as { name: string }[]).some((n) => n.name === 'gold'));
  } finally {
    inNs(lab.topology.host.ns, ['ip', 'link', 'del', 'vif9.0']);
  }
});

test('down detaches every program and removes the pins', async () => {
  await stopProcess(daemon, 'SIGTERM');
  daemon = undefined;
  const before = readdirSync(lab.pinDir);
  assert.ok(before.includes('xnm_routes4'));
  xnetmon(['down', '-c', lab.configPath], { ns: lab.topology.host.ns });
  assert.deepEqual(
    readdirSync(lab.pinDir).filter((e) => e.startsWith('xnm_') || e === 'links'),
    [],
  );
  const links = inNs(lab.topology.host.ns, ['ip', '-d', 'link', 'show', 'ext0']);
  assert.doesNotMatch(links, /prog\/xdp/, 'no XDP program left on ext0');
});
