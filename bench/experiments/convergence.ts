// Punishment convergence: periods to settle within 5 % of the target share after a step in
// an opponent's demand, Algorithm 1 (Paper IV-A) against the share law, in the closed-loop
// simulator (compareLaws, scenario b) and in the lab: blue's router offers 0.6 R of CPU
// (UDP to its external machine, vm_ext = 60 units per packet), green's router 0.2 R, then
// steps to 1.5 R and back; the daemon's status is sampled every period.
// Paper VII names "a faster stabilization of the punishment" as future work.
import { compareLaws } from '../laws/index.js';
import { defaultCosts } from '../../src/config/costs.js';
import {
  experimentCommand,
  meanCi,
  pct,
  resourceOf,
  sleep,
  withLab,
  writeFigure,
  type Experiment,
  type ExperimentContext,
  type ExperimentResult,
  type LabSession,
} from './common.js';

type Law = 'share' | 'algorithm1';
const LAWS: Law[] = ['share', 'algorithm1'];

/** R in cost units per second: small enough that 64-byte UDP at a few kpps from a router is contention. */
const CAPACITY = 500_000;
const PERIOD_MS = 100;
const UDP_BYTES = 64;
const HOLD = 10;

interface PeriodSample {
  period: number;
  offered: [number, number];
  carried: [number, number];
  target: [number, number];
  p: [number, number];
}
interface LabRun {
  law: Law;
  trace: PeriodSample[];
  stepUp: number;
  stepDown: number;
}

/** iperf3's -b for `units` cost units per second of 64-byte UDP from a router. */
function udpRate(units: number): string {
  const pps = units / defaultCosts.vmExt;
  return `${Math.round(pps * UDP_BYTES * 8)}`;
}

function within(s: PeriodSample, tolerance: number): boolean {
  return [0, 1].every((i) => s.target[i] <= 0 || Math.abs(s.carried[i] - s.target[i]) <= tolerance * s.target[i]);
}

/** Periods from `from` until every network is within tolerance and stays so to `to` (at least HOLD periods); null = never. Same definition as the simulator's settleTime. */
/** Periods from `from` until the first period with every network within tolerance; null = never before `to`. */
export function reachPeriods(
  trace: readonly PeriodSample[],
  from: number,
  to: number,
  tolerance: number,
): number | null {
  const first = trace.find((s) => s.period >= from && s.period < to && within(s, tolerance));
  return first ? first.period - from : null;
}

export function settlePeriods(
  trace: readonly PeriodSample[],
  from: number,
  to: number,
  tolerance: number,
): number | null {
  const window = trace.filter((s) => s.period >= from && s.period < to);
  if (!window.length) return null;
  let since = to;
  for (let i = window.length - 1; i >= 0 && within(window[i], tolerance); i--) since = window[i].period;
  if (to - since < Math.min(HOLD, to - from)) return null;
  return since - from;
}

async function labRun(
  lab: LabSession,
  law: Law,
  seconds: { before: number; high: number; after: number },
): Promise<LabRun> {
  const [blue, green] = lab.topology.networks;
  lab.setHostSetting('control_law', law);
  await lab.startDaemon(true);
  lab.loadRoutes(); // without routes, the external machines' replies to the routers have no way back
  const servers = [
    lab.spawn(blue.externals[1].ns, ['iperf3', '-s', '-1', '-p', '5331']),
    lab.spawn(green.externals[1].ns, ['iperf3', '-s', '-1', '-p', '5332']),
    lab.spawn(green.externals[1].ns, ['iperf3', '-s', '-1', '-p', '5333']),
  ];
  await sleep(300);
  const total = seconds.before + seconds.high + seconds.after;
  const udp = (ns: string, dst: string, port: number, units: number, t: number) =>
    lab.spawn(ns, [
      'iperf3',
      '-c',
      dst,
      '-p',
      String(port),
      '-u',
      '-l',
      String(UDP_BYTES),
      '-b',
      udpRate(units),
      '-t',
      String(t),
    ]);
  const jobs = [
    udp(blue.router.ns, blue.externals[1].iface.address, 5331, 0.6 * CAPACITY, total + 1),
    udp(green.router.ns, green.externals[1].iface.address, 5332, 0.2 * CAPACITY, total + 1),
  ];
  const trace: PeriodSample[] = [];
  let stepUp = -1;
  let stepDown = -1;
  let last = -1;
  const start = Date.now();
  let high: ReturnType<LabSession['spawn']> | undefined;
  while (Date.now() - start < total * 1000) {
    const elapsed = (Date.now() - start) / 1000;
    if (!high && elapsed >= seconds.before) {
      // The step: green's router adds 1.3 R (1.5 R in all) for `high` seconds.
      high = udp(green.router.ns, green.externals[1].iface.address, 5333, 1.3 * CAPACITY, seconds.high);
      jobs.push(high);
      stepUp = last + 1;
    }
    if (high && stepDown < 0 && elapsed >= seconds.before + seconds.high) stepDown = last + 1;
    const s = await lab.status();
    const period = s.lastPeriod?.period ?? -1;
    if (period !== last && period >= 0) {
      const [b, g] = [resourceOf(s.networks[0], 'cpu'), resourceOf(s.networks[1], 'cpu')];
      trace.push({
        period,
        offered: [b.offered, g.offered],
        carried: [b.carried, g.carried],
        target: [b.target, g.target],
        p: [b.dropProbability, g.dropProbability],
      });
      last = period;
    }
    await sleep(PERIOD_MS / 4);
  }
  for (const j of [...jobs, ...servers]) j.child.kill('SIGKILL');
  await Promise.all([...jobs, ...servers].map((j) => j.done));
  // The step as the data plane saw it: the first period in which green offered more than 0.5 R
  // (0.2 R before, 1.5 R after), and the first after it in which it offered less again.
  const half = (0.5 * CAPACITY * PERIOD_MS) / 1000;
  const seenUp = trace.find((x) => x.period >= stepUp && x.offered[1] > half)?.period ?? stepUp;
  const seenDown =
    trace.find((x) => x.period > seenUp && x.period >= stepDown - 5 && x.offered[1] < half)?.period ??
    (stepDown < 0 ? last : stepDown);
  return { law, trace, stepUp: seenUp, stepDown: seenDown };
}

