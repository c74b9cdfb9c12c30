// Research on the control laws (docs/control.md): a closed-loop simulator of one resource, the
// comparison of Algorithm 1 with the share law built on it, and the cost of one controller period.
// The laws themselves are product code in src/control/law.
export {
  simulate,
  settleTime,
  shareError,
  oscillation,
  reservationShortfall,
  meanCarriedShare,
} from './simulate.js';
export type {
  Oscillation,
  ReservationShortfall,
  SettleOptions,
  SimulatedNetwork,
  SimulationOptions,
  SimulationTrace,
  TraceWindow,
} from './simulate.js';
export { compareLaws } from './compare.js';
export type {
  Algorithm1Cycle,
  ComparisonReport,
  LawFigures,
  MarginRow,
  ScenarioFigures,
  SensitivityRow,
} from './compare.js';
export { timeControllerPeriod } from './timing.js';
export type { PeriodTiming } from './timing.js';
