// The "share" law: meets the paper's sharing policy directly instead of searching for it.
//
// Paper VII lists "a faster stabilization of the punishment" as future work. Algorithm 1 searches
// for the drop probability by multiplicative steps on carried usage; this law computes where the
// search should end (the weighted max-min target of Paper IV-A, see targets.ts) and sets the drop
// probability that yields it from the offered load, which the data plane counts before dropping:
//
//   feed-forward   p_i = 1 - target_i / offered_i
//   feedback       + c_i, a clamped, leaky integral of the data plane's mismatch
//
// The feedback exists because the measured plant is not exactly carried = offered (1 - p): the data
// plane quantises p, drops per packet while the resource counts bytes or cost units, and so on. Each
// period it compares, on the SAME period's counters, the pass fraction achieved (carried / offered)
// with the one commanded (1 - p_applied), and moves c_i a fraction `correctionGain` of the way toward
// that difference. Under constant demand this is exactly an integral on (carried_i - target_i) /
// offered_i; unlike that integral it does not wind up when the demand steps, because a demand step
// changes offered and carried together. It learns nothing from a period in which the network was not
// being dropped (p = 0 says nothing about the drop path).
//
// A period in which the host itself was saturated (total carried >= saturationLevel R) hides the data
// plane's behaviour behind the host's indiscriminate loss, so the same-period comparison is wrong
// there (it blames the host's loss on every network). Two cases:
//   - the saturation was predicted by the command (sum offered_i (1 - p_i) >= saturationLevel R):
//     the demand changed faster than the law, which the feed-forward already fixes next period, so
//     nothing is learned (this is what keeps a demand step from winding the correction up);
//   - it was not: the data plane passes more than commanded and the host pays for it. Then every
//     network above its target has its correction raised by correctionGain (carried_i - target_i) /
//     offered_i; only raised, because the ones under target are victims of the host's loss, not of
//     their own command. Once the host is out of saturation the same-period comparison takes over.
//
// Gentle band (ours, off by default; the daemon turns it on for output links): a network offering
// more than its reservation but at most `gentleBelow` times it is
//   - not punished while the resource would carry at most (1 + gentleSlack) R with the band left
//     alone and every other network held at its target: the bottleneck downstream answers that
//     excess, and the victims keep at least 1 / (1 + gentleSlack) of their reservation;
//   - otherwise punished from `rampStart`, at most multiplied by `rampFactor` per period, up to the
//     feed-forward command.
// TCP offers a little over its share (its probes and the retransmissions of what the bottleneck
// dropped). Dropping it at the full feed-forward rate for whole periods (5-40 % of its packets) kept a
// TCP network ~4 % under its half of a link shared with a UDP flood; with the band it is within 2 %
// (docs/control.md). A flood above the band gets the full command at once, as before.
//
// Guards kept from Algorithm 1 (Paper IV-A):
//   - a network offering at most alpha_i R is never punished, and no command is expected to pass
//     less than min(offered_i, alpha_i R), even if the demand falls by `reservationMargin` before the
//     command applies (with c = 0 no command passes less than alpha_i R of this period's demand);
//   - no drops at all while the total offered load is under the critical level beta R.

import { ValidationError } from '../../errors/index.js';
import { computeShareTargets } from './targets.js';
import type { ControlLaw, LawState, NetworkTable, ResourceSample } from './types.js';
import { requireFraction, validateBeta, validateNetworkTable, validateSample, validateState } from './validate.js';

export interface ShareLawParams {
  /** Critical level beta in [0, 1]; under contention the targets fill beta R (see targets.ts). */
  readonly beta: number;
  /** Fraction of the measured mismatch learned per period, in [0, 1]; default 0.5. */
  readonly correctionGain?: number;
  /** Bound on |c_i|, in [0, 1]; default 0.2: the feedback trims, it never decides alone. */
  readonly correctionLimit?: number;
  /**
   * Total carried at or above this fraction of R means the host was saturated in that period (see
   * above for what is learned then); in [0, 1], default 0.99. With beta close to 1 the host runs at
   * this level at steady state, so only the saturated-period rule learns (the feed-forward alone
   * still meets the targets on an exact data plane).
   */
  readonly saturationLevel?: number;
  /**
   * Demand drop, as a fraction in [0, 1), that a network's reservation must survive: the command is
   * computed on this period's offered load and applied to the next one's, so a network offering a
   * little more than alpha_i R would be pushed under it if its demand then fell. Default 0: a margin
   * m > 0 leaves networks offering up to alpha_i R / (1 - m) unpunished, so they carry up to
   * m / (1 - m) more than their target (docs/control.md has the measured trade-off).
   */
  readonly reservationMargin?: number;
  /** Demand, in multiples of the reservation, up to which punishment ramps up (>= 1); default 1: no ramp. */
  readonly gentleBelow?: number;
  /** First probability of the ramp, in (0, 1]; default 0.001. */
  readonly rampStart?: number;
  /** Growth of the ramp per period, >= 1; default 2. */
  readonly rampFactor?: number;
  /** Networks in the gentle band are not punished at all while the resource would carry at most (1 + this) R; default 0.1. */
  readonly gentleSlack?: number;
}

export const DEFAULT_CORRECTION_GAIN = 0.5;
export const DEFAULT_CORRECTION_LIMIT = 0.2;
export const DEFAULT_SATURATION_LEVEL = 0.99;
export const DEFAULT_RESERVATION_MARGIN = 0;
export const DEFAULT_GENTLE_BELOW = 1;
export const DEFAULT_RAMP_START = 0.001;
export const DEFAULT_RAMP_FACTOR = 2;
export const DEFAULT_GENTLE_SLACK = 0.1;