export const convergenceExperiment: Experiment = {
  name: 'convergence',
  title: 'Punishment convergence after a step in demand: Algorithm 1 vs the share law',
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const reps = ctx.quick ? 1 : 3;
    const seconds = ctx.quick ? { before: 2, high: 5, after: 3 } : { before: 3, high: 8, after: 5 };
    const command = experimentCommand('convergence', ctx.quick);

    // The simulator: compareLaws' scenario (b) is the same demand (0.6 R; 0.2 R -> 1.5 R -> 0.2 R).
    const report = compareLaws();
    const b = report.scenarios.find((s) => s.id === 'b')!;
    const noisy = report.scenarios.find((s) => s.id === 'a+noise');
    const simulator = Object.fromEntries(
      LAWS.map((law) => [
        law,
        {
          settle_after_step_up: b.laws[law].settlePeriods[0],
          settle_after_step_down: b.laws[law].settlePeriods[1],
          mean_share_error: b.laws[law].meanShareError,
          settle_with_5pct_noise_15pct_tolerance: noisy?.laws[law].settlePeriods[0] ?? null,
        },
      ]),
    ) as Record<
      Law,
      {
        settle_after_step_up: number | null;
        settle_after_step_down: number | null;
        mean_share_error: number;
        settle_with_5pct_noise_15pct_tolerance: number | null;
      }
    >;

    const runs: LabRun[] = [];
    await withLab({ tag: 'xec', config: { cpuCapacity: CAPACITY, periodMs: PERIOD_MS } }, async (lab) => {
      for (let r = 0; r < reps; r++) {
        for (const law of r % 2 ? [...LAWS].reverse() : LAWS) {
          const run = await labRun(lab, law, seconds);
          runs.push(run);
          ctx.log(
            `  ${law}: step up at period ${run.stepUp}, settle (5 %) ${settlePeriods(run.trace, run.stepUp, run.stepDown, 0.05) ?? 'never'}, (10 %) ${settlePeriods(run.trace, run.stepUp, run.stepDown, 0.1) ?? 'never'}`,
          );
        }
      }
    });

    const labSummary = (law: Law) => {
      const rs = runs.filter((x) => x.law === law);
      const settle = (tol: number) => rs.map((x) => settlePeriods(x.trace, x.stepUp, x.stepDown, tol));
      const after = rs.flatMap((x) => x.trace.filter((s) => s.period >= x.stepUp + 5 && s.period < x.stepDown));
      const shareErr = after.flatMap((s) =>
        [0, 1].filter((i) => s.target[i] > 0).map((i) => Math.abs(s.carried[i] - s.target[i]) / s.target[i]),
      );
      // Blue's guarantee: min(offered, alpha R) with alpha 0.5.
      const guarantee = (s: PeriodSample) => Math.min(s.offered[0], (0.5 * CAPACITY * PERIOD_MS) / 1000);
      const blueShort = after.filter((s) => s.carried[0] < 0.95 * guarantee(s)).length;
      return {
        settle_5pct: settle(0.05),
        settle_10pct: settle(0.1),
        first_within_5pct: rs.map((x) => reachPeriods(x.trace, x.stepUp, x.stepDown, 0.05)),
        within_5pct_share_of_periods: after.length ? after.filter((s) => within(s, 0.05)).length / after.length : NaN,
        mean_share_error: meanCi(shareErr).mean,
        blue_below_95pct_of_guarantee_periods: blueShort,
        periods_after_step: after.length,
      };
    };
    const lab = { share: labSummary('share'), algorithm1: labSummary('algorithm1') };

    const files = LAWS.map((law) => {
      const run = runs.find((x) => x.law === law)!;
      const cap = (CAPACITY * PERIOD_MS) / 1000;
      const pts = (f: (s: PeriodSample) => number) => run.trace.map((s) => [s.period - run.stepUp, f(s)] as const);
      return writeFigure(
        ctx,
        `convergence-${law}.svg`,
        {
          title: `CPU carried per period, ${law === 'share' ? 'share law' : 'Algorithm 1'} (lab, step at 0)`,
          xLabel: 'period after the step (T = 100 ms)',
          yLabel: 'share of R',
          series: [
            { name: 'blue carried', points: pts((s) => s.carried[0] / cap) },
            { name: 'green carried', points: pts((s) => s.carried[1] / cap) },
            { name: 'blue target', points: pts((s) => s.target[0] / cap) },
            { name: 'green target', points: pts((s) => s.target[1] / cap) },
          ],
          marks: [
            { x: 0, label: 'green 0.2 R -> 1.5 R (first period seen)' },
            { x: run.stepDown - run.stepUp, label: 'back to 0.2 R' },
          ],
        },
        command,
      );
    });
    const settleText = (xs: (number | null)[]) => xs.map((x) => (x === null ? 'never' : String(x))).join(', ');
    const markdown = [
      `Simulator (\`compareLaws()\`, scenario b: common alpha 0.5 offers 0.6 R, opponent alpha 0.3 steps 0.2 R -> 1.5 R at period 30 and back at 80, W 500, beta 0.9, exact data plane) and lab (the same demands as UDP from the routers, 64-byte packets at vm_ext = ${defaultCosts.vmExt} units, cpu_capacity ${CAPACITY} units/s, T = ${PERIOD_MS} ms, status read every period; ${reps} step(s) per law). The step's period is the first in which the data plane saw green offer more than 0.5 R. Settle = periods from the step until both networks are within the tolerance of their target and stay so until the next step (at least ${HOLD} periods), the simulator's definition.`,
      '',
      '| law | simulator: settle after step up / down (periods) | simulator: mean share error | lab: settle after step up, 5 % (periods, per step) | lab: settle, 10 % | lab: first period within 5 % | lab: periods within 5 % after the step | lab: mean share error after the step | lab: periods blue < 95 % of its guarantee |',
      '| --- | --- | ---: | --- | --- | --- | ---: | ---: | ---: |',
      ...LAWS.map(
        (law) =>
          `| ${law} | ${simulator[law].settle_after_step_up ?? 'never'} / ${simulator[law].settle_after_step_down ?? 'never'} | ${pct(simulator[law].mean_share_error)} | ${settleText(lab[law].settle_5pct)} | ${settleText(lab[law].settle_10pct)} | ${settleText(lab[law].first_within_5pct)} | ${pct(lab[law].within_5pct_share_of_periods)} | ${pct(lab[law].mean_share_error)} | ${lab[law].blue_below_95pct_of_guarantee_periods} of ${lab[law].periods_after_step} |`,
      ),
      '',
      `In the simulator with 5 % demand noise (scenario a+noise, 15 % tolerance): share ${simulator.share.settle_with_5pct_noise_15pct_tolerance ?? 'never'}, Algorithm 1 ${simulator.algorithm1.settle_with_5pct_noise_15pct_tolerance ?? 'never'} periods.`,
      'In the lab a period\'s carried units are a random draw: green, punished to about a quarter of its packets, passes a binomial number of them, whose spread per period is a few percent of its target (a few hundred packets per 100 ms period), so "within 5 % and staying there" is at the edge of the measurement noise; the first period within 5 %, the share of periods within 5 % and the mean share error after the step say how close each law holds.',
    ].join('\n');
    const targets = [
      {
        target: 'simulator: settle within 5 % after the step, share law vs Algorithm 1',
        met: null,
        measured: `share ${simulator.share.settle_after_step_up ?? 'never'}, Algorithm 1 ${simulator.algorithm1.settle_after_step_up ?? 'never'} periods`,
      },
      {
        target:
          'lab: periods after the step until first within 5 %; settled for good (5 %); periods within 5 %; mean share error: share law vs Algorithm 1',
        met: null,
        measured: `share ${settleText(lab.share.first_within_5pct)}; ${settleText(lab.share.settle_5pct)}; ${pct(lab.share.within_5pct_share_of_periods)}; ${pct(lab.share.mean_share_error)} vs Algorithm 1 ${settleText(lab.algorithm1.first_within_5pct)}; ${settleText(lab.algorithm1.settle_5pct)}; ${pct(lab.algorithm1.within_5pct_share_of_periods)}; ${pct(lab.algorithm1.mean_share_error)}`,
      },
    ];
    return {
      name: 'convergence',
      title: this.title,
      command,
      markdown,
      targets,
      figures: {
        capacity_units_per_s: CAPACITY,
        period_ms: PERIOD_MS,
        simulator,
        lab,
        runs: runs.map((x) => ({ law: x.law, step_up: x.stepUp, step_down: x.stepDown, trace: x.trace })),
      },
      files,
    };
  },
};
