// Paper V, Fig. 4(a), 4(b): availability of the secure data plane update under attack.
// Router 1 (blue, alpha 0.5) updates its routes over the secure channel while router 2
// (green, alpha 0.3) floods it with TCP through the host (the vm_vm path, charged to the
// sender). An update = `ip route add` in blue's router; it succeeds when the host has
// the route (polled over the admin socket) within 1 s. Up to 3 attempts per trial (an
// attempt after a failed one deletes and re-adds the route: a new change for the client).
// XNetMon (control on) against plane separation without the controller (`--no-control`),
// interleaved in blocks; both use the secure channel, as in the paper.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adminRequest } from '../../src/admin/index.js';
import {
  experimentCommand,
  fmt,
  inNs,
  meanCi,
  rxBytes,
  pct,
  pm,
  quantile,
  sleep,
  wilson,
  withLab,
  writeFigure,
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  type LabSession,
} from './common.js';

const ATTEMPT_DEADLINE_MS = 1000;
const MAX_ATTEMPTS = 3;
const FLOOD_PORT = 5301;
const UDP_FLOOD_PORT = 5302;

/** trafgen's frame: 64-byte UDP from green's router to blue's, IPv4 checksum per packet. */
function udpFloodConfig(lab: LabSession): string {
  const [blue, green] = lab.topology.networks;
  const bytes = (mac: string) =>
    mac
      .split(':')
      .map((b) => `0x${b}`)
      .join(', ');
  const ip = (a: string) => a.split('.').join(', ');
  return `{
  ${bytes(blue.router.interfaces[0].mac)}, ${bytes(green.router.interfaces[0].mac)}, 0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  ${ip(green.router.interfaces[0].address)}, ${ip(blue.router.interfaces[0].address)},
  const16(1000), const16(${UDP_FLOOD_PORT}), const16(26), const16(0),
  fill(0x00, 18)
}
`;
}

interface Trial {
  attempts: number | null;
  latencyMs: number | null;
}
interface Block {
  control: boolean;
  hostCpus: 1 | 2;
  cpu0Busy: number;
  cpu1Busy: number;
  napiCpus: number;
  trials: Trial[];
  floodBps: number;
  greenDropP: number;
  blueDropP: number;
  greenCpuDrops: number;
  blueCpuDrops: number;
}

async function hostHasRoute(lab: LabSession, prefix: string): Promise<boolean> {
  const reply = (await adminRequest(lab.socket, { cmd: 'routes', args: { name: 'blue', prefix } })) as {
    routes: unknown[];
  };
  return reply.routes.length > 0;
}

async function waitFor(lab: LabSession, prefix: string, present: boolean, deadlineMs: number): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < deadlineMs) {
    // A starved daemon answers late: an answer that comes after the deadline is a miss.
    if ((await hostHasRoute(lab, prefix)) === present)
      return Date.now() - start <= deadlineMs ? Date.now() - start : null;
    await sleep(10);
  }
  return null;
}

async function trial(lab: LabSession, prefix: string): Promise<Trial> {
  const vr1 = lab.topology.networks[0].router.ns;
  const gateway = lab.topology.networks[0].externals[1].iface.address;
  let result: Trial = { attempts: null, latencyMs: null };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    if (attempt > 1) inNs(vr1, ['ip', 'route', 'del', prefix], true);
    const t0 = Date.now();
    inNs(vr1, ['ip', 'route', 'add', prefix, 'via', gateway]);
    const waited = await waitFor(lab, prefix, true, ATTEMPT_DEADLINE_MS);
    if (waited !== null) {
      result = { attempts: attempt, latencyMs: Date.now() - t0 };
      break;
    }
  }
  inNs(vr1, ['ip', 'route', 'del', prefix], true);
  await waitFor(lab, prefix, false, 2000); // a clean host before the next trial (not timed)
  return result;
}

