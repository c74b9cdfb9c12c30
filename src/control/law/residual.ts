// Paper IV-A: "a residual punishment is constantly applied in the output interfaces of virtual
// machines" (the host side's vif input), small enough not to hurt low-volume traffic, so that no
// DomU can take all of the host even between two controller periods.
//
// The data plane applies the residual drop on its own, before the per-resource laws and independently
// of them, so the laws never see or include it. This helper is for the caller that wants the combined
// probability a packet on a vif input faces (metrics, or a data plane with a single drop stage).
// The paper gives no value; choose it per deployment (e.g. 0.001 drops 1 packet in 1,000).

import { requireFraction } from './validate.js';

/** Probability of a drop by either of two independent drop stages: 1 - (1 - law)(1 - residual). */
export function combineWithResidual(lawDropProbability: number, residualDropProbability: number): number {
  requireFraction('lawDropProbability', lawDropProbability);
  requireFraction('residualDropProbability', residualDropProbability);
  return 1 - (1 - lawDropProbability) * (1 - residualDropProbability);
}
