// The data plane API: networks, interfaces, next hops, routes, filters, drop
// probabilities and counters over the pinned maps (paper II and IV).
export {
  DataPlane, readCountersFrom, readUsageFrom, type UsageColumns, readPinnedCounters, UnknownNetworkError, DuplicateAttachmentError, defaultObjectPath, probabilityToThreshold, thresholdToProbability,
  type NetworkSpec, type AttachmentSpec, type NexthopSpec, type RouteTarget, type RouteSpec, type Route4Columns,
  type DropProbabilities, type NetCounters, type DataPlaneSettings, type DataPlaneOptions, type FilterRuleSpec, type AttachModes,
} from './dataplane.js';
export { parsePrefix, formatPrefix, type Prefix } from './prefix.js';