async function block(
  lab: LabSession,
  control: boolean,
  trials: number,
  first: number,
  log: (l: string) => void,
): Promise<Block> {
  const [blue, green] = lab.topology.networks;
  await lab.startDaemon(control);
  await lab.waitForClient('blue');
  // green's router floods blue's router: 2 TCP streams, bridged by the host.
  const server = lab.spawn(blue.router.ns, ['iperf3', '-s', '-p', String(FLOOD_PORT)]);
  await sleep(300);
  const flood = lab.spawn(green.router.ns, [
    'iperf3',
    '-c',
    blue.router.interfaces[0].address,
    '-p',
    String(FLOOD_PORT),
    '-P',
    '2',
    '-t',
    '600',
  ]);
  // And a 64-byte UDP flood (trafgen, open loop: it does not back off as TCP does). trafgen ignores
  // SIGTERM in its send loop: it is stopped with SIGINT (through timeout, the safety net).
  const cfg = join(lab.lab.stateDir, 'udp-flood.cfg');
  writeFileSync(cfg, udpFloodConfig(lab));
  const udpFlood = lab.spawn(green.router.ns, [
    'timeout',
    '-s',
    'INT',
    '600',
    'trafgen',
    '-i',
    cfg,
    '-o',
    'eth0',
    '-P',
    '1',
    '-q',
    '-C',
  ]);
  await sleep(1500); // the flood and the controller settle
  const drops0 = await lab.status();
  const rx0 = rxBytes(blue.router.ns, 'eth0');
  const cpu0 = lab.cpuSnapshot();
  const t0 = Date.now();
  const out: Trial[] = [];
  let greenDropP = 0;
  let blueDropP = 0;
  for (let i = 0; i < trials; i++) {
    const n = first + i; // a fresh /28 in 10.1.128.0/17 per trial, clear of the lab's 10.1.0.0/23
    out.push(await trial(lab, `10.1.${128 + (n >> 4)}.${(n & 15) * 16}/28`));
    const s = await lab.status();
    greenDropP = Math.max(greenDropP, s.networks[1].resources.find((r) => r.resource === 'cpu')?.dropProbability ?? 0);
    blueDropP = Math.max(blueDropP, s.networks[0].resources.find((r) => r.resource === 'cpu')?.dropProbability ?? 0);
  }
  // The flood's throughput as router 1 received it (its eth0 carries little else).
  const floodBps = ((rxBytes(blue.router.ns, 'eth0') - rx0) * 8) / ((Date.now() - t0) / 1000);
  const load = lab.cpuSince(cpu0);
  const drops1 = await lab.status();
  flood.child.kill('SIGKILL');
  udpFlood.child.kill('SIGINT');
  server.child.kill('SIGKILL');
  await Promise.all([flood.done, server.done, udpFlood.done]);
  const cpuDrops = (i: number) => (drops1.networks[i].drops.drop_cpu ?? 0) - (drops0.networks[i].drops.drop_cpu ?? 0);
  // Without control the law still computes probabilities (status shows them) but nothing applies them.
  if (!control) greenDropP = blueDropP = 0;
  const hostCpus = lab.overloaded ? 1 : 2;
  log(
    `  ${hostCpus} host CPU(s), ${control ? 'XNetMon' : 'no control'}: ${out.filter((t) => t.attempts === 1).length}/${trials} updates on the first attempt, flood ${fmt(floodBps / 1e6, 0)} Mbit/s, CPU drops green ${cpuDrops(1)} blue ${cpuDrops(0)}, CPU0 ${pct(load.busy[0] ?? NaN)} CPU1 ${pct(load.busy[1] ?? NaN)} busy, napi threads ${fmt(load.napi, 2)} CPU`,
  );
  return {
    control,
    hostCpus,
    cpu0Busy: load.busy[0] ?? NaN,
    cpu1Busy: load.busy[1] ?? NaN,
    napiCpus: load.napi,
    trials: out,
    floodBps,
    greenDropP,
    blueDropP,
    greenCpuDrops: cpuDrops(1),
    blueCpuDrops: cpuDrops(0),
  };
}

