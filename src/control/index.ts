// Control: the controller (paper IV-A) and the host daemon that runs it.
export {
  Controller,
  type CounterSource,
  type DropSink,
  type MemoryControl,
  type NetworkUsage,
  type DropDecision,
  type PeriodReport,
  type ResourceStatus,
  type ControllerOptions,
} from './controller.js';
export { dataPlaneSource, dataPlaneSink, FakePlant } from './sources.js';
export * as law from './law/index.js';
export { createLogger } from './logger.js';
export { Daemon, tearDown, type DaemonOptions, type RouteAuthority, type RouteAuthorityFactory } from './daemon.js';
export { Metrics } from './metrics.js';
export { applySettings, costsOf } from './apply.js';
export {
  desiredTopology,
  planReconcile,
  applyReconcile,
  finishReconcile,
  driftOf,
  isDrift,
  systemTopologyProbe,
  type TopologyProbe,
  type ReconcilePlan,
  type Drift,
  type FilterDefaultFix,
} from './reconcile.js';
export { channelAuthority, type ChannelAuthority } from './channel.js';
export {
  RejectionLog,
  REJECTION_SUMMARY_INTERVAL_MS,
  type RejectionLogger,
  type RejectionLogOptions,
} from './rejection-log.js';
