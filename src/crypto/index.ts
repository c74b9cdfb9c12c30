// Public surface of the secure channel between the clients in the virtual
// routers and the host daemon (docs/protocol.md). Other modules import only this file.

export { generateKeyPair, parsePrivateKey, parsePublicKey, publicKeyFromPrivate, type KeyPairBase64 } from './keys.js';
export {
  ChannelClosedError,
  ConnectError,
  REJECT_REASONS,
  SecureChannelError,
  isRejectReason,
  type CloseReason,
  type OrderlyCloseReason,
  type RejectReason,
} from './errors.js';
export {
  createSecureServer,
  SecureServer,
  SecureSession,
  type HandshakeCounts,
  type RejectionEvent,
  type SecurePeer,
  type SecureServerEvents,
  type SecureServerOptions,
} from './server.js';
export { connectSecure, SecureChannel, type ConnectSecureOptions } from './client.js';
export type { CloseInfo, SecureChannelLogger, SecureConnectionEvents } from './connection.js';
export { RecordCoalescer, type CoalescerOptions, type RecordSink } from './coalescer.js';

// Transport-free pieces: used by tests and by the test vectors in docs/protocol.md.
export {
  consumeInitiation,
  completeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  handshakeHash,
  prepareInitiation,
  prepareResponder,
  mac1KeyFor,
  staticIdentityFromPrivate,
  INITIATION_FRAME_BYTES,
  INITIATION_WITH_MAC2_FRAME_BYTES,
  initiationMac1,
  verifyInitiationMac1,
  RESPONSE_FRAME_BYTES,
  type ConsumedInitiation,
  type InitiationParams,
  type InitiationPolicy,
  type InitiatorHandshake,
  type PreparedInitiation,
  type PreparedResponder,
  type ResponderHandshake,
  type ResponseParams,
  type StaticIdentity,
  type TransportKeys,
} from './handshake.js';
export {
  consumeCookieReply,
  cookieKeyFor,
  CookieChecker,
  initiationMac2,
  initiationWithMac2,
  COOKIE_REPLY_FRAME_BYTES,
} from './cookie.js';
export {
  openRecord,
  readRecordHeader,
  sealRecord,
  sealRecordParts,
  RECORD_HEADER_BYTES,
  type OpenedRecord,
  type RecordHeader,
  type SealRecordInput,
} from './record.js';
export {
  receiveRecord,
  SessionKeypair,
  DEFAULT_RECORD_LIMITS,
  type ReceivedRecord,
  type RecordLimits,
} from './keypair.js';
export { ReplayWindow } from './replay-window.js';
export { FrameDecoder, validateFrameHeader } from './framing.js';
export { decodeTai64nMs, encodeTai64n } from './tai64n.js';
export { isLowOrderPoint } from './primitives.js';
export * as protocolConstants from './constants.js';
