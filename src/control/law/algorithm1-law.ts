// Algorithm 1 applied to every network of one resource: the paper's controller as printed.

import { algorithm1Unchecked, requirePhiInitial } from './algorithm1.js';
import { computeShareTargets } from './targets.js';
import type { ControlLaw, LawState, NetworkTable, ResourceSample } from './types.js';
import { validateBeta, validateNetworkTable, validateSample, validateState } from './validate.js';

export interface Algorithm1LawParams {
  /** Critical level beta in [0, 1]. */
  readonly beta: number;
  /** Phi_initial in (0, 1]: the first punishment of a network. */
  readonly phiInitial: number;
}

export function algorithm1Law(params: Algorithm1LawParams): ControlLaw {
  validateBeta(params.beta);
  requirePhiInitial(params.phiInitial);
  const { beta, phiInitial } = params;
  return {
    name: 'algorithm1',
    beta,
    step(networks: NetworkTable, sample: ResourceSample, state: LawState): void {
      const alphaSum = validateNetworkTable(networks);
      const count = networks.count;
      validateSample(sample, count);
      validateState(state, count);
      const capacity = sample.capacity;
      const { alpha, weight } = networks;
      const { carried } = sample;
      // Paper IV-A: D(t) = R(t) - sum_i alpha_i R(t); U(t) = sum_i U_i(t), U_i = carried units.
      const idle = capacity * (1 - alphaSum);
      let totalUsage = 0;
      for (let slot = 0; slot < count; slot++) totalUsage += carried[slot];
      const phi = state.dropProbability;
      for (let slot = 0; slot < count; slot++) {
        phi[slot] = algorithm1Unchecked(
          phi[slot],
          weight[slot],
          alpha[slot],
          capacity,
          totalUsage,
          carried[slot],
          idle,
          beta,
          phiInitial,
        );
      }
      // Not used by Algorithm 1: recorded so both laws report the same target metric.
      computeShareTargets(networks, sample.offered, capacity, beta, state.target, state.workspace);
    },
  };
}
