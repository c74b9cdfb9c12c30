// A closed-loop model of one resource: the networks' demand, the data plane's drops, the host's own
// overload, and a control law closing the loop once per period. Pure and seeded: the same options give
// the same trace, so tests and docs/control.md can quote exact figures.
//
// Plant, per period k:
//   offered_i  = demand_i(k) * (1 + noise * N(0, 1)), at least 0
//   carried_i  = offered_i * (1 - min(1, dropGain * p_i))        (the data plane's drop)
//   if sum_i carried_i > R: carried_i *= R / sum_i carried_i      (the host is the bottleneck and
//                                                                  drops indiscriminately: the unfair
//                                                                  overload the controller prevents)
// then the law sees { R, offered, carried } and sets p_i for period k + 1.

import { ValidationError } from '../../src/errors/index.js';
import { weightedMaxMinTargets } from '../../src/control/law/targets.js';
import { createLawState } from '../../src/control/law/types.js';
import type { ControlLaw, LawName, NetworkTable } from '../../src/control/law/types.js';
import { requireFraction, requireNonNegative, requireSlotCount } from '../../src/control/law/validate.js';

export interface SimulatedNetwork {
  readonly alpha: number;
  readonly weight: number;
  /** Demand in the period, in the resource's units (same units as capacity). */
  readonly offered: (period: number) => number;
}

export interface SimulationOptions {
  readonly law: ControlLaw;
  readonly networks: readonly SimulatedNetwork[];
  /** R(t) in units per period, constant or per period. */
  readonly capacity: number | ((period: number) => number);
  readonly periods: number;
  /** Relative standard deviation of each network's offered load, per period; default 0. */
  readonly noise?: number;
  /** Seed of the noise generator; default 1. */
  readonly seed?: number;
  /** The data plane drops dropGain * p instead of p (a plant mismatch); default 1. */
  readonly dropGain?: number;
}

/** Everything is indexed [period][network]; `dropProbability` is what the data plane applied. */
export interface SimulationTrace {
  readonly law: LawName;
  readonly beta: number;
  readonly periods: number;
  readonly alpha: readonly number[];
  readonly weight: readonly number[];
  readonly capacity: readonly number[];
  readonly offered: readonly (readonly number[])[];
  readonly carried: readonly (readonly number[])[];
  readonly dropProbability: readonly (readonly number[])[];
  /** Weighted max-min target of the period's offered load (targets.ts), with the law's beta. */
  readonly target: readonly (readonly number[])[];
  /** The host dropped indiscriminately in this period (sum of carried hit R). */
  readonly hostOverloaded: readonly boolean[];
}

export function simulate(options: SimulationOptions): SimulationTrace {
  const { law, networks } = options;
  requireSlotCount('periods', options.periods);
  const noise = options.noise ?? 0;
  const dropGain = options.dropGain ?? 1;
  requireNonNegative('noise', noise);
  requireNonNegative('dropGain', dropGain);
  const count = networks.length;
  const table: NetworkTable = {
    count,
    alpha: networks.map((network) => network.alpha),
    weight: networks.map((network) => network.weight),
  };
  const random = gaussian(options.seed ?? 1);
  const state = createLawState(count);
  const offered = new Float64Array(count);
  const carried = new Float64Array(count);
  const trace = {
    law: law.name,
    beta: law.beta,
    periods: options.periods,
    alpha: Array.from(table.alpha),
    weight: Array.from(table.weight),
    capacity: [] as number[],
    offered: [] as number[][],
    carried: [] as number[][],
    dropProbability: [] as number[][],
    target: [] as number[][],
    hostOverloaded: [] as boolean[],
  };

  for (let period = 0; period < options.periods; period++) {
    const capacity = typeof options.capacity === 'function' ? options.capacity(period) : options.capacity;
    requireNonNegative(`capacity(${period})`, capacity);
    let totalCarried = 0;
    for (let slot = 0; slot < count; slot++) {
      const demand = networks[slot].offered(period);
      requireNonNegative(`networks[${slot}].offered(${period})`, demand);
      offered[slot] = noise > 0 ? Math.max(0, demand * (1 + noise * random())) : demand;
      const dropped = Math.min(1, dropGain * state.dropProbability[slot]);
      carried[slot] = offered[slot] * (1 - dropped);
      totalCarried += carried[slot];
    }
    const hostOverloaded = totalCarried > capacity;
    if (hostOverloaded) {
      const scale = capacity / totalCarried;
      for (let slot = 0; slot < count; slot++) carried[slot] *= scale;
    }
    trace.capacity.push(capacity);
    trace.offered.push(Array.from(offered));
    trace.carried.push(Array.from(carried));
    trace.dropProbability.push(Array.from(state.dropProbability));
    trace.target.push(Array.from(weightedMaxMinTargets(table, offered, capacity, law.beta)));
    trace.hostOverloaded.push(hostOverloaded);
    law.step(table, { capacity, offered, carried }, state);
  }
  return trace;
}

/** A half-open range of periods [from, to) of a trace; defaults to the whole trace. */
export interface TraceWindow {
  readonly from?: number;
  readonly to?: number;
}

function windowOf(trace: SimulationTrace, window: TraceWindow = {}): { from: number; to: number } {
  const from = window.from ?? 0;
  const to = window.to ?? trace.periods;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > trace.periods || from > to) {
    throw new ValidationError('window', `[${from}, ${to}) is not inside [0, ${trace.periods})`);
  }
  return { from, to };
}

