// The data plane API: networks, interfaces, next hops, routes, filters, drop
// probabilities and counters over the pinned maps (paper II and IV). One file per job;
// DataPlane (dataplane.ts) is the facade the daemon, the manager and the lab use.
export { DataPlane, defaultObjectPath, type DataPlaneOptions } from './dataplane.js';
export { UnknownNetworkError, DuplicateAttachmentError } from './shared.js';
export type { NetworkSpec, AttachmentSpec, VifSpec, Mac } from './networks.js';
export type { AttachModes } from './attach.js';
export type { NexthopSpec } from './nexthops.js';
export type {
  RouteTarget,
  RouteSpec,
  Route4Columns,
  InstalledRoute,
  ListRoutesOptions,
  RouteWriteOptions,
} from './routes.js';
export type { FilterRuleSpec } from './filters.js';
export type { DropProbabilities } from './drops.js';
export { readPinnedCounters, type NetCounters, type UsageColumns } from './counters.js';
export type { DataPlaneSettings } from './settings.js';
export { parsePrefix, formatPrefix, type Prefix } from './prefix.js';
export {
  readTopology,
  planTopology,
  applyTopologyPlan,
  summarizePlan,
  emptyTopology,
  classifyEntryKey,
  vifMacEntryKey,
  segAddrEntryKey,
  canonicalAddress,
  filterDefaultIn,
  filterHasRules,
  setFilterDefaultIn,
  type TopologyState,
  type TopologyPlan,
  type TopologyOp,
  type TopologyUndo,
  type TopologyMap,
  type IfaceEntry,
  type ClassifyEntry,
  type VifMacEntry,
  type SegAddrEntry,
} from './topology.js';
export {
  escapePinName,
  unescapePinName,
  linkPinName,
  parseLinkPinName,
  migrateLinkPins,
  pinnedLinks,
  type LinkPinKind,
  type PinMigration,
} from './pins.js';
export {
  layoutHash,
  checkPinnedSchema,
  recordSchema,
  openPinnedDataPlane,
  PinnedSchemaError,
  SCHEMA_REVISION,
  type PinnedSchema,
} from './schema.js';
export { readPathTotalsFrom, type PathTotals } from './paths.js';
export { solveFairRate, fairDropFraction, bucketBounds, fairRate, type FairColumns } from './fair.js';