export const updateExperiment: Experiment = {
  name: 'update',
  title: 'Availability of the secure data plane update under attack (Fig. 4a, 4b)',
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const trialsPerConfig = ctx.quick ? 20 : 100;
    const blocks = ctx.quick ? 1 : 5;
    const command = experimentCommand('update', ctx.quick);
    const results: Block[] = [];
    // Default lab config (blue alpha 0.5, green 0.3, red 0.2, W 500) with the measured CPU model:
    // R = the CPU the host really has for forwarding (cpu_share 0.5 of 2 cores = the one host CPU).
    for (const hostCpus of [1, 2] as const) {
      const config = { cpuModel: 'measured' as const, cpuShare: hostCpus === 1 ? 0.5 : 1 };
      await withLab({ tag: 'xeu', config, ...(hostCpus === 1 ? { hostCpus } : {}) }, async (lab) => {
        const [blue, green] = lab.topology.networks;
        // The flood's path between the two routers, over the segment both are on (bridged by the host).
        // blue's return route is in a table of its own so that blue's client does not send it.
        inNs(green.router.ns, ['ip', 'route', 'add', `${blue.router.interfaces[0].address}/32`, 'dev', 'eth0']);
        inNs(blue.router.ns, [
          'ip',
          'route',
          'add',
          `${green.router.interfaces[0].address}/32`,
          'dev',
          'eth0',
          'table',
          '100',
        ]);
        inNs(blue.router.ns, ['ip', 'rule', 'add', 'to', green.router.interfaces[0].address, 'lookup', '100']);
        await lab.startDaemon(false);
        await lab.startClient(blue.id);
        let next = 0;
        for (let b = 0; b < blocks; b++) {
          for (const control of b % 2 ? [true, false] : [false, true]) {
            const n = Math.ceil(trialsPerConfig / blocks);
            results.push(await block(lab, control, n, next, ctx.log));
            next += n;
          }
        }
      });
    }

    const summary = (control: boolean, hostCpus: 1 | 2 = 1) => {
      const bs = results.filter((r) => r.control === control && r.hostCpus === hostCpus);
      const trials = bs.flatMap((b) => b.trials);
      const latencies = trials.filter((t) => t.latencyMs !== null && t.attempts === 1).map((t) => t.latencyMs!);
      return {
        trials: trials.length,
        first_attempt: wilson(trials.filter((t) => t.attempts === 1).length, trials.length),
        within_3_attempts: wilson(trials.filter((t) => t.attempts !== null).length, trials.length),
        latency_ms: {
          ...meanCi(latencies),
          p50: quantile(latencies, 0.5),
          p95: quantile(latencies, 0.95),
          max: Math.max(...latencies),
        },
        flood_mbps: meanCi(bs.map((b) => b.floodBps / 1e6)),
        green_cpu_drop_probability_max: Math.max(...bs.map((b) => b.greenDropP)),
        blue_cpu_drop_probability_max: Math.max(...bs.map((b) => b.blueDropP)),
        green_cpu_drops: bs.reduce((s, b) => s + b.greenCpuDrops, 0),
        blue_cpu_drops: bs.reduce((s, b) => s + b.blueCpuDrops, 0),
        cpu0_busy: meanCi(bs.map((b) => b.cpu0Busy)),
        cpu1_busy: meanCi(bs.map((b) => b.cpu1Busy)),
        napi_cpus: meanCi(bs.map((b) => b.napiCpus)),
      };
    };
    const none = summary(false);
    const xnm = summary(true);
    const none2 = summary(false, 2);
    const xnm2 = summary(true, 2);
    const series = (
      [
        [false, 1],
        [true, 1],
        [false, 2],
        [true, 2],
      ] as const
    ).map(([control, cpus]) => ({
      name: `${control ? 'XNetMon' : 'no control'}, ${cpus} host CPU${cpus === 1 ? '' : 's'}`,
      points: results
        .filter((r) => r.control === control && r.hostCpus === cpus)
        .flatMap((b) => b.trials)
        .map((t, i) => [i, t.latencyMs ?? ATTEMPT_DEADLINE_MS * MAX_ATTEMPTS] as const),
    }));
    const files = [
      writeFigure(
        ctx,
        'fig4ab-update-latency.svg',
        {
          title: 'Route update latency under a TCP flood (router 2 -> router 1)',
          xLabel: 'trial',
          yLabel: 'ms until the host has the route',
          series,
        },
        command,
      ),
    ];
    const row = (name: string, x: typeof none) =>
      `| ${name} | ${x.trials} | ${pct(x.first_attempt.rate)} [${pct(x.first_attempt.low)}, ${pct(x.first_attempt.high)}] | ${pct(x.within_3_attempts.rate)} [${pct(x.within_3_attempts.low)}, ${pct(x.within_3_attempts.high)}] | ${fmt(x.latency_ms.p50, 0)} / ${fmt(x.latency_ms.p95, 0)} / ${fmt(x.latency_ms.max, 0)} | ${pm(x.flood_mbps, 0)} | ${fmt(x.green_cpu_drop_probability_max, 3)} / ${fmt(x.blue_cpu_drop_probability_max, 3)} | ${x.green_cpu_drops} / ${x.blue_cpu_drops} | ${pct(x.cpu0_busy.mean, 0)} / ${pct(x.cpu1_busy.mean, 0)} | ${fmt(x.napi_cpus.mean, 2)} |`;
    const hurt = none.first_attempt.rate < 1;
    const saturated = none.cpu0_busy.mean >= 0.95;
    const markdown = [
      `Router 1 (blue, alpha 0.5) adds a route (\`ip route add 10.1.X.Y/28 via 10.1.1.2\` in its namespace, a new prefix per trial); its client (\`xnetmon client\`) sends it over the secure channel; success = the host has it (admin socket, polled every 10 ms) within ${ATTEMPT_DEADLINE_MS} ms of the \`ip route add\`; up to ${MAX_ATTEMPTS} attempts. Meanwhile router 2 (green, alpha 0.3) floods router 1 across the host's bridge (the vm_vm path) with 2 TCP streams (iperf3, as the paper) and an open-loop flood of 64-byte UDP frames (trafgen, as fast as one CPU sends them). Lab config: beta 0.9, share law, W 500, \`cpu_model: measured\` (R = the CPU the host has for forwarding, the path costs fitted each period to the measured softirq + napi thread time).`,
      `1 host CPU (the paper's Dom0 with one CPU; \`withLab({ hostCpus: 1 })\`, src/lab/overload.ts): the host namespace's interfaces run threaded NAPI with their napi threads (SCHED_RR, above processes, as softirq preempts them on a real host and netback preempts Dom0's processes) and the daemon pinned to CPU 0; the routers (their clients, the DomUs' processes, and iperf3), the switches and the external machines run on CPU 1, with the far ends of the host's veths in threaded NAPI there too; \`cpu_share: 0.5\`. 2 host CPUs: nothing pinned, NAPI in softirq, \`cpu_share: 1\` (the machine has 2 cores, so the generators share them). ${results.length} blocks of ${results[0]?.trials.length ?? 0} trials, configurations interleaved; the daemon is restarted with or without \`--no-control\` for each block. CPU busy shares from /proc/stat over each block's trials.`,
      '',
      '| configuration | trials | success on the 1st attempt [95 % CI] | within 3 attempts [95 % CI] | update latency p50 / p95 / max (ms) | flood at router 1 (Mbit/s, mean ± 95 % CI over blocks) | max CPU drop p applied, green / blue | CPU drops, green / blue (packets) | CPU 0 / CPU 1 busy | host napi threads (CPUs) |',
      '| --- | ---: | --- | --- | --- | --- | --- | --- | --- | ---: |',
      row('1 host CPU, no control (plane separation + secure channel)', none),
      row('1 host CPU, XNetMon', xnm),
      row('2 host CPUs, no control', none2),
      row('2 host CPUs, XNetMon', xnm2),
      '',
      `Overload with 1 host CPU and no control: CPU 0 ${pct(none.cpu0_busy.mean, 0)} busy (the host's napi threads ${fmt(none.napi_cpus.mean, 2)} CPU), CPU 1 ${pct(none.cpu1_busy.mean, 0)}: ${saturated ? "the host's CPU is saturated" : "the host's CPU is not saturated"}.`,
      `Target, 100 % on the first attempt with XNetMon (1 host CPU): ${xnm.first_attempt.rate === 1 ? 'met' : 'not met'} (${pct(xnm.first_attempt.rate)}, Wilson 95 % CI [${pct(xnm.first_attempt.low)}, ${pct(xnm.first_attempt.high)}]).`,
      hurt
        ? `Without the controller the flood made ${pct(1 - none.first_attempt.rate)} of first attempts miss the ${ATTEMPT_DEADLINE_MS} ms deadline with 1 host CPU (${pct(1 - none2.first_attempt.rate)} with 2).`
        : `Without the controller every first attempt met the ${ATTEMPT_DEADLINE_MS} ms deadline with 1 host CPU too (CPU 0 ${pct(none.cpu0_busy.mean, 0)} busy): the flood did not starve the daemon or the channel here.`,
      `Fig. 4b, the attacker's throughput at router 1: ${fmt(none.flood_mbps.mean, 0)} Mbit/s without control and ${fmt(xnm.flood_mbps.mean, 0)} with XNetMon on 1 host CPU; ${fmt(none2.flood_mbps.mean, 0)} and ${fmt(xnm2.flood_mbps.mean, 0)} on 2.`,
    ].join('\n');
    const targets = [
      {
        target: "the flood saturates the host's CPU (1 host CPU, no control)",
        met: saturated,
        measured: `CPU 0 ${pct(none.cpu0_busy.mean, 0)} busy, CPU 1 ${pct(none.cpu1_busy.mean, 0)}`,
      },
      {
        target: 'XNetMon: the update succeeds on the first attempt in 100 % of trials (1 host CPU)',
        met: xnm.first_attempt.rate === 1,
        measured: `${pct(xnm.first_attempt.rate)} of ${xnm.trials} (2 host CPUs: ${pct(xnm2.first_attempt.rate)})`,
      },
      {
        target: "the flood hurts the update without the controller (the paper's Fig. 4a)",
        met: hurt,
        measured: `1 host CPU: ${pct(1 - none.first_attempt.rate)} of first attempts failed; 2 host CPUs: ${pct(1 - none2.first_attempt.rate)}`,
      },
    ];
    return {
      name: 'update',
      title: this.title,
      command,
      markdown,
      targets,
      figures: {
        host_cpus: 1,
        cpu_model: 'measured',
        no_control: none,
        xnetmon: xnm,
        two_host_cpus: { no_control: none2, xnetmon: xnm2 },
        blocks: results.map((b) => ({
          host_cpus: b.hostCpus,
          control: b.control,
          flood_mbps: b.floodBps / 1e6,
          cpu0_busy: b.cpu0Busy,
          cpu1_busy: b.cpu1Busy,
          trials: b.trials,
        })),
      },
      files,
    };
  },
};
