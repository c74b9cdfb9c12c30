// Which law the daemon runs and with what parameters when the configuration says nothing.
// The share law is the default: see docs/control.md for the comparison that chose it.

import { ValidationError } from '../../errors/index.js';
import { algorithm1Law } from './algorithm1-law.js';
import { shareLaw } from './share-law.js';
import type { ControlLaw, LawName } from './types.js';

/** Critical level: punish once the total reaches 90 % of R (the paper gives no value). */
export const DEFAULT_BETA = 0.9;
/** First punishment of Algorithm 1 (the paper gives no value). */
export const DEFAULT_PHI_INITIAL = 0.1;
export const DEFAULT_LAW: LawName = 'share';

export interface ControlLawConfig {
  readonly law?: LawName;
  readonly beta?: number;
  /** Algorithm 1 only. */
  readonly phiInitial?: number;
  /** Share law only. */
  readonly correctionGain?: number;
  /** Share law only. */
  readonly correctionLimit?: number;
  /** Share law only. */
  readonly reservationMargin?: number;
  /** Share law only: punishment ramps up for demand up to this many times the reservation. */
  readonly gentleBelow?: number;
}

export function createControlLaw(config: ControlLawConfig = {}): ControlLaw {
  const law = config.law ?? DEFAULT_LAW;
  const beta = config.beta ?? DEFAULT_BETA;
  switch (law) {
    case 'algorithm1':
      return algorithm1Law({ beta, phiInitial: config.phiInitial ?? DEFAULT_PHI_INITIAL });
    case 'share':
      return shareLaw({
        beta,
        correctionGain: config.correctionGain,
        correctionLimit: config.correctionLimit,
        reservationMargin: config.reservationMargin,
        gentleBelow: config.gentleBelow,
      });
    default:
      throw new ValidationError('law', `must be "algorithm1" or "share", got ${String(law)}`);
  }
}
