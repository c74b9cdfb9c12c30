// Thin wrappers over node:crypto: SHA-256, HMAC, HKDF, ChaCha20-Poly1305 with a
// 64-bit counter nonce, and X25519 on raw 32-byte keys. Keys cross into
// OpenSSL as JWK because that import is ~10x cheaper than DER here.

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { KEY_BYTES, TAG_BYTES } from './constants.js';
import { SecureChannelError } from './errors.js';

const AEAD_ALGORITHM = 'chacha20-poly1305';
const EMPTY = Buffer.alloc(0);

export function sha256(...parts: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: readonly Uint8Array[]): Buffer {
  const mac = createHmac('sha256', key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

const HKDF_BLOCK_1 = Buffer.from([1]);
const HKDF_BLOCK_2 = Buffer.from([2]);

/**
 * Noise HKDF(ck, ikm, 2) = RFC 5869 HKDF-SHA256 with salt=ck, empty info, 64 bytes,
 * written out as Noise §4.3 does (three HMACs): a quarter cheaper here than hkdfSync,
 * and a handshake runs it five times on each side.
 */
export function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Buffer, Buffer] {
  const tempKey = hmacSha256(chainingKey, inputKeyMaterial);
  const output1 = hmacSha256(tempKey, HKDF_BLOCK_1);
  return [output1, hmacSha256(tempKey, output1, HKDF_BLOCK_2)];
}

export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Noise ChaChaPoly nonce: 4 zero bytes || counter as u64 little-endian. */
export function counterNonce(counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  return nonce;
}

/** Encrypt plaintext parts as one message; returns [ciphertext parts..., tag] for gathered writes. */
export function aeadSealParts(
  key: Uint8Array,
  counter: bigint,
  ad: Uint8Array,
  plaintextParts: readonly Uint8Array[],
): Buffer[] {
  const cipher = createCipheriv(AEAD_ALGORITHM, key, counterNonce(counter), { authTagLength: TAG_BYTES });
  let plaintextLength = 0;
  for (const part of plaintextParts) plaintextLength += part.length;
  cipher.setAAD(ad, { plaintextLength });
  const out: Buffer[] = [];
  for (const part of plaintextParts) if (part.length > 0) out.push(cipher.update(part));
  cipher.final();
  out.push(cipher.getAuthTag());
  return out;
}

export function aeadSeal(key: Uint8Array, counter: bigint, ad: Uint8Array, plaintext: Uint8Array): Buffer {
  return Buffer.concat(aeadSealParts(key, counter, ad, [plaintext]));
}

/** Decrypt ciphertext||tag; null when the tag does not verify (no detail leaks out). */
export function aeadOpen(key: Uint8Array, counter: bigint, ad: Uint8Array, sealed: Uint8Array): Buffer | null {
  if (sealed.length < TAG_BYTES) return null;
  const split = sealed.length - TAG_BYTES;
  const decipher = createDecipheriv(AEAD_ALGORITHM, key, counterNonce(counter), { authTagLength: TAG_BYTES });
  decipher.setAAD(ad, { plaintextLength: split });
  decipher.setAuthTag(sealed.subarray(split));
  const plaintext = split > 0 ? decipher.update(sealed.subarray(0, split)) : EMPTY;
  try {
    decipher.final();
  } catch {
    return null;
  }
  return plaintext;
}

// X25519 points of small order (RFC 7748 §6.1 "check the all-zero output";
// list from libsodium). Bit 255 is ignored by X25519, so byte 31 is compared
// with its top bit cleared, as libsodium does.
const LOW_ORDER_POINTS: readonly Buffer[] = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

export function isLowOrderPoint(publicKey: Uint8Array): boolean {
  if (publicKey.length !== KEY_BYTES) return false;
  for (const point of LOW_ORDER_POINTS) {
    let diff = (publicKey[31] & 0x7f) ^ point[31];
    for (let i = 0; i < 31; i++) diff |= publicKey[i] ^ point[i];
    if (diff === 0) return true;
  }
  return false;
}

function isAllZero(bytes: Uint8Array): boolean {
  let acc = 0;
  // Indexed: for-of over a Buffer goes through an iterator, ~30x slower here.
  for (let i = 0; i < bytes.length; i++) acc |= bytes[i];
  return acc === 0;
}

export function x25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
}

// PKCS#8 wrapper of a raw X25519 private key (RFC 8410); used only for static
// and injected keys, so the slower DER import does not matter.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export function x25519PrivateKeyObject(privateKey: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: 'der', type: 'pkcs8' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

export function rawPrivateKey(key: KeyObject): Buffer {
  return Buffer.from(key.export({ format: 'jwk' }).d as string, 'base64url');
}

export interface X25519KeyPair {
  privateKey: KeyObject;
  publicKey: Buffer;
}

export function generateX25519(): X25519KeyPair {
  const pair = generateKeyPairSync('x25519');
  return { privateKey: pair.privateKey, publicKey: rawPublicKey(pair.publicKey) };
}

/**
 * Values made ahead, in idle time, so that making them is off the handshake's critical
 * path: take() hands out a ready one (or makes one on the spot) and refills, one per turn
 * of the event loop, so that a refill never delays I/O by more than one make(). Each
 * value is handed out once and only held in this process's memory.
 */
export class MadeAhead<T> {
  private readonly ready: T[] = [];
  private refill: NodeJS.Immediate | undefined;

  constructor(
    private readonly make: () => T,
    private readonly depth = 1,
  ) {}

  take(): T {
    const value = this.ready.shift() ?? this.make();
    this.scheduleRefill();
    return value;
  }

  // Referenced, not unref()'d: an unreferenced immediate waits for the next I/O event, which
  // in a handshake is the peer's message, and the refill then lands on the critical path.
  private scheduleRefill(): void {
    this.refill ??= setImmediate(() => {
      this.refill = undefined;
      this.ready.push(this.make());
      if (this.ready.length < this.depth) this.scheduleRefill();
    });
  }
}

/** Ephemeral key pairs, key generation being ~60 us here. */
const ephemerals = new MadeAhead(generateX25519, 2);

export function takeEphemeralX25519(): X25519KeyPair {
  return ephemerals.take();
}

export function x25519KeyPairFromPrivate(privateKey: Uint8Array): X25519KeyPair {
  const keyObject = x25519PrivateKeyObject(privateKey);
  return { privateKey: keyObject, publicKey: rawPublicKey(keyObject) };
}

/** DH(private, public); refuses small-order inputs and an all-zero shared secret. */
export function x25519(privateKey: KeyObject, publicKey: Uint8Array | KeyObject): Buffer {
  let peer: KeyObject;
  if (publicKey instanceof Uint8Array) {
    if (isLowOrderPoint(publicKey))
      throw new SecureChannelError('low_order_key', 'X25519 public key is a small-order point');
    peer = x25519PublicKeyObject(publicKey);
  } else {
    peer = publicKey;
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: peer });
  } catch (error) {
    // OpenSSL refuses an all-zero X25519 result ("failed during derivation").
    throw new SecureChannelError('low_order_key', 'X25519 derivation failed (small-order point)', { cause: error });
  }
  if (isAllZero(shared)) throw new SecureChannelError('low_order_key', 'X25519 shared secret is all zeros');
  return shared;
}
