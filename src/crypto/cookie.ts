// WireGuard's cookie (whitepaper §5.4.7), over TCP: under load the host answers an
// initiation that has no valid mac2 with an encrypted cookie instead of doing any
// Diffie-Hellman, and the client sends the same initiation again with
// mac2 = MAC(cookie, initiation up to mac2). Only a peer that reads what the host sends
// to its address gets the host to spend DH work. docs/protocol.md §4.5, §5.1, §5.4.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { XnetmonError } from '../errors/index.js';
import {
  COOKIE_BYTES,
  COOKIE_LABEL,
  COOKIE_NONCE_BYTES,
  COOKIE_REPLY_BODY_BYTES,
  COOKIE_SECRET_ROTATION_MS,
  LENGTH_PREFIX_BYTES,
  MAC_BYTES,
  MessageType,
  TAG_BYTES,
} from './constants.js';
import { SecureChannelError } from './errors.js';
import { INITIATION_FRAME_BYTES, INITIATION_WITH_MAC2_FRAME_BYTES, initiationMac1 } from './handshake.js';
import { constantTimeEqual, hmacSha256, sha256 } from './primitives.js';

export const COOKIE_REPLY_FRAME_BYTES = LENGTH_PREFIX_BYTES + 1 + COOKIE_REPLY_BODY_BYTES;
const AEAD_ALGORITHM = 'chacha20-poly1305';
const REPLY = { type: 4, receiverIndex: 5, nonce: 9, encryptedCookie: 9 + COOKIE_NONCE_BYTES } as const;
/** Offset of the sender_index of an initiation (docs/protocol.md §5.1). */
const INITIATION_SENDER_INDEX = 5;
/** mac2 covers the type byte through mac1: everything after the length prefix and before mac2. */
const MAC2_OFFSET = INITIATION_FRAME_BYTES;

/** HASH("cookie--" || host static public): encrypts cookie replies from that host. */
export function cookieKeyFor(hostStaticPublic: Uint8Array): Buffer {
  return sha256(Buffer.from(COOKIE_LABEL, 'ascii'), hostStaticPublic);
}

function computeMac2(cookie: Uint8Array, frame: Buffer): Buffer {
  return hmacSha256(cookie, frame.subarray(LENGTH_PREFIX_BYTES, MAC2_OFFSET)).subarray(0, MAC_BYTES);
}

/** The mac2 of an initiation, or undefined when it was sent without one (133 bytes). */
export function initiationMac2(frame: Buffer): Buffer | undefined {
  return frame.length === INITIATION_WITH_MAC2_FRAME_BYTES
    ? frame.subarray(MAC2_OFFSET, MAC2_OFFSET + MAC_BYTES)
    : undefined;
}

/** Client: the initiation again, with mac2 made with the host's cookie (149 bytes). */
export function initiationWithMac2(frame: Buffer, cookie: Uint8Array): Buffer {
  if (frame.length !== INITIATION_FRAME_BYTES && frame.length !== INITIATION_WITH_MAC2_FRAME_BYTES) {
    throw new XnetmonError('ERR_INTERNAL', `not an initiation frame (${frame.length} bytes)`);
  }
  const out = Buffer.alloc(INITIATION_WITH_MAC2_FRAME_BYTES);
  frame.copy(out, 0, 0, MAC2_OFFSET);
  out.writeUInt32LE(INITIATION_WITH_MAC2_FRAME_BYTES - LENGTH_PREFIX_BYTES, 0);
  computeMac2(cookie, out).copy(out, MAC2_OFFSET);
  return out;
}

/**
 * Host side: the secret Rm (random, replaced every 2 minutes), the cookie of a source
 * address, mac2 checks and cookie replies. A cookie made under the previous secret is
 * still accepted, so a cookie is good for at least 2 minutes after it was sent whatever
 * the moment of the rotation (a client uses one for 115 s).
 */
export class CookieChecker {
  private readonly replyKey: Buffer;
  private current: Buffer = randomBytes(32);
  private previous: Buffer | null = null;
  private rotatedAtMs: number;

  constructor(
    hostStaticPublic: Uint8Array,
    private readonly now: () => number,
    private readonly rotationMs = COOKIE_SECRET_ROTATION_MS,
  ) {
    this.replyKey = cookieKeyFor(hostStaticPublic);
    this.rotatedAtMs = now();
  }

