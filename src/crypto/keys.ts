// Static identity keys: X25519, encoded as standard base64 of the raw 32 bytes
// (the WireGuard format, so `wg genkey`/`wg pubkey` output is accepted as is).

import { ValidationError } from '../errors/index.js';
import { KEY_BYTES } from './constants.js';
import { generateX25519, isLowOrderPoint, rawPrivateKey, rawPublicKey, x25519PrivateKeyObject } from './primitives.js';

const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;

export interface KeyPairBase64 {
  publicKey: string;
  privateKey: string;
}

export function generateKeyPair(): KeyPairBase64 {
  const pair = generateX25519();
  return {
    publicKey: pair.publicKey.toString('base64'),
    privateKey: rawPrivateKey(pair.privateKey).toString('base64'),
  };
}

function decodeKey(value: unknown, path: string): Buffer {
  if (typeof value !== 'string') throw new ValidationError(path, 'key must be a base64 string');
  const text = value.trim();
  if (!BASE64_KEY.test(text))
    throw new ValidationError(path, `key must be ${KEY_BYTES} bytes in standard base64 (44 characters ending in "=")`);
  const raw = Buffer.from(text, 'base64');
  // Non-canonical trailing bits would give two spellings of one key; refuse them.
  if (raw.length !== KEY_BYTES || raw.toString('base64') !== text)
    throw new ValidationError(path, 'key is not canonical base64 of 32 bytes');
  return raw;
}

/** Decode and validate an X25519 public key; small-order points are refused. */
export function parsePublicKey(value: unknown, path = 'publicKey'): Buffer {
  const raw = decodeKey(value, path);
  if (isLowOrderPoint(raw))
    throw new ValidationError(
      path,
      'X25519 public key is a small-order point (would give a predictable shared secret)',
    );
  return raw;
}

/** Decode an X25519 private key (any 32 bytes; X25519 clamps it). */
export function parsePrivateKey(value: unknown, path = 'privateKey'): Buffer {
  return decodeKey(value, path);
}

export function publicKeyFromPrivate(privateKey: string): string {
  const raw = parsePrivateKey(privateKey);
  return rawPublicKey(x25519PrivateKeyObject(raw)).toString('base64');
}
