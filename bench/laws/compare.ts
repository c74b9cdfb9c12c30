// Algorithm 1 against the share law on the same closed-loop traces (simulate.ts). The figures in
// docs/control.md are the output of `compareLaws()`, printed by compare-cli.ts.

import { XnetmonError } from '../../src/errors/index.js';
import { algorithm1Law } from '../../src/control/law/algorithm1-law.js';
import { DEFAULT_BETA, DEFAULT_PHI_INITIAL } from '../../src/control/law/defaults.js';
import { shareLaw } from '../../src/control/law/share-law.js';
import { meanCarriedShare, oscillation, reservationShortfall, settleTime, shareError, simulate } from './simulate.js';
import type { SimulatedNetwork, SimulationTrace } from './simulate.js';
import type { ControlLaw, LawName } from '../../src/control/law/types.js';

/** Units per period; any value works, the figures are reported as fractions of it. */
const CAPACITY = 1000;
const SETTLE_TOLERANCE = 0.05;

export interface LawFigures {
  /** Periods from the start of the window until within tolerance for good; null = never. */
  readonly settlePeriods: readonly (number | null)[];
  /** Mean |carried - target| / target over the whole run. */
  readonly meanShareError: number;
  /** Largest std of a drop probability over the second half of each settle window. */
  readonly probabilityStd: number;
  /** Direction changes of the drop probabilities over the same windows. */
  readonly reversals: number;
  /** Periods in which a protected network carried less than min(offered, alpha R). */
  readonly periodsBelowReservation: number;
  /** Smallest carried / min(offered, alpha R) of a protected network. */
  readonly worstFractionOfReservation: number;
  /** Mean carried share of R per network over the whole run. */
  readonly meanCarriedShare: readonly number[];
}

export interface ScenarioFigures {
  readonly id: string;
  readonly description: string;
  readonly periods: number;
  readonly tolerance: number;
  /** Windows [from, to) over which settle time is measured (one per demand change). */
  readonly settleWindows: readonly (readonly [number, number])[];
  /** Networks whose reservation is checked ("the common network" where there is one). */
  readonly protectedNetworks: readonly number[];
  /** Weighted max-min target share of R per network at the scenario's steady demand. */
  readonly targetShare: readonly number[];
  readonly laws: Readonly<Record<LawName, LawFigures>>;
}

export interface Algorithm1Cycle {
  /** Periods at which the opponent's Phi fell by more than half in one step ("fast reduce"). */
  readonly fastReducePeriods: readonly number[];
  /** Gaps between successive fast-reduce events. */
  readonly cycleLengths: readonly number[];
  /** Periods in which the opponent carried less than its own alpha R. */
  readonly opponentBelowAlphaPeriods: number;
  /** Periods in which the host was overloaded (sum of carried hit R). */
  readonly hostOverloadedPeriods: number;
  /** Periods in which the common network carried less than min(offered, alpha R). */
  readonly commonBelowReservationPeriods: number;
  readonly periods: number;
  readonly commonMeanShare: number;
  readonly opponentMeanShare: number;
  readonly commonTargetShare: number;
  readonly opponentTargetShare: number;
}

export interface SensitivityRow {
  readonly parameter: 'phiInitial' | 'beta' | 'weight';
  readonly value: number;
  readonly settles: boolean;
  readonly medianCycleLength: number | null;
  readonly commonBelowReservationPeriods: number;
  readonly periods: number;
}

export interface MarginRow {
  readonly reservationMargin: number;
  readonly noise: number;
  /** Share of periods (after the first) in which the common network carried < min(offered, alpha R). */
  readonly belowReservationShare: number;
  readonly worstFractionOfReservation: number;
  readonly meanShareError: number;
}

export interface ComparisonReport {
  readonly capacity: number;
  readonly beta: number;
  readonly phiInitial: number;
  readonly settleTolerance: number;
  readonly scenarios: readonly ScenarioFigures[];
  /** Scenario (a) under Algorithm 1, event by event: the claim, checked. */
  readonly algorithm1Cycle: Algorithm1Cycle;
  /** Scenario (a) under Algorithm 1 with one parameter changed at a time. */
  readonly algorithm1Sensitivity: readonly SensitivityRow[];
  /** Scenario (a) with noise under the share law, for several reservation margins; 8 seeds x 200 periods. */
  readonly shareMarginSweep: readonly MarginRow[];
  readonly defaultLaw: LawName;
}

interface Scenario {
  readonly id: string;
  readonly description: string;
  readonly networks: readonly SimulatedNetwork[];
  readonly periods: number;
  readonly settleWindows: readonly (readonly [number, number])[];
  readonly protectedNetworks: readonly number[];
  readonly steadyPeriod: number;
  readonly tolerance?: number;
  readonly noise?: number;
  readonly dropGain?: number;
}

const constant = (share: number) => (): number => share * CAPACITY;

