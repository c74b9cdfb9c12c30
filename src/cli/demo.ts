// `make lab`: the demo on a lab of namespaces. Builds the lab, starts the daemon and
// the routers' clients, shows the fast path, an opponent flooding and being punished
// while the others keep their reservations, live tuning, then a summary and a report.
// Everything is torn down at the end, on error, and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdminClient, type StatusView } from '../admin/index.js';
import { lineChart, nsExec, nsSpawn, ipv4InReceives, type Series } from '../lab/index.js';
import { createLab, destroyLab, type LabState } from '../lab/index.js';
import { startRouting } from './routing.js';

type Status = StatusView;

const say = (text: string): void => { process.stdout.write(`${text}\n`); };
const heading = (text: string): void => say(`\n== ${text}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitForDaemon(child: ChildProcess, log: () => string): Promise<void> {
  // 15 s is plenty on a host; a slow VM (make test-kernel) can need a minute or more.
  for (let i = 0; i < 1200; i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited: ${log()}`);
    if (log().includes('"msg":"xnetmon up"')) return;
    await sleep(100);
  }
  throw new Error(`daemon did not start: ${log()}`);
}

export async function runDemo(opts: { prefix?: string; report: string; quick?: boolean }): Promise<void> {
  const phaseS = opts.quick ? 4 : 8;
  const children: ChildProcess[] = [];
  let lab: LabState | undefined;
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    if (lab) destroyLab(lab.topology.prefix);
    lab = undefined;
  };
  const onSignal = (): void => {
    say('\ninterrupted: tearing the lab down');
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const reportDir = resolve(opts.report);
  mkdirSync(reportDir, { recursive: true });
  try {
    heading('1. A virtual-router host built from namespaces');
    // CPU capacity in cost units per second: small enough that one virtual router's
    // flood (60 units per packet it sends) is contention on this 2-core machine.
    // The veth links are faster than any NIC: tell the daemon they carry 10 Gbit/s, so that
    // this demo is about CPU (the link control is shown by `make experiments`).
    lab = createLab({ prefix: opts.prefix, config: { cpuCapacity: 2_000_000, linkCapacityMbps: 10_000 } });
    const { topology } = lab;
    const [blue, green, red] = topology.networks;
    say(`lab ${topology.prefix}: host namespace ${topology.host.ns}, links ${topology.host.links.map((l) => l.name).join(', ')}`);
    for (const n of topology.networks) say(`  network ${n.id} ${n.name}: router ${n.router.ns} (${n.router.interfaces.map((i) => `${i.name} ${i.address} via ${i.vif}`).join(', ')}), external machines ${n.externals.map((e) => `${e.iface.address}@${e.link}`).join(', ')}`);
    say('reservations (cpu / fib / each link): blue 0.5/0.4/0.5, green 0.3/0.3/0.3, red 0.2/0.2/0.2; red is the opponent');

    heading('2. The daemon loads the data plane and attaches it');
    let daemonLog = '';
    const daemon = spawn('ip', ['netns', 'exec', topology.host.ns, process.execPath, process.argv[1], 'up', '-c', lab.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(daemon);
    daemon.stdout?.on('data', (d: Buffer) => { daemonLog += d.toString(); });
    daemon.stderr?.on('data', (d: Buffer) => { daemonLog += d.toString(); });
    await waitForDaemon(daemon, () => daemonLog);
    const socket = join(lab.stateDir, 'admin.sock');
    const admin = new AdminClient(socket);
    const status = (): Promise<Status> => admin.status();
    say(`daemon up: ${daemonLog.split('\n').filter((l) => l.includes('data plane')).map((l) => (JSON.parse(l) as { msg: string; attachments: number }).msg + `, ${(JSON.parse(l) as { attachments: number }).attachments} programs attached`).join('')}`);

    heading('3. Routes arrive from the virtual routers');
    const routing = await startRouting(lab, children, say);
    const routes = (await status()).networks.map((n) => `${n.name} ${n.routes}`).join(', ');
    say(`routes installed in the host: ${routes} (${routing})`);

    heading('4. The fast path: external machine to external machine, not through the router');
    const [b0, b1] = blue.externals;
    const ipBefore = ipv4InReceives(blue.router.ns);
    const before = (await status()).networks[0].forwarded;
    const pingOut = nsExec(b0.ns, ['ping', '-n', '-q', '-c', '20', '-i', '0.05', b1.iface.address]);
    say(pingOut.split('\n').filter((l) => /packets|rtt/.test(l)).map((l) => `  ${l}`).join('\n'));
    const server = nsSpawn(b1.ns, ['iperf3', '-s', '-1']);
    children.push(server);
    await sleep(300);
    const tcp = JSON.parse(nsExec(b0.ns, ['iperf3', '-c', b1.iface.address, '-t', '3', '-J'])) as { end: { sum_received: { bits_per_second: number } } };
    const forwarded = (await status()).networks[0].forwarded - before;
    say(`  TCP ${b0.iface.address} -> ${b1.iface.address}: ${(tcp.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`);
    say(`  XDP forwarded ${forwarded} packets of blue; blue's router received ${ipv4InReceives(blue.router.ns) - ipBefore} IPv4 packets meanwhile`);

    heading('5. Contention: red\'s router floods through the host, blue\'s router sends a lot too, green pings');
    // Both routers send UDP from their VMs (60 cost units a packet): red as fast as it can,
    // blue about 60k packets/s, more than its half of the host's CPU. green only pings.
    const samples: { t: number; status: Status }[] = [];
    const redServer = nsSpawn(red.externals[1].ns, ['iperf3', '-s', '-1', '-p', '5202']);
    const blueVmServer = nsSpawn(b1.ns, ['iperf3', '-s', '-1', '-p', '5204']);
    children.push(redServer, blueVmServer);
    await sleep(300);
    const started = Date.now();
    const sampler = setInterval(() => { void status().then((s) => samples.push({ t: (Date.now() - started) / 1000, status: s })); }, 250);
    const flood = nsSpawn(red.router.ns, ['iperf3', '-c', red.externals[1].iface.address, '-p', '5202', '-u', '-b', '0', '-l', '64', '-t', String(phaseS * 2)]);
    const blueVm = nsSpawn(blue.router.ns, ['iperf3', '-c', b1.iface.address, '-p', '5204', '-u', '-b', '30M', '-l', '64', '-t', String(phaseS * 2)]);
    const greenPing = nsSpawn(green.externals[0].ns, ['ping', '-n', '-q', '-i', '0.01', '-w', String(phaseS * 2), green.externals[1].iface.address]);
    children.push(flood, blueVm, greenPing);
    let greenOut = '';
    greenPing.stdout?.on('data', (d: Buffer) => { greenOut += d.toString(); });
    await sleep(phaseS * 1000);
    const during = await status();
    const p = (s: Status, n: number, r = 'cpu') => s.networks[n].resources.find((x) => x.resource === r);
    // Means over the last seconds of a phase: one period alone is noisy.
    const line = (from: number, to: number) => {
      const window = samples.filter((x) => x.t >= from && x.t <= to).map((x) => x.status);
      const avg = (f: (st: Status) => number) => window.reduce((a, st) => a + f(st), 0) / Math.max(1, window.length);
      return window[0]?.networks.map((n, i) => `${n.name} p=${avg((st) => p(st, i)!.dropProbability).toFixed(2)} used ${(avg((st) => p(st, i)!.carried / Math.max(1, p(st, i)!.capacity)) * 100).toFixed(0)}% of R`).join(', ') ?? '';
    };
    void during;
    say(`  seconds ${phaseS - 3}-${phaseS}: ${line(phaseS - 3, phaseS)}`);
    say('  both are over their reservations: blue keeps at least its 50% plus half of the idle share, red its 20% plus the other half; green, idle, is untouched');

    heading('6. Live tuning: the operator moves CPU reservation from red to blue');
    const tuneAt = (Date.now() - started) / 1000;
    say('  $ xnetmon net set red --cpu 0.05');
    await admin.request('net.set', { name: 'red', change: { cpu: 0.05 } });
    say('  $ xnetmon net set blue --cpu 0.65');
    await admin.request('net.set', { name: 'blue', change: { cpu: 0.65 } });
    await sleep(phaseS * 1000);
    clearInterval(sampler);
    const after = await status();
    say(`  seconds ${2 * phaseS - 3}-${2 * phaseS}: ${line(2 * phaseS - 3, 2 * phaseS)}`);
    await new Promise<void>((r) => (greenPing.exitCode !== null ? r() : greenPing.once('exit', () => r())));
    const greenLoss = /(\d+(?:\.\d+)?)% packet loss/.exec(greenOut)?.[1] ?? '?';

    heading('Summary');
    // The summary's figures are means over the same samples the charts plot, before and after the
    // tuning mark: one period alone is noisy, and the last one can fall after the traffic ended.
    const endAt = samples.length ? samples[samples.length - 1].t : tuneAt;
    const mean = (from: number, to: number, f: (st: Status) => number): number => {
      const window = samples.filter((x) => x.t >= from && x.t < to).map((x) => f(x.status));
      return window.reduce((a, v) => a + v, 0) / Math.max(1, window.length);
    };
    const share = (i: number, field: 'carried' | 'reserved') => (st: Status): number => { const r = p(st, i); return r?.capacity ? r[field] / r.capacity : 0; };
    const both = (i: number, f: (i: number) => (st: Status) => number, digits: number): string =>
      `${mean(0, tuneAt, f(i)).toFixed(digits)} -> ${mean(tuneAt, endAt + 1, f(i)).toFixed(digits)}`;
    const rows = after.networks.map((n, i) => {
      const drops = Object.entries(n.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k.replace('drop_', '')}=${v}`).join(' ') || '-';
      return `${n.name.padEnd(7)} ${both(i, (j) => share(j, 'reserved'), 2).padStart(12)} ${both(i, (j) => share(j, 'carried'), 2).padStart(12)} ${both(i, (j) => (st) => p(st, j)?.dropProbability ?? 0, 2).padStart(12)} ${String(n.forwarded).padStart(10)}  ${drops}`;
    });
    const summaryHead = `means over the charted samples, 0-${tuneAt.toFixed(1)} s -> ${tuneAt.toFixed(1)}-${endAt.toFixed(1)} s; CPU as a share of the configured R (above 1: the host carried more than R); forwarded and drops: totals at the end
${'network'.padEnd(7)} ${'reserved CPU'.padStart(12)} ${'CPU used'.padStart(12)} ${'drop p'.padStart(12)} ${'forwarded'.padStart(10)}  drops by reason`;
    say(`${summaryHead}\n${rows.join('\n')}`);
    say(`green's pings through the host during the contention: ${greenLoss}% lost`);

    const series = (resource: string, field: 'carried' | 'dropProbability', scale: (v: number, cap: number) => number): Series[] =>
      topology.networks.map((n, i) => ({
        name: n.name,
        points: samples.map((s) => { const r = s.status.networks[i].resources.find((x) => x.resource === resource); return [s.t, r ? scale(r[field], r.capacity) : 0] as const; }),
      }));
    const marks = [{ x: tuneAt, label: 'red 0.05, blue 0.65' }];
    // R is the configured cpu_capacity, set below what this machine's CPU does so that the demo
    // has contention: the real CPU can carry more than R, so shares above 1 are real, not a bug.
    const usage = lineChart('CPU used per network (share of the configured R)', 'time (s)', 'share of configured R', series('cpu', 'carried', (v, c) => (c ? v / c : 0)),
      { marks, references: [{ y: 1, label: 'configured R: above it the host carried more than R' }] });
    const prob = lineChart('CPU drop probability per network', 'time (s)', 'drop probability', series('cpu', 'dropProbability', (v) => v), { yMax: 1, marks });
    writeFileSync(join(reportDir, 'cpu-usage.svg'), usage);
    writeFileSync(join(reportDir, 'drop-probability.svg'), prob);
    writeFileSync(join(reportDir, 'samples.json'), JSON.stringify(samples));
    writeFileSync(join(reportDir, 'index.html'), `<!doctype html><meta charset="utf-8"><title>XNetMon lab report</title>
<h1>XNetMon lab report</h1><p>Lab ${topology.prefix}, ${new Date().toISOString()}. red's router floods UDP from 0 s, blue's router sends UDP and its external machines TCP; at ${tuneAt.toFixed(1)} s the operator moves CPU reservation from red (0.2 to 0.05) to blue (0.5 to 0.65).</p>
<pre>${summaryHead}\n${rows.join('\n')}\ngreen's pings during the contention: ${greenLoss}% lost</pre>
${usage}\n${prob}\n`);
    say(`report: ${join(reportDir, 'index.html')}`);
  } finally {
    heading('Tearing the lab down');
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    say('done');
  }
}
