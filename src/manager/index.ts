// The data plane manager (paper IV-B): the update protocol that virtual routers' clients
// speak inside the secure channel, and the host-side UpdateManager that replicates each
// router's forwarding table and packet filter into its own network's maps.
// docs/manager.md documents the protocol, the validation rules and graceful restart.
//
// The protocol both sides speak is src/wire; it is re-exported here for the host's users.
export {
  PROTOCOL_VERSION, DEFAULT_MAX_MESSAGE_BYTES, MessageType, ROUTE_KINDS, KIND_GATEWAY_BIT, NO_INTERFACE, ENTRY_BYTES,
  MAX_INTERFACE_NAME_BYTES, MAX_CLIENT_NAME_BYTES, MAX_ERROR_CODE_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_INTERFACES, MAX_FILTER_RULES_ON_WIRE,
  ProtocolError,
  encodeHello, decodeHello, encodeRouteBatch, decodeRouteBatch, encodeRouteBatches, encodeNeighbourBatch, decodeNeighbourBatch,
  encodeFilterReplace, decodeFilterReplace, encodeEndOfSync, decodeEndOfSync, encodeAck, decodeAck, encodeMessage, decodeMessage,
  routeChangesFromLists, routeChangesToLists, routeAt, prefixAt, neighbourBatchFromLists, neighbourBatchToLists,
  emptyRouteColumns, emptyPrefixColumns, familyOf,
  type RouteKind, type RouterInterface, type RouteColumns, type PrefixColumns, type NeighbourColumns, type NeighbourKeyColumns,
  type Hello, type RouteChanges, type RouteBatch, type NeighbourBatch, type FilterRule, type FilterReplace, type EndOfSync, type Ack,
  type UpdateMessage, type EncodedBatch, type WireRoute, type WireNeighbour, type WireNeighbourKey,
} from '../wire/index.js';
export {
  addressBytes, formatAddress, parsePrefixText, formatPrefixBytes, hostBitsSet, prefixKey, isUnicastMac, type Family, type PrefixBytes,
} from '../net/index.js';
export {
  UpdateManager, BatchRejectedError, QuotaExceededError, type QuotaStatus, type QuotaTableName, type QuotaUse, type UpdateManagerOptions, type RouteWriter, type RouteCounts, type RouteInfo, type SessionInfo,
} from './manager.js';
export { benchManagerLoad, benchManagerUpdates, lastHandshakeTimes, type ManagerLoadFigures, type ManagerUpdateFigures } from './bench.js';
export { segmentMapFromConfig, type SegmentMap, type SegmentBinding, type HostLinkInfo, type RouterInterfaceNames } from './segments.js';
export { silentLogger, systemClock, PayloadQueue, type UpdateSession, type UpdateTransport, type UpdateLogger, type Clock } from '../wire/index.js';