function contention(): SimulatedNetwork[] {
  return [
    { alpha: 0.5, weight: 500, offered: constant(0.6) },
    { alpha: 0.3, weight: 500, offered: constant(1.5) },
  ];
}

function scenarios(): Scenario[] {
  return [
    {
      id: 'a',
      description: 'common alpha 0.5 offers 0.6 R, opponent alpha 0.3 offers 1.5 R, W 500 each',
      networks: contention(),
      periods: 100,
      settleWindows: [[0, 100]],
      protectedNetworks: [0],
      steadyPeriod: 99,
    },
    {
      id: 'b',
      description: 'as (a), opponent steps 0.2 R -> 1.5 R at period 30 and back to 0.2 R at 80',
      networks: [
        { alpha: 0.5, weight: 500, offered: constant(0.6) },
        { alpha: 0.3, weight: 500, offered: (period) => (period >= 30 && period < 80 ? 1.5 : 0.2) * CAPACITY },
      ],
      periods: 130,
      settleWindows: [
        [30, 80],
        [80, 130],
      ],
      protectedNetworks: [0],
      steadyPeriod: 79,
    },
    {
      id: 'c',
      description: 'unequal weights: W 100 vs 900, alpha 0.1 each, both offer 1.0 R',
      networks: [
        { alpha: 0.1, weight: 100, offered: constant(1) },
        { alpha: 0.1, weight: 900, offered: constant(1) },
      ],
      periods: 100,
      settleWindows: [[0, 100]],
      protectedNetworks: [0, 1],
      steadyPeriod: 99,
    },
    {
      id: 'd',
      description: 'no contention: alpha 0.5 offers 0.3 R, alpha 0.3 offers 0.2 R, W 500 each',
      networks: [
        { alpha: 0.5, weight: 500, offered: constant(0.3) },
        { alpha: 0.3, weight: 500, offered: constant(0.2) },
      ],
      periods: 100,
      settleWindows: [[0, 100]],
      protectedNetworks: [0, 1],
      steadyPeriod: 99,
    },
    {
      id: 'a+noise',
      description: 'as (a) with 5 % Gaussian noise on every offered load (settle tolerance 15 %)',
      networks: contention(),
      periods: 100,
      settleWindows: [[0, 100]],
      protectedNetworks: [0],
      steadyPeriod: 99,
      noise: 0.05,
      tolerance: 0.15,
    },
    {
      id: 'a+mismatch',
      description: 'as (a) with a data plane that drops only 0.8 p of what it is told (p)',
      networks: contention(),
      periods: 100,
      settleWindows: [[0, 100]],
      protectedNetworks: [0],
      steadyPeriod: 99,
      dropGain: 0.8,
    },
  ];
}

function run(scenario: Scenario, law: ControlLaw): SimulationTrace {
  return simulate({
    law,
    networks: scenario.networks,
    capacity: CAPACITY,
    periods: scenario.periods,
    noise: scenario.noise,
    seed: 7,
    dropGain: scenario.dropGain,
  });
}

function figures(scenario: Scenario, trace: SimulationTrace, tolerance: number): LawFigures {
  let probabilityStd = 0;
  let reversals = 0;
  for (const [from, to] of scenario.settleWindows) {
    const settled = oscillation(trace, { from: from + Math.floor((to - from) / 2), to });
    probabilityStd = Math.max(probabilityStd, settled.probabilityStd);
    reversals += settled.reversals;
  }
  let periodsBelowReservation = 0;
  let worstFractionOfReservation = 1;
  for (const slot of scenario.protectedNetworks) {
    const shortfall = reservationShortfall(trace, slot);
    periodsBelowReservation = Math.max(periodsBelowReservation, shortfall.periods);
    worstFractionOfReservation = Math.min(worstFractionOfReservation, shortfall.worstFraction);
  }
  return {
    settlePeriods: scenario.settleWindows.map(([from, to]) => settleTime(trace, tolerance, { from, to })),
    meanShareError: shareError(trace),
    probabilityStd,
    reversals,
    periodsBelowReservation,
    worstFractionOfReservation,
    meanCarriedShare: scenario.networks.map((_, slot) => meanCarriedShare(trace, slot)),
  };
}

function analyseCycle(trace: SimulationTrace, common: number, opponent: number): Algorithm1Cycle {
  const fastReducePeriods: number[] = [];
  let opponentBelowAlphaPeriods = 0;
  let hostOverloadedPeriods = 0;
  for (let period = 0; period < trace.periods; period++) {
    const phi = trace.dropProbability[period][opponent];
    if (period > 0) {
      const before = trace.dropProbability[period - 1][opponent];
      if (before > 0 && phi < before / 2) fastReducePeriods.push(period);
    }
    if (trace.carried[period][opponent] < trace.alpha[opponent] * trace.capacity[period]) opponentBelowAlphaPeriods++;
    if (trace.hostOverloaded[period]) hostOverloadedPeriods++;
  }
  const cycleLengths = fastReducePeriods.slice(1).map((period, index) => period - fastReducePeriods[index]);
  const last = trace.periods - 1;
  return {
    fastReducePeriods,
    cycleLengths,
    opponentBelowAlphaPeriods,
    hostOverloadedPeriods,
    commonBelowReservationPeriods: reservationShortfall(trace, common).periods,
    periods: trace.periods,
    commonMeanShare: meanCarriedShare(trace, common),
    opponentMeanShare: meanCarriedShare(trace, opponent),
    commonTargetShare: trace.target[last][common] / trace.capacity[last],
    opponentTargetShare: trace.target[last][opponent] / trace.capacity[last],
  };
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.floor(sorted.length / 2)];
}