  /**
   * cookie = MAC(Rm, source address). WireGuard adds the UDP port; over TCP every connection
   * has a new port, and the address is what the TCP handshake proved, so the address alone.
   */
  cookieFor(sourceAddress: string): Buffer {
    return this.cookieUnder(this.secrets()[0], sourceAddress);
  }

  /** True if the initiation's mac2 was made with this source's cookie (current or previous secret). */
  verifyMac2(frame: Buffer, sourceAddress: string): boolean {
    const mac2 = initiationMac2(frame);
    if (!mac2) return false;
    let valid = false;
    // Both compared always, so the time does not say which secret matched.
    for (const secret of this.secrets())
      valid = constantTimeEqual(computeMac2(this.cookieUnder(secret, sourceAddress), frame), mac2) || valid;
    return valid;
  }

  /** The cookie reply to an initiation (whose mac1 the caller verified). */
  createReply(initiation: Buffer, sourceAddress: string): Buffer {
    const frame = Buffer.alloc(COOKIE_REPLY_FRAME_BYTES);
    frame.writeUInt32LE(COOKIE_REPLY_FRAME_BYTES - LENGTH_PREFIX_BYTES, 0);
    frame[REPLY.type] = MessageType.cookieReply;
    frame.writeUInt32LE(initiation.readUInt32LE(INITIATION_SENDER_INDEX), REPLY.receiverIndex);
    // A random 96-bit nonce: the key is the same for the host's lifetime, so no counter to keep.
    const nonce = randomBytes(COOKIE_NONCE_BYTES);
    nonce.copy(frame, REPLY.nonce);
    const cipher = createCipheriv(AEAD_ALGORITHM, this.replyKey, nonce, { authTagLength: TAG_BYTES });
    // Additional data = the initiation's mac1: the reply answers that initiation only.
    cipher.setAAD(initiationMac1(initiation), { plaintextLength: COOKIE_BYTES });
    cipher.update(this.cookieFor(sourceAddress)).copy(frame, REPLY.encryptedCookie);
    cipher.final();
    cipher.getAuthTag().copy(frame, REPLY.encryptedCookie + COOKIE_BYTES);
    return frame;
  }

  private secrets(): Buffer[] {
    const nowMs = this.now();
    if (nowMs - this.rotatedAtMs >= this.rotationMs) {
      // More than two periods without a look: the old secret is as stale as the current one.
      this.previous = nowMs - this.rotatedAtMs >= 2 * this.rotationMs ? null : this.current;
      this.current = randomBytes(32);
      this.rotatedAtMs = nowMs;
    }
    return this.previous ? [this.current, this.previous] : [this.current];
  }

  private cookieUnder(secret: Buffer, sourceAddress: string): Buffer {
    return hmacSha256(secret, Buffer.from(sourceAddress, 'utf8')).subarray(0, COOKIE_BYTES);
  }
}

/**
 * Client side: check a cookie reply against the initiation it answers and return the cookie.
 * Throws the rejection: `unknown_index` for another initiation, `decrypt` if not from this host.
 */
export function consumeCookieReply(frame: Buffer, initiation: Buffer, hostCookieKey: Uint8Array): Buffer {
  if (
    frame.length !== COOKIE_REPLY_FRAME_BYTES ||
    frame.readUInt32LE(0) !== frame.length - LENGTH_PREFIX_BYTES ||
    frame[REPLY.type] !== MessageType.cookieReply
  ) {
    throw new SecureChannelError('malformed', 'cookie reply has the wrong size or type');
  }
  if (frame.readUInt32LE(REPLY.receiverIndex) !== initiation.readUInt32LE(INITIATION_SENDER_INDEX)) {
    throw new SecureChannelError('unknown_index', 'cookie reply is for another initiation');
  }
  const decipher = createDecipheriv(
    AEAD_ALGORITHM,
    hostCookieKey,
    frame.subarray(REPLY.nonce, REPLY.nonce + COOKIE_NONCE_BYTES),
    { authTagLength: TAG_BYTES },
  );
  decipher.setAAD(initiationMac1(initiation), { plaintextLength: COOKIE_BYTES });
  decipher.setAuthTag(frame.subarray(REPLY.encryptedCookie + COOKIE_BYTES));
  const cookie = decipher.update(frame.subarray(REPLY.encryptedCookie, REPLY.encryptedCookie + COOKIE_BYTES));
  try {
    decipher.final();
  } catch {
    throw new SecureChannelError('decrypt', 'cookie reply did not authenticate');
  }
  return cookie;
}
