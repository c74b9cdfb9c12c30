// The data plane API: networks, interfaces, next hops, routes, filters, drop
// probabilities and counters over the pinned maps (paper II and IV).
export {
  DataPlane, readCountersFrom, readUsageFrom, type UsageColumns, readPinnedCounters, UnknownNetworkError, DuplicateAttachmentError, defaultObjectPath, probabilityToThreshold, thresholdToProbability,
  type NetworkSpec, type AttachmentSpec, type NexthopSpec, type RouteTarget, type RouteSpec, type Route4Columns,
  type DropProbabilities, type NetCounters, type DataPlaneSettings, type DataPlaneOptions, type FilterRuleSpec, type AttachModes,
} from './dataplane.js';
export { parsePrefix, formatPrefix, type Prefix } from './prefix.js';
export {
  readTopology, planTopology, applyTopologyPlan, summarizePlan, emptyTopology, classifyEntryKey, vifMacEntryKey, filterDefaultIn, filterHasRules, setFilterDefaultIn,
  type TopologyState, type TopologyPlan, type TopologyOp, type TopologyUndo, type TopologyMap, type IfaceEntry, type ClassifyEntry, type VifMacEntry,
} from './topology.js';
export { escapePinName, unescapePinName, linkPinName, parseLinkPinName, migrateLinkPins, pinnedLinks, type LinkPinKind, type PinMigration } from './pins.js';
export { layoutHash, checkPinnedSchema, recordSchema, openPinnedDataPlane, PinnedSchemaError, SCHEMA_REVISION, type PinnedSchema } from './schema.js';
