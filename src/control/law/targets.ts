// The paper's sharing policy as a number per network: the weighted max-min target.
//
// Paper IV-A: each network is guaranteed alpha_i R(t) whenever it has the demand, and the idle
// resources (non-reserved plus reserved-but-unused) go to the networks that want more, in proportion
// to W_i. Punishment starts only when the total reaches the critical level beta R(t).
//
// Choice (the paper does not say how much of R the idle share may fill): under contention the targets
// sum to max(beta R, sum_i min(offered_i, alpha_i R)). Filling to beta R, not R, keeps the host at the
// level where the paper stops punishing, so the host keeps headroom for its own work and for the
// period-to-period noise of the offered load; the max() keeps every reservation even when
// beta < sum alpha_i.

import { createLawState } from './types.js';
import type { NetworkTable, ShareWorkspace } from './types.js';
import { validateBeta, validateNetworkTable, validateSample } from './validate.js';

/**
 * Fill `target[slot]` with the weighted max-min share of each network for `offered` on a resource of
 * `capacity` units. Inputs are trusted (validated by the caller). Returns the sum of the targets.
 *
 * - total offered < beta R: target_i = offered_i (nothing is punished);
 * - otherwise target_i = min(offered_i, alpha_i R) + a water-filled part of
 *   pool = max(beta R, sum base) - sum base, proportional to W_i and never above what the network
 *   offers beyond its base; what a network does not want is redistributed to the others.
 */
export function computeShareTargets(
  networks: NetworkTable,
  offered: ArrayLike<number>,
  capacity: number,
  beta: number,
  target: Float64Array,
  workspace: ShareWorkspace,
): number {
  const count = networks.count;
  const { alpha, weight } = networks;
  let totalOffered = 0;
  let baseTotal = 0;
  for (let slot = 0; slot < count; slot++) {
    const demand = offered[slot];
    const reserved = alpha[slot] * capacity;
    const base = demand < reserved ? demand : reserved;
    target[slot] = base;
    totalOffered += demand;
    baseTotal += base;
  }
  if (totalOffered < beta * capacity) {
    // Paper IV-A: below the critical level there are idle resources, so nobody is punished.
    for (let slot = 0; slot < count; slot++) target[slot] = offered[slot];
    return totalOffered;
  }
  const targetTotal = Math.max(beta * capacity, baseTotal);
  const pool = targetTotal - baseTotal;

  // Networks that want more than their base, keyed by extra demand per unit of weight (the water
  // level at which each one is fully served).
  const { order, level } = workspace;
  let wanting = 0;
  let extraTotal = 0;
  for (let slot = 0; slot < count; slot++) {
    const extra = offered[slot] - target[slot];
    if (extra > 0) {
      order[wanting++] = slot;
      level[slot] = extra / weight[slot];
      extraTotal += extra;
    }
  }
  if (wanting === 0 || pool <= 0) return baseTotal;
  if (extraTotal <= pool) {
    for (let index = 0; index < wanting; index++) target[order[index]] = offered[order[index]];
    return baseTotal + extraTotal;
  }
  // Each wanting network gets min(extra_i, waterLevel * W_i) with the water level set so that the
  // pool is used exactly. Found by quickselect on the levels (expected O(n), no allocation): for
  // 1,000 networks a comparator sort took ~120 us per resource on the dev machine, this ~30 us.
  const waterLevel = findWaterLevel(offered, target, weight, order, level, wanting, pool);
  for (let index = 0; index < wanting; index++) {
    const slot = order[index];
    const extra = offered[slot] - target[slot];
    const share = waterLevel * weight[slot];
    target[slot] += extra < share ? extra : share;
  }
  return targetTotal;
}

/**
 * Allocating, validating convenience over `computeShareTargets` for tests, reports and the
 * simulator: returns the weighted max-min target of each slot.
 */
export function weightedMaxMinTargets(
  networks: NetworkTable,
  offered: ArrayLike<number>,
  capacity: number,
  beta: number,
): Float64Array {
  validateNetworkTable(networks);
  validateSample({ capacity, offered, carried: offered }, networks.count);
  validateBeta(beta);
  const state = createLawState(networks.count);
  computeShareTargets(networks, offered, capacity, beta, state.target, state.workspace);
  return state.target;
}

/**
 * The water level lambda with sum_i min(extra_i, lambda W_i) = pool over order[0..wanting), given
 * that the extras sum to more than the pool. Reorders `order` in place.
 *
 * Quickselect over the levels extra_i / W_i: for a pivot level, the networks under it are served in
 * full and those above it get pivot * W_i. If that already uses the pool, lambda is at or under the
 * pivot and every network at or above the pivot is "unsaturated" (its weight joins freeWeight);
 * otherwise lambda is above the pivot and every network at or under it is served in full (its extra
 * joins servedExtra). Each round keeps one side only; at the end lambda = (pool - servedExtra) / freeWeight.
 */
function findWaterLevel(
  offered: ArrayLike<number>,
  target: Float64Array,
  weight: ArrayLike<number>,
  order: Uint32Array,
  level: Float64Array,
  wanting: number,
  pool: number,
): number {
  let low = 0;
  let high = wanting; // undecided networks are order[low..high)
  let servedExtra = 0;
  let freeWeight = 0;
  while (low < high) {
    const pivot = medianOfThree(level[order[low]], level[order[(low + high) >>> 1]], level[order[high - 1]]);
    // Three-way partition: [low, lessEnd) < pivot, [lessEnd, greaterStart) == pivot, [greaterStart, high) > pivot.
    let lessEnd = low;
    let scan = low;
    let greaterStart = high;
    let lessExtra = 0;
    let equalExtra = 0;
    let equalWeight = 0;
    let greaterWeight = 0;
    while (scan < greaterStart) {
      const slot = order[scan];
      const slotLevel = level[slot];
      if (slotLevel < pivot) {
        lessExtra += offered[slot] - target[slot];
        order[scan] = order[lessEnd];
        order[lessEnd] = slot;
        lessEnd++;
        scan++;
      } else if (slotLevel > pivot) {
        greaterWeight += weight[slot];
        greaterStart--;
        order[scan] = order[greaterStart];
        order[greaterStart] = slot;
      } else {
        equalExtra += offered[slot] - target[slot];
        equalWeight += weight[slot];
        scan++;
      }
    }
    const usedAtPivot = servedExtra + lessExtra + equalExtra + pivot * (freeWeight + greaterWeight);
    if (usedAtPivot >= pool) {
      freeWeight += equalWeight + greaterWeight;
      high = lessEnd;
    } else {
      servedExtra += lessExtra + equalExtra;
      low = greaterStart;
    }
  }
  // freeWeight > 0 because the extras sum to more than the pool; the guard only protects rounding.
  return freeWeight > 0 ? (pool - servedExtra) / freeWeight : Infinity;
}

function medianOfThree(first: number, second: number, third: number): number {
  if (first < second) {
    if (second < third) return second;
    return first < third ? third : first;
  }
  if (first < third) return first;
  return second < third ? third : second;
}
