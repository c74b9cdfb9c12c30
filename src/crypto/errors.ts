// Errors and rejection reasons of the secure channel. Every rejection has a
// stable reason string (what operators and tests match on) and every thrown
// error is an XnetmonError whose code is derived from that reason.

import { XnetmonError } from '../errors/index.js';

/** Why a message, handshake or session was refused; stable, used as a metric label. */
export const REJECT_REASONS = [
  'malformed', // wrong size for its type, unknown type, too short
  'truncated', // the stream ended in the middle of a frame
  'oversize', // a frame length above the limit, refused before buffering
  'mac1', // mac1 wrong: not addressed to this key, or altered
  'mac2', // under load, mac2 present but not made with the cookie of this source
  'rate_limited', // token bucket per source address or per client key empty
  'pending_limit', // too many connections without a completed handshake, from all sources together
  'message_rate', // an established session sent records faster than its token bucket allows
  'unknown_key', // static key not in the configured peer list
  'low_order_key', // a small-order X25519 point, or a DH result of all zeros
  'decrypt', // AEAD tag did not verify
  'timestamp_replay', // handshake timestamp not newer than the greatest seen for that key
  'replay', // record counter already seen or older than the window
  'skew', // record timestamp outside the paper's eq. (1) bound
  'counter_limit', // record counter at or above REJECT_AFTER_MESSAGES
  'key_expired', // keypair older than REJECT_AFTER_SECONDS
  'unknown_index', // record or response for a receiver index we do not hold
  'unexpected_message', // a valid frame in the wrong state (e.g. data before handshake)
  'handshake_timeout', // no completed handshake within the timeout
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

/** Reasons a session or channel ends that are not a protocol rejection. */
export type OrderlyCloseReason =
  | 'closed' // close() called locally
  | 'peer_closed' // the TCP stream ended cleanly between frames
  | 'socket_error' // the TCP socket failed
  | 'superseded' // the same client key confirmed a newer session
  | 'peer_removed' // updatePeers() removed (or renamed) this client key
  | 'server_closed'; // SecureServer.close()

export type CloseReason = RejectReason | OrderlyCloseReason;

export function isRejectReason(value: string): value is RejectReason {
  return (REJECT_REASONS as readonly string[]).includes(value);
}

/** A protocol check failed; `reason` is the stable rejection reason. */
export class SecureChannelError extends XnetmonError {
  readonly reason: RejectReason;

  constructor(reason: RejectReason, message: string, options?: { cause?: unknown }) {
    super(`ERR_SECURE_${reason.toUpperCase()}`, message, options);
    this.reason = reason;
  }
}

/** The channel or session is closed (locally or by the peer); `reason` says why. */
export class ChannelClosedError extends XnetmonError {
  readonly reason: CloseReason;

  constructor(reason: CloseReason, message?: string, options?: { cause?: unknown }) {
    super('ERR_CHANNEL_CLOSED', message ?? `secure channel closed: ${reason}`, options);
    this.reason = reason;
  }
}

/** The TCP connection to the host could not be opened or failed during the handshake. */
export class ConnectError extends XnetmonError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_SECURE_CONNECT', message, options);
  }
}