/** Every network's carried load is within `tolerance` x its target in this period. */
function withinTolerance(trace: SimulationTrace, period: number, tolerance: number): boolean {
  const carried = trace.carried[period];
  const target = trace.target[period];
  // The absolute floor only forgives rounding (targets of 0 must be met by carrying ~0).
  const floor = 1e-9 * trace.capacity[period];
  for (let slot = 0; slot < carried.length; slot++) {
    if (Math.abs(carried[slot] - target[slot]) > tolerance * target[slot] + floor) return false;
  }
  return true;
}

export interface SettleOptions extends TraceWindow {
  /** Settled means staying within tolerance for at least this many periods (or to the window's end). */
  readonly hold?: number;
}

/**
 * Periods after `from` until every network's carried load is within `tolerance` of its target and
 * stays there to the end of the window (for at least `hold` periods, default 10); null if never.
 */
export function settleTime(trace: SimulationTrace, tolerance = 0.05, options: SettleOptions = {}): number | null {
  requireFraction('tolerance', tolerance);
  const { from, to } = windowOf(trace, options);
  const hold = Math.min(options.hold ?? 10, to - from);
  let settledSince = to;
  for (let period = to - 1; period >= from && withinTolerance(trace, period, tolerance); period--) {
    settledSince = period;
  }
  if (to === from || to - settledSince < hold) return null;
  return settledSince - from;
}

/** Mean of |carried_i - target_i| / target_i over the window's periods and networks with a target. */
export function shareError(trace: SimulationTrace, window: TraceWindow = {}): number {
  const { from, to } = windowOf(trace, window);
  let sum = 0;
  let samples = 0;
  for (let period = from; period < to; period++) {
    const carried = trace.carried[period];
    const target = trace.target[period];
    for (let slot = 0; slot < carried.length; slot++) {
      if (target[slot] > 0) {
        sum += Math.abs(carried[slot] - target[slot]) / target[slot];
        samples++;
      }
    }
  }
  return samples === 0 ? 0 : sum / samples;
}

export interface Oscillation {
  /** Largest standard deviation of one network's drop probability over the window. */
  readonly probabilityStd: number;
  /** Direction changes of the drop probabilities (moves under 1e-6 ignored), summed over networks. */
  readonly reversals: number;
}

export function oscillation(trace: SimulationTrace, window: TraceWindow = {}): Oscillation {
  const { from, to } = windowOf(trace, window);
  const networks = trace.alpha.length;
  let probabilityStd = 0;
  let reversals = 0;
  for (let slot = 0; slot < networks; slot++) {
    let sum = 0;
    let sumOfSquares = 0;
    let lastDirection = 0;
    for (let period = from; period < to; period++) {
      const probability = trace.dropProbability[period][slot];
      sum += probability;
      sumOfSquares += probability * probability;
      if (period > from) {
        const move = probability - trace.dropProbability[period - 1][slot];
        const direction = move > 1e-6 ? 1 : move < -1e-6 ? -1 : 0;
        if (direction !== 0) {
          if (lastDirection !== 0 && direction !== lastDirection) reversals++;
          lastDirection = direction;
        }
      }
    }
    const periods = to - from;
    if (periods > 0) {
      const mean = sum / periods;
      probabilityStd = Math.max(probabilityStd, Math.sqrt(Math.max(0, sumOfSquares / periods - mean * mean)));
    }
  }
  return { probabilityStd, reversals };
}

export interface ReservationShortfall {
  /** Periods in which the network carried less than min(offered, alpha R). */
  readonly periods: number;
  /** Smallest carried / min(offered, alpha R) seen (1 when never short). */
  readonly worstFraction: number;
}

/** How often, and how badly, network `slot` was pushed under min(offered_i, alpha_i R). */
export function reservationShortfall(
  trace: SimulationTrace,
  slot: number,
  window: TraceWindow = {},
): ReservationShortfall {
  const { from, to } = windowOf(trace, window);
  let periods = 0;
  let worstFraction = 1;
  for (let period = from; period < to; period++) {
    const guaranteed = Math.min(trace.offered[period][slot], trace.alpha[slot] * trace.capacity[period]);
    if (guaranteed <= 0) continue;
    const fraction = trace.carried[period][slot] / guaranteed;
    if (fraction < 1 - 1e-9) periods++;
    worstFraction = Math.min(worstFraction, fraction);
  }
  return { periods, worstFraction };
}

/** Mean carried load of network `slot` as a fraction of R over the window. */
export function meanCarriedShare(trace: SimulationTrace, slot: number, window: TraceWindow = {}): number {
  const { from, to } = windowOf(trace, window);
  let sum = 0;
  for (let period = from; period < to; period++) sum += trace.carried[period][slot] / trace.capacity[period];
  return to > from ? sum / (to - from) : 0;
}

/** Seeded standard normal generator: mulberry32 uniforms through Box-Muller. */
function gaussian(seed: number): () => number {
  let stateWord = seed >>> 0;
  const uniform = (): number => {
    stateWord = (stateWord + 0x6d2b79f5) >>> 0;
    let mixed = stateWord;
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    return radius * Math.cos(2 * Math.PI * uniform());
  };
}
