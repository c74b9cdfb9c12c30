// Input checks for the control laws. Every failure is a ValidationError whose path names the field
// (e.g. `weight[3]`), so the daemon can say which network's policy or which counter is wrong.

import { ValidationError } from '../../errors/index.js';
import type { LawState, NetworkTable, ResourceSample } from './types.js';

/** Paper IV-A: W_i is an integer with 1 <= W_i <= 1,000. */
export const MIN_WEIGHT = 1;
export const MAX_WEIGHT = 1000;

/** Reservations summing to 1 + this are accepted as 1: 0.1 * 10 is not exactly 1 in binary. */
export const ALPHA_SUM_SLACK = 1e-9;

export function requireNonNegative(path: string, value: number): void {
  // typeof guards callers that bypass the types (JSON, FFI); !(value >= 0) also rejects NaN.
  if (typeof value !== 'number' || !Number.isFinite(value) || !(value >= 0)) {
    throw new ValidationError(path, `must be a finite number >= 0, got ${String(value)}`);
  }
}

export function requireFraction(path: string, value: number): void {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new ValidationError(path, `must be a number in [0, 1], got ${String(value)}`);
  }
}

export function requireWeight(path: string, value: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_WEIGHT || value > MAX_WEIGHT) {
    throw new ValidationError(path, `must be an integer in ${MIN_WEIGHT}..${MAX_WEIGHT}, got ${String(value)}`);
  }
}

export function requireSlotCount(path: string, value: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ValidationError(path, `must be an integer >= 0, got ${String(value)}`);
  }
}

function requireLength(path: string, array: ArrayLike<number> | undefined, count: number): void {
  if (array === undefined || array === null || typeof array.length !== 'number' || array.length < count) {
    throw new ValidationError(path, `must have at least ${count} entries`);
  }
}

/** Checks alpha/weight of every slot; returns sum(alpha_i), clamped to 1 within ALPHA_SUM_SLACK. */
export function validateNetworkTable(networks: NetworkTable): number {
  requireSlotCount('count', networks.count);
  const count = networks.count;
  requireLength('alpha', networks.alpha, count);
  requireLength('weight', networks.weight, count);
  let alphaSum = 0;
  for (let slot = 0; slot < count; slot++) {
    const alpha = networks.alpha[slot];
    if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) requireFraction(`alpha[${slot}]`, alpha);
    const weight = networks.weight[slot];
    if (!Number.isInteger(weight) || weight < MIN_WEIGHT || weight > MAX_WEIGHT)
      requireWeight(`weight[${slot}]`, weight);
    alphaSum += alpha;
  }
  if (alphaSum > 1 + ALPHA_SUM_SLACK) {
    throw new ValidationError('alpha', `reservations sum to ${alphaSum}, more than the whole resource (1)`);
  }
  return Math.min(alphaSum, 1);
}

/** Checks capacity and the per-slot counters of one period. */
export function validateSample(sample: ResourceSample, count: number): void {
  requireNonNegative('capacity', sample.capacity);
  requireLength('offered', sample.offered, count);
  requireLength('carried', sample.carried, count);
  for (let slot = 0; slot < count; slot++) {
    const offered = sample.offered[slot];
    // Fast path is two comparisons; the helper runs only to build the error.
    if (!(offered >= 0 && offered < Infinity)) requireNonNegative(`offered[${slot}]`, offered);
    const carried = sample.carried[slot];
    if (!(carried >= 0 && carried < Infinity)) requireNonNegative(`carried[${slot}]`, carried);
  }
}

export function validateState(state: LawState, count: number): void {
  if (state.slots < count) {
    throw new ValidationError('state', `sized for ${state.slots} slots, the table has ${count}`);
  }
  for (let slot = 0; slot < count; slot++) {
    const probability = state.dropProbability[slot];
    if (!(probability >= 0 && probability <= 1)) requireFraction(`dropProbability[${slot}]`, probability);
  }
}

export function validateBeta(beta: number): void {
  requireFraction('beta', beta);
}
