// Data shapes shared by the control laws, the simulator and the daemon that feeds them.
//
// Everything per network is indexed by a network *slot* 0..count-1: the daemon keeps one slot per
// virtual network for its whole life, so one period costs no allocation (typed arrays are filled in
// place). Arrays may be longer than `count`; only the first `count` entries are read or written.

import { requireSlotCount } from './validate.js';

/** The administrator's sharing policy for one resource, one entry per network slot. */
export interface NetworkTable {
  /** Number of network slots in use; every array below has at least this many entries. */
  readonly count: number;
  /** Fixed reservation alpha_i as a fraction of R(t), in [0, 1]; the sum over slots must be <= 1. */
  readonly alpha: ArrayLike<number>;
  /** Priority W_i on the idle share: an integer in 1..1000 (Paper IV-A). */
  readonly weight: ArrayLike<number>;
}

/**
 * One period's counters for one resource ("cpu", "link:<ifname>" or "fib"), as deltas over the
 * period T. Units are the resource's own: cost units (cpu), bytes (link), routes (fib).
 */
export interface ResourceSample {
  /** R(t): what the resource can carry in one period (cpu cost units, link bytes, fib routes). */
  readonly capacity: number;
  /** Per slot: units that arrived, counted BEFORE the drop decision. */
  readonly offered: ArrayLike<number>;
  /** Per slot: units that went through, AFTER the drop; this is the paper's U_i(t). */
  readonly carried: ArrayLike<number>;
}

/**
 * Controller memory for one resource. `step` reads `dropProbability` as Phi_i(t) (what the data plane
 * applied during the sampled period) and overwrites it with Phi_i(t+T). For "fib" the value is the
 * fraction of the network's routes to evict rather than a packet drop probability.
 */
export interface LawState {
  /** Slots this state was sized for. */
  readonly slots: number;
  /** In: probability applied during the sampled period. Out: probability for the next period. */
  readonly dropProbability: Float64Array;
  /** Out: the weighted max-min target (carried units) for the sampled offered load; for metrics. */
  readonly target: Float64Array;
  /** Law-private memory per slot (the share law's estimate of the data plane's mismatch). */
  readonly correction: Float64Array;
  /** Scratch space for the water-filling; not meaningful between calls. */
  readonly workspace: ShareWorkspace;
}

/** Preallocated scratch for `computeShareTargets`, so the water-filling allocates nothing per period. */
export interface ShareWorkspace {
  /** Slot numbers of the networks that want more than their reservation, reordered in place. */
  readonly order: Uint32Array;
  /** Per slot: extra demand divided by weight, the water level at which the network is fully served. */
  readonly level: Float64Array;
}

export type LawName = 'algorithm1' | 'share';

/** A control law: one call per resource per period, results written into `state`. */
export interface ControlLaw {
  readonly name: LawName;
  /** Critical level: no punishment while the total stays under beta * R(t). */
  readonly beta: number;
  /**
   * Compute Phi_i(t+T) for every slot from Phi_i(t) (in `state.dropProbability`), the policy and the
   * sample. Throws ValidationError (naming the field) on a malformed policy or sample.
   */
  step(networks: NetworkTable, sample: ResourceSample, state: LawState): void;
}

/** Allocate the controller memory for one resource; all probabilities start at 0. */
export function createLawState(slots: number): LawState {
  requireSlotCount('slots', slots);
  return {
    slots,
    dropProbability: new Float64Array(slots),
    target: new Float64Array(slots),
    correction: new Float64Array(slots),
    workspace: { order: new Uint32Array(slots), level: new Float64Array(slots) },
  };
}
