// Wire constants and default limits. docs/protocol.md lists the same values;
// changing any wire constant is a protocol version change.

/** Noise protocol name; exactly 32 bytes = HASHLEN, so h0 is the name itself (Noise §5.2). */
export const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_SHA256';
/** Noise prologue: binds the transcript to this application and version. */
export const PROLOGUE = 'XNetMon secure channel v1';
/** mac1 key = HASH(MAC1_LABEL || receiver static public), as in WireGuard. */
export const MAC1_LABEL = 'mac1----';
/** Cookie reply key = HASH(COOKIE_LABEL || host static public), as WireGuard's LABEL_COOKIE. */
export const COOKIE_LABEL = 'cookie--';

export const KEY_BYTES = 32;
export const TAG_BYTES = 16;
export const MAC_BYTES = 16;
export const TAI64N_BYTES = 12;

/** Frame = length (u32 LE, counts the bytes after it) || type (u8) || body. */
export const LENGTH_PREFIX_BYTES = 4;

export const MessageType = {
  initiation: 1,
  response: 2,
  data: 3,
  /** Host -> client under load: an encrypted cookie the client proves with mac2 (docs/protocol.md §5.4). */
  cookieReply: 4,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

// Initiation body: sender_index(4) ephemeral(32) enc_static(48) enc_timestamp(28) mac1(16)
export const INITIATION_BODY_BYTES = 4 + KEY_BYTES + (KEY_BYTES + TAG_BYTES) + (TAI64N_BYTES + TAG_BYTES) + MAC_BYTES;
/**
 * An initiation that carries mac2 (after a cookie reply) is 16 bytes longer; the bytes before
 * mac2 are the same as without it, so a host that never sends cookies never sees this form.
 */
export const INITIATION_WITH_MAC2_BODY_BYTES = INITIATION_BODY_BYTES + MAC_BYTES;
export const COOKIE_NONCE_BYTES = 12;
export const COOKIE_BYTES = 16;
// Cookie reply body: receiver_index(4) nonce(12) enc_cookie(16 + 16)
export const COOKIE_REPLY_BODY_BYTES = 4 + COOKIE_NONCE_BYTES + COOKIE_BYTES + TAG_BYTES;
// Response body: sender_index(4) receiver_index(4) ephemeral(32) enc_timestamp(28) mac1(16)
export const RESPONSE_BODY_BYTES = 4 + 4 + KEY_BYTES + (TAI64N_BYTES + TAG_BYTES) + MAC_BYTES;
/** Data record header after the type byte: receiver_index(4) counter(8). */
export const DATA_HEADER_BYTES = 4 + 8;
/** Sender wall-clock milliseconds (u64 LE) at the start of every record plaintext. */
export const RECORD_TIMESTAMP_BYTES = 8;
/** Largest application payload in one record. */
export const MAX_RECORD_PAYLOAD_BYTES = 1024 * 1024;
/** Smallest and largest value of the length prefix of a data frame. */
export const MIN_DATA_FRAME_LENGTH = 1 + DATA_HEADER_BYTES + RECORD_TIMESTAMP_BYTES + TAG_BYTES;
export const MAX_FRAME_LENGTH = MIN_DATA_FRAME_LENGTH + MAX_RECORD_PAYLOAD_BYTES;

/** RFC 6479 bitmap: 8192 bits; the usable window is one word less (8160), as in WireGuard. */
export const REPLAY_BITMAP_BITS = 8192;

// Timer and counter defaults, WireGuard's values (whitepaper §6.1).
export const DEFAULT_REKEY_AFTER_MESSAGES = 2n ** 60n;
export const DEFAULT_REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const DEFAULT_REKEY_AFTER_SECONDS = 120;
export const DEFAULT_REJECT_AFTER_SECONDS = 180;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
/** Paper IV-C, eq. (1): e_max, the largest accepted deviation from the learned clock offset. */
export const DEFAULT_E_MAX_MS = 2_000;

export interface TokenBucketLimit {
  /** Tokens added per second. */
  perSecond: number;
  /** Bucket size: how many handshakes may arrive back to back. */
  burst: number;
}
export const DEFAULT_SOURCE_HANDSHAKE_LIMIT: TokenBucketLimit = { perSecond: 20, burst: 40 };
export const DEFAULT_KEY_HANDSHAKE_LIMIT: TokenBucketLimit = { perSecond: 1, burst: 10 };
/** Connections from one source address that have not yet completed a handshake. */
export const DEFAULT_MAX_PENDING_PER_SOURCE = 16;

/** Connections from all sources that have not completed a handshake; above it new ones are closed at once. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 1024;
/**
 * "Under load": more unfinished handshakes than this and the host answers an initiation without
 * a valid mac2 with a cookie reply instead of doing any DH (WireGuard's cookie, §8.1).
 * 64 leaves room for every router of a large host reconnecting at once after a daemon restart.
 */
export const DEFAULT_UNDER_LOAD_PENDING_HANDSHAKES = 64;
/** The host's cookie secret Rm is replaced this often (WireGuard COOKIE_SECRET_MAX_AGE). */
export const COOKIE_SECRET_ROTATION_MS = 120_000;
/** A client uses a cookie this long (WireGuard: COOKIE_SECRET_MAX_AGE - COOKIE_SECRET_LATENCY). */
export const COOKIE_CLIENT_MAX_AGE_MS = 115_000;
/** Cookie replies on one connection between two completed handshakes; more is a misbehaving peer. */
export const MAX_COOKIE_REPLIES_PER_HANDSHAKE = 2;
/**
 * Records a session may send after its handshake (update messages; keepalives count too).
 * A full-table resync of 1,000,000 routes is ~15 records of 1 MiB, or ~200 of 64 KiB, or
 * ~3,000 of 4 KiB: the burst takes any of these at once, and 1,000/s sustained is far above
 * what a router's FIB changes produce (the client batches changes every few hundred ms).
 */
export const DEFAULT_SESSION_MESSAGE_LIMIT: TokenBucketLimit = { perSecond: 1_000, burst: 10_000 };