export function shareLaw(params: ShareLawParams): ControlLaw {
  validateBeta(params.beta);
  const correctionGain = params.correctionGain ?? DEFAULT_CORRECTION_GAIN;
  const correctionLimit = params.correctionLimit ?? DEFAULT_CORRECTION_LIMIT;
  const saturationLevel = params.saturationLevel ?? DEFAULT_SATURATION_LEVEL;
  requireFraction('correctionGain', correctionGain);
  requireFraction('correctionLimit', correctionLimit);
  requireFraction('saturationLevel', saturationLevel);
  const reservationMargin = params.reservationMargin ?? DEFAULT_RESERVATION_MARGIN;
  if (!(reservationMargin >= 0 && reservationMargin < 1)) {
    throw new ValidationError('reservationMargin', `must be a number in [0, 1), got ${String(reservationMargin)}`);
  }
  const keptFraction = 1 - reservationMargin;
  const gentleBelow = params.gentleBelow ?? DEFAULT_GENTLE_BELOW;
  const rampStart = params.rampStart ?? DEFAULT_RAMP_START;
  const rampFactor = params.rampFactor ?? DEFAULT_RAMP_FACTOR;
  const gentleSlack = params.gentleSlack ?? DEFAULT_GENTLE_SLACK;
  if (!(gentleSlack >= 0 && gentleSlack <= 1))
    throw new ValidationError('gentleSlack', `must be a number in [0, 1], got ${String(gentleSlack)}`);
  if (!(gentleBelow >= 1))
    throw new ValidationError('gentleBelow', `must be a number >= 1, got ${String(gentleBelow)}`);
  if (!(rampStart > 0 && rampStart <= 1))
    throw new ValidationError('rampStart', `must be a number in (0, 1], got ${String(rampStart)}`);
  if (!(rampFactor >= 1)) throw new ValidationError('rampFactor', `must be a number >= 1, got ${String(rampFactor)}`);
  const beta = params.beta;
  return {
    name: 'share',
    beta,
    step(networks: NetworkTable, sample: ResourceSample, state: LawState): void {
      validateNetworkTable(networks);
      const count = networks.count;
      validateSample(sample, count);
      validateState(state, count);
      const { capacity, offered, carried } = sample;
      const { alpha } = networks;
      const { dropProbability, target, correction } = state;

      computeShareTargets(networks, offered, capacity, beta, target, state.workspace);
      let totalOffered = 0;
      let totalCarried = 0;
      let commandedTotal = 0;
      for (let slot = 0; slot < count; slot++) {
        totalOffered += offered[slot];
        totalCarried += carried[slot];
        commandedTotal += offered[slot] * (1 - dropProbability[slot]);
      }
      // Paper IV-A: punish only once the total reaches the critical level beta R(t).
      const critical = totalOffered >= beta * capacity;
      const saturation = saturationLevel * capacity;
      const hostSaturated = totalCarried >= saturation;
      // What the resource is expected to carry next period if the networks inside the gentle band
      // are left alone and the others are held at their targets.
      let bandFits = false;
      if (gentleBelow > 1) {
        let expectedWithBandAlone = 0;
        for (let slot = 0; slot < count; slot++) {
          const inBand = offered[slot] <= alpha[slot] * capacity * gentleBelow;
          expectedWithBandAlone += inBand ? offered[slot] : Math.min(offered[slot], target[slot]);
        }
        bandFits = expectedWithBandAlone <= capacity * (1 + gentleSlack);
      }
      const unexplainedSaturation = hostSaturated && commandedTotal < saturation;

      for (let slot = 0; slot < count; slot++) {
        const demand = offered[slot];
        const applied = dropProbability[slot];
        if (demand > 0 && applied > 0 && (!hostSaturated || unexplainedSaturation)) {
          let learned: number;
          if (!hostSaturated) {
            const achievedPass = Math.min(1, carried[slot] / demand);
            const mismatch = achievedPass - (1 - applied);
            learned = correction[slot] + correctionGain * (mismatch - correction[slot]);
          } else {
            const excess = carried[slot] - target[slot];
            learned = correction[slot] + (excess > 0 ? (correctionGain * excess) / demand : 0);
          }
          correction[slot] =
            learned > correctionLimit ? correctionLimit : learned < -correctionLimit ? -correctionLimit : learned;
        }
        const reserved = alpha[slot] * capacity;
        // Paper IV-A: a network using no more than its reservation is not punished.
        if (!critical || demand <= reserved) {
          dropProbability[slot] = 0;
          continue;
        }
        // The correction is the learned (achieved - commanded) pass fraction, so the pass this command
        // is expected to achieve is 1 - p + c. Keep that at or above the reservation even if next
        // period's demand is reservationMargin lower than this one's (the command is applied to a
        // demand the law has not seen yet): p <= 1 - reserved / (demand (1 - margin)) + c.
        // With margin 0 and c = 0 this never binds, since target >= reserved.
        const correctionNow = correction[slot];
        const ceiling = 1 - reserved / (demand * keptFraction) + correctionNow;
        let commanded = 1 - target[slot] / demand + correctionNow;
        if (commanded > ceiling) commanded = ceiling;
        if (demand <= reserved * gentleBelow) {
          if (bandFits) {
            dropProbability[slot] = 0;
            continue;
          }
          const ramp = applied > 0 ? applied * rampFactor : rampStart;
          if (commanded > ramp) commanded = ramp;
        }
        if (commanded > 1) commanded = 1;
        dropProbability[slot] = commanded > 0 ? commanded : 0;
      }
    },
  };
}
