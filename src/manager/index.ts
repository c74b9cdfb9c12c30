// The data plane manager (paper IV-B): the update protocol that virtual routers' clients
// speak inside the secure channel, and the host-side UpdateManager that replicates each
// router's forwarding table and packet filter into its own network's maps.
// docs/manager.md documents the protocol, the validation rules and graceful restart.
//
// The protocol both sides speak is src/wire; it is re-exported here for the host's users.
export * from '../wire/index.js';
export { UpdateManager } from './manager.js';
export {
  BatchRejectedError,
  QuotaExceededError,
  type QuotaStatus,
  type QuotaTableName,
  type QuotaUse,
  type UpdateManagerOptions,
  type RouteWriter,
  type RouteCounts,
  type RouteInfo,
  type SessionInfo,
} from './types.js';
export {
  segmentMapFromConfig,
  type SegmentMap,
  type SegmentBinding,
  type HostLinkInfo,
  type RouterInterfaceNames,
} from './segments.js';
