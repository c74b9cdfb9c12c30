// What the two sides of the secure data plane update speak (paper IV-B): the update
// protocol's messages and their encoding (docs/manager.md), and what the protocol needs
// from the secure channel. The router-side client and the host-side manager each import
// this module, never each other.
export {
  PROTOCOL_VERSION, DEFAULT_MAX_MESSAGE_BYTES, MessageType, ROUTE_KINDS, KIND_GATEWAY_BIT, NO_INTERFACE, ENTRY_BYTES,
  MAX_FILTER_RULES_ON_WIRE,
  ProtocolError,
  encodeHello, decodeHello, encodeRouteBatch, decodeRouteBatch, encodeRouteBatches, encodeNeighbourBatch, decodeNeighbourBatch,
  encodeFilterReplace, decodeFilterReplace, encodeEndOfSync, decodeEndOfSync, encodeAck, decodeAck, decodeMessage,
  routeChangesFromLists, routeChangesToLists, neighbourBatchFromLists, neighbourBatchToLists,
  emptyRouteColumns, emptyPrefixColumns,
  type RouteKind, type RouterInterface, type RouteColumns, type PrefixColumns, type NeighbourColumns, type NeighbourKeyColumns,
  type Hello, type RouteChanges, type RouteBatch, type NeighbourBatch, type FilterRule, type FilterReplace, type EndOfSync, type Ack,
  type UpdateMessage, type EncodedBatch, type WireRoute, type WireNeighbour, type WireNeighbourKey,
} from './protocol.js';
export { silentLogger, systemClock, PayloadQueue, type UpdateSession, type UpdateTransport, type UpdateLogger, type Clock } from './transport.js';
