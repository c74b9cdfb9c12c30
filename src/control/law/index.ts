// Control laws of the XNetMon host daemon (Paper IV-A): each period T, per resource ("cpu",
// "link:<ifname>", "fib"), turn the data plane's per-network counters into the next drop probability
// per network. Pure logic: no kernel, no I/O. See docs/control.md.
// The simulator, the laws' comparison and their timing are research code: bench/laws.

export type {
  ControlLaw,
  LawName,
  LawState,
  NetworkTable,
  ResourceSample,
  ShareWorkspace,
} from './types.js';
export { createLawState } from './types.js';
export { algorithm1 } from './algorithm1.js';
export type { Algorithm1Input } from './algorithm1.js';
export { algorithm1Law } from './algorithm1-law.js';
export type { Algorithm1LawParams } from './algorithm1-law.js';
export {
  shareLaw,
  DEFAULT_CORRECTION_GAIN,
  DEFAULT_CORRECTION_LIMIT,
  DEFAULT_RESERVATION_MARGIN,
  DEFAULT_SATURATION_LEVEL,
} from './share-law.js';
export type { ShareLawParams } from './share-law.js';
export { computeShareTargets, weightedMaxMinTargets } from './targets.js';
export { combineWithResidual } from './residual.js';
export {
  createControlLaw,
  DEFAULT_BETA,
  DEFAULT_LAW,
  DEFAULT_PHI_INITIAL,
} from './defaults.js';
export type { ControlLawConfig } from './defaults.js';
export { MAX_WEIGHT, MIN_WEIGHT } from './validate.js';
