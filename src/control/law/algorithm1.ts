// Algorithm 1 of the paper ("Heuristics for punishment computing"), as a pure function.
//
// The only departures from the printed algorithm are choices the paper leaves open, each marked
// DEPARTURE below:
//   1. D(t) = 0 (every unit reserved): Upsilon_i is taken as 1 ("uses all of the idle share")
//      instead of a division by zero.
//   2. The result is clamped to [0, 1] in every branch. The printed "reduce" branch only clamps at 0,
//      and it *raises* Phi when Upsilon_i > 2 (its factor 1 + (1 - Upsilon_i) turns negative), which
//      could otherwise leave [0, 1].
// Oddities kept on purpose because they are the paper's (see docs/control.md):
//   - the "fast reduce" branch is Phi_i - 3 (1 - 1/W_i) Phi_i / 3 = Phi_i / W_i: W = 1000 nearly
//     resets at once, W = 1 never decays at all;
//   - with W = 1 the "reduce" branch is also a no-op (factor 1 - 1/W = 0): once punished, a W = 1
//     network's punishment never goes down;
//   - with Upsilon_i > 2 (usage above its reservation by more than twice the non-reserved share) the
//     "reduce" branch increases Phi.

import { ValidationError } from '../../errors/index.js';
import { requireFraction, requireNonNegative, requireWeight } from './validate.js';

/** Inputs of Algorithm 1, named after the paper's symbols (all per period T, one resource). */
export interface Algorithm1Input {
  /** Phi_i(t): the drop probability applied during the last period, in [0, 1]. */
  readonly phi: number;
  /** W_i: priority on the idle share, integer 1..1000. */
  readonly weight: number;
  /** alpha_i: fixed reservation as a fraction of R(t), in [0, 1]. */
  readonly alpha: number;
  /** R(t): the resource's capacity per period, >= 0. */
  readonly capacity: number;
  /** U(t): total usage of the resource in the period (sum of U_i), >= 0. */
  readonly totalUsage: number;
  /** U_i(t): this network's usage (carried units), >= 0. */
  readonly usage: number;
  /** D(t) = R(t) - sum_i alpha_i R(t): the non-reserved share, >= 0. */
  readonly idle: number;
  /** beta: the critical level as a fraction of R(t), in [0, 1]. */
  readonly beta: number;
  /** Phi_initial: the first punishment when a network starts being punished, in (0, 1]. */
  readonly phiInitial: number;
}

/** Validates `input` (ValidationError naming the field) and returns Phi_i(t+T) in [0, 1]. */
export function algorithm1(input: Algorithm1Input): number {
  requireFraction('phi', input.phi);
  requireWeight('weight', input.weight);
  requireFraction('alpha', input.alpha);
  requireNonNegative('capacity', input.capacity);
  requireNonNegative('totalUsage', input.totalUsage);
  requireNonNegative('usage', input.usage);
  requireNonNegative('idle', input.idle);
  requireFraction('beta', input.beta);
  requirePhiInitial(input.phiInitial);
  return algorithm1Unchecked(
    input.phi,
    input.weight,
    input.alpha,
    input.capacity,
    input.totalUsage,
    input.usage,
    input.idle,
    input.beta,
    input.phiInitial,
  );
}

export function requirePhiInitial(phiInitial: number): void {
  // Phi_initial = 0 would make the "set initial punishment" branch a no-op: the law would never punish.
  if (typeof phiInitial !== 'number' || !(phiInitial > 0 && phiInitial <= 1)) {
    throw new ValidationError('phiInitial', `must be a number in (0, 1], got ${String(phiInitial)}`);
  }
}

/**
 * Algorithm 1 on already-validated positional arguments: the control law calls this once per network
 * per resource per period, so it must not allocate.
 */
export function algorithm1Unchecked(
  phi: number,
  weight: number,
  alpha: number,
  capacity: number,
  totalUsage: number,
  usage: number,
  idle: number,
  beta: number,
  phiInitial: number,
): number {
  // Paper IV-A, Algorithm 1: punish only above the reservation, and decay an existing punishment.
  const reserved = alpha * capacity;
  const overReservation = reserved < usage;
  if (!overReservation && !(phi > 0)) return 0;
  if (!overReservation) {
    // Paper IV-A, Algorithm 1 "fastly reduce": Phi - 3 (1 - 1/W) Phi / 3, i.e. Phi / W.
    return clampProbability(phi - (3 * (1 - 1 / weight) * phi) / 3);
  }
  // Paper IV-A, Algorithm 1: idle resource usage indicator Upsilon = (U_i - alpha R) / D.
  // DEPARTURE 1: with D = 0 nothing is idle, so a network over its reservation uses "all" of it.
  const idleUsage = idle > 0 ? (usage - reserved) / idle : 1;
  if (beta * capacity <= totalUsage) {
    // Paper IV-A, Algorithm 1: no idle resources, some network can be damaged: increase punishment.
    if (phi > 0) {
      return clampProbability(phi + ((1 + idleUsage) * (1 + 1 / weight) * phi) / (3 + 1 / weight));
    }
    return phiInitial;
  }
  // Paper IV-A, Algorithm 1: idle resources remain: reduce punishment.
  // DEPARTURE 2: clamped above as well, because Upsilon > 2 makes this term an increase.
  return clampProbability(phi - ((1 + (1 - idleUsage)) * (1 - 1 / weight) * phi) / (3 + 1 / weight));
}

function clampProbability(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}