function sensitivity(): SensitivityRow[] {
  const rows: SensitivityRow[] = [];
  const periods = 200;
  const variants: { parameter: SensitivityRow['parameter']; value: number }[] = [
    ...[0.01, 0.1, 0.5].map((value) => ({ parameter: 'phiInitial' as const, value })),
    ...[0.8, 0.9, 1].map((value) => ({ parameter: 'beta' as const, value })),
    ...[2, 10, 500, 1000].map((value) => ({ parameter: 'weight' as const, value })),
  ];
  for (const { parameter, value } of variants) {
    const law = algorithm1Law({
      beta: parameter === 'beta' ? value : DEFAULT_BETA,
      phiInitial: parameter === 'phiInitial' ? value : DEFAULT_PHI_INITIAL,
    });
    const weight = parameter === 'weight' ? value : 500;
    const networks = contention().map((network) => ({ ...network, weight }));
    const trace = simulate({ law, networks, capacity: CAPACITY, periods });
    const cycle = analyseCycle(trace, 0, 1);
    rows.push({
      parameter,
      value,
      settles: settleTime(trace, SETTLE_TOLERANCE) !== null,
      medianCycleLength: median(cycle.cycleLengths),
      commonBelowReservationPeriods: cycle.commonBelowReservationPeriods,
      periods,
    });
  }
  return rows;
}

function marginSweep(): MarginRow[] {
  const rows: MarginRow[] = [];
  const periods = 200;
  const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
  for (const reservationMargin of [0, 0.1, 0.2]) {
    for (const noise of [0.05, 0.1]) {
      let below = 0;
      let worst = 1;
      let error = 0;
      for (const seed of seeds) {
        const trace = simulate({
          law: shareLaw({ beta: DEFAULT_BETA, reservationMargin }),
          networks: contention(),
          capacity: CAPACITY,
          periods,
          noise,
          seed,
        });
        // Period 0 is before any control: every law loses it, so it is left out.
        const shortfall = reservationShortfall(trace, 0, { from: 1 });
        below += shortfall.periods;
        worst = Math.min(worst, shortfall.worstFraction);
        error += shareError(trace, { from: 1 });
      }
      rows.push({
        reservationMargin,
        noise,
        belowReservationShare: below / (seeds.length * (periods - 1)),
        worstFractionOfReservation: worst,
        meanShareError: error / seeds.length,
      });
    }
  }
  return rows;
}

/** Runs every scenario under both laws with the default parameters; deterministic. */
export function compareLaws(): ComparisonReport {
  const beta = DEFAULT_BETA;
  const phiInitial = DEFAULT_PHI_INITIAL;
  const results: ScenarioFigures[] = [];
  let cycle: Algorithm1Cycle | undefined;
  for (const scenario of scenarios()) {
    const tolerance = scenario.tolerance ?? SETTLE_TOLERANCE;
    const algorithm1Trace = run(scenario, algorithm1Law({ beta, phiInitial }));
    const shareTrace = run(scenario, shareLaw({ beta }));
    if (scenario.id === 'a') cycle = analyseCycle(algorithm1Trace, 0, 1);
    results.push({
      id: scenario.id,
      description: scenario.description,
      periods: scenario.periods,
      tolerance,
      settleWindows: scenario.settleWindows,
      protectedNetworks: scenario.protectedNetworks,
      // Noise-free target of the steady demand (the traces' targets follow the noisy samples).
      targetShare: simulate({
        law: shareLaw({ beta }),
        networks: scenario.networks,
        capacity: CAPACITY,
        periods: scenario.steadyPeriod + 1,
      }).target[scenario.steadyPeriod].map((units) => units / CAPACITY),
      laws: {
        algorithm1: figures(scenario, algorithm1Trace, tolerance),
        share: figures(scenario, shareTrace, tolerance),
      },
    });
  }
  if (cycle === undefined) throw new XnetmonError('ERR_INTERNAL', 'scenario (a) is missing from the comparison');
  return {
    capacity: CAPACITY,
    beta,
    phiInitial,
    settleTolerance: SETTLE_TOLERANCE,
    scenarios: results,
    algorithm1Cycle: cycle,
    algorithm1Sensitivity: sensitivity(),
    shareMarginSweep: marginSweep(),
    defaultLaw: 'share',
  };
}
