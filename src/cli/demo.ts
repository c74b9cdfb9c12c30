// `make lab`: the demo on a lab of namespaces. Builds the lab, starts the daemon and
// the routers' clients, shows the fast path, an opponent flooding and being punished
// while the others keep their reservations, live tuning, then a summary and a report.
// Everything is torn down at the end, on error, and on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AdminClient, type StatusView } from '../admin/index.js';
import { labReport, nsExec, nsSpawn, ipv4InReceives, type LabReportInput } from '../lab/index.js';
import { createLab, destroyLab, type LabState } from '../lab/index.js';
import { startRouting } from './routing.js';

type Status = StatusView;

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};
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
    say(
      `lab ${topology.prefix}: host namespace ${topology.host.ns}, links ${topology.host.links.map((l) => l.name).join(', ')}`,
    );
    for (const n of topology.networks)
      say(
        `  network ${n.id} ${n.name}: router ${n.router.ns} (${n.router.interfaces.map((i) => `${i.name} ${i.address} via ${i.vif}`).join(', ')}), external machines ${n.externals.map((e) => `${e.iface.address}@${e.link}`).join(', ')}`,
      );
    say(
      'reservations (cpu / fib / each link): blue 0.5/0.4/0.5, green 0.3/0.3/0.3, red 0.2/0.2/0.2; red is the opponent',
    );

    heading('2. The daemon loads the data plane and attaches it');
    let daemonLog = '';
    const daemon = spawn(
      'ip',
      ['netns', 'exec', topology.host.ns, process.execPath, process.argv[1], 'up', '-c', lab.configPath],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(daemon);
    daemon.stdout?.on('data', (d: Buffer) => {
      daemonLog += d.toString();
    });
    daemon.stderr?.on('data', (d: Buffer) => {
      daemonLog += d.toString();
    });
    await waitForDaemon(daemon, () => daemonLog);
    const socket = join(lab.stateDir, 'admin.sock');
    const admin = new AdminClient(socket);
    const status = (): Promise<Status> => admin.status();
    const loaded = daemonLog
      .split('\n')
      .filter((l) => l.includes('data plane'))
      .map((l) => JSON.parse(l) as { msg: string; attachments: number });
    say(`daemon up: ${loaded.map((entry) => `${entry.msg}, ${entry.attachments} programs attached`).join('')}`);

    heading('3. Routes arrive from the virtual routers');
    const routing = await startRouting(lab, children, say);
    const routes = (await status()).networks.map((n) => `${n.name} ${n.routes}`).join(', ');
    say(`routes installed in the host: ${routes} (${routing})`);

    heading('4. The fast path: external machine to external machine, not through the router');
    const [b0, b1] = blue.externals;
    const ipBefore = ipv4InReceives(blue.router.ns);
    const before = (await status()).networks[0].forwarded;
    const pingOut = nsExec(b0.ns, ['ping', '-n', '-q', '-c', '20', '-i', '0.05', b1.iface.address]);
    say(
      pingOut
        .split('\n')
        .filter((l) => /packets|rtt/.test(l))
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    const server = nsSpawn(b1.ns, ['iperf3', '-s', '-1']);
    children.push(server);
    await sleep(300);
    const tcp = JSON.parse(nsExec(b0.ns, ['iperf3', '-c', b1.iface.address, '-t', '3', '-J'])) as {
      end: { sum_received: { bits_per_second: number } };
    };
    const forwarded = (await status()).networks[0].forwarded - before;
    say(
      `  TCP ${b0.iface.address} -> ${b1.iface.address}: ${(tcp.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s`,
    );
    say(
      `  XDP forwarded ${forwarded} packets of blue; blue's router received ${ipv4InReceives(blue.router.ns) - ipBefore} IPv4 packets meanwhile`,
    );

    heading("5. Contention: red's router floods through the host, blue's router sends a lot too, green pings");
    // Both routers send UDP from their VMs (60 cost units a packet): red as fast as it can,
    // blue about 60k packets/s, more than its half of the host's CPU. green only pings.
    const samples: { t: number; status: Status }[] = [];
    const redServer = nsSpawn(red.externals[1].ns, ['iperf3', '-s', '-1', '-p', '5202']);
    const blueVmServer = nsSpawn(b1.ns, ['iperf3', '-s', '-1', '-p', '5204']);
    children.push(redServer, blueVmServer);
    await sleep(300);
    const started = Date.now();
    const sampler = setInterval(() => {
      void status().then((s) => samples.push({ t: (Date.now() - started) / 1000, status: s }));
    }, 250);
    const flood = nsSpawn(red.router.ns, [
      'iperf3',
      '-c',
      red.externals[1].iface.address,
      '-p',
      '5202',
      '-u',
      '-b',
      '0',
      '-l',
      '64',
      '-t',
      String(phaseS * 2),
    ]);
    const blueVm = nsSpawn(blue.router.ns, [
      'iperf3',
      '-c',
      b1.iface.address,
      '-p',
      '5204',
      '-u',
      '-b',
      '30M',
      '-l',
      '64',
      '-t',
      String(phaseS * 2),
    ]);
    const greenPing = nsSpawn(green.externals[0].ns, [
      'ping',
      '-n',
      '-q',
      '-i',
      '0.01',
      '-w',
      String(phaseS * 2),
      green.externals[1].iface.address,
    ]);
    children.push(flood, blueVm, greenPing);
    let greenOut = '';
    greenPing.stdout?.on('data', (d: Buffer) => {
      greenOut += d.toString();
    });
    await sleep(phaseS * 1000);
    const during = await status();
    const p = (s: Status, n: number, r = 'cpu') => s.networks[n].resources.find((x) => x.resource === r);
    // Means over the last seconds of a phase: one period alone is noisy.
    const line = (from: number, to: number) => {
      const window = samples.filter((x) => x.t >= from && x.t <= to).map((x) => x.status);
      const avg = (f: (st: Status) => number) => window.reduce((a, st) => a + f(st), 0) / Math.max(1, window.length);
      return (
        window[0]?.networks
          .map(
            (n, i) =>
              `${n.name} p=${avg((st) => p(st, i)!.dropProbability).toFixed(2)} used ${(avg((st) => p(st, i)!.carried / Math.max(1, p(st, i)!.capacity)) * 100).toFixed(0)}% of R`,
          )
          .join(', ') ?? ''
      );
    };
    void during;
    say(`  seconds ${phaseS - 3}-${phaseS}: ${line(phaseS - 3, phaseS)}`);
    say(
      '  both are over their reservations: blue keeps at least its 50% plus half of the idle share, red its 20% plus the other half; green, idle, is untouched',
    );

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
    const reportInput: LabReportInput = {
      prefix: topology.prefix,
      createdAt: new Date().toISOString(),
      samples,
      tuneAt,
      tuneLabel: 'red 0.05, blue 0.65',
      story:
        "red's router floods UDP from 0 s, blue's router sends UDP and its external machines TCP; " +
        `at ${tuneAt.toFixed(1)} s the operator moves CPU reservation from red (0.2 to 0.05) to blue (0.5 to 0.65).`,
      totals: after.networks.map((n) => ({ name: n.name, forwarded: n.forwarded, drops: n.drops })),
      notes: [`green's pings through the host during the contention: ${greenLoss}% lost`],
    };
    const report = labReport(reportInput);
    say(report.text);
    for (const [file, svg] of Object.entries(report.charts)) writeFileSync(join(reportDir, file), svg);
    // What the page was made from: `labReport` renders it again (test/fixtures/lab-report.json is one).
    writeFileSync(join(reportDir, 'report.json'), JSON.stringify(reportInput));
    writeFileSync(join(reportDir, 'index.html'), report.html);
    say(`report: ${join(reportDir, 'index.html')}`);
  } finally {
    heading('Tearing the lab down');
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    say('done');
  }
}
