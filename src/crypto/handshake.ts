// Noise_IK_25519_ChaChaPoly_SHA256 handshake (initiator = client in the
// virtual router, responder = host daemon), framed like WireGuard's: cleartext
// indices, a TAI64N timestamp as the initiation payload, and a mac1 over the
// whole message that the receiver checks before any Diffie-Hellman.
// Paper IV-C, Fig. 3(a): session keys are exchanged with public-key cryptography and timestamps.

import type { KeyObject } from 'node:crypto';
import { ValidationError, XnetmonError } from '../errors/index.js';
import {
  INITIATION_BODY_BYTES,
  INITIATION_WITH_MAC2_BODY_BYTES,
  KEY_BYTES,
  LENGTH_PREFIX_BYTES,
  MAC1_LABEL,
  MAC_BYTES,
  MessageType,
  PROLOGUE,
  PROTOCOL_NAME,
  RESPONSE_BODY_BYTES,
  TAG_BYTES,
  TAI64N_BYTES,
} from './constants.js';
import { SecureChannelError } from './errors.js';
import {
  aeadOpen,
  aeadSeal,
  constantTimeEqual,
  hkdf2,
  hmacSha256,
  isLowOrderPoint,
  sha256,
  takeEphemeralX25519,
  x25519,
  x25519KeyPairFromPrivate,
  x25519PublicKeyObject,
  type X25519KeyPair,
} from './primitives.js';

export const INITIATION_FRAME_BYTES = LENGTH_PREFIX_BYTES + 1 + INITIATION_BODY_BYTES;
export const RESPONSE_FRAME_BYTES = LENGTH_PREFIX_BYTES + 1 + RESPONSE_BODY_BYTES;
/** An initiation with mac2 appended (sent only after a cookie reply, docs/protocol.md §5.1). */
export const INITIATION_WITH_MAC2_FRAME_BYTES = LENGTH_PREFIX_BYTES + 1 + INITIATION_WITH_MAC2_BODY_BYTES;

// Offsets inside a full frame (length prefix included); docs/protocol.md §3 lists the same.
const INIT = {
  type: 4,
  senderIndex: 5,
  ephemeral: 9,
  encryptedStatic: 9 + KEY_BYTES,
  encryptedTimestamp: 9 + KEY_BYTES + KEY_BYTES + TAG_BYTES,
  mac1: INITIATION_FRAME_BYTES - MAC_BYTES,
} as const;
const RESP = {
  type: 4,
  senderIndex: 5,
  receiverIndex: 9,
  ephemeral: 13,
  encryptedTimestamp: 13 + KEY_BYTES,
  mac1: RESPONSE_FRAME_BYTES - MAC_BYTES,
} as const;

const EMPTY = Buffer.alloc(0);
const PROTOCOL_NAME_BYTES = Buffer.from(PROTOCOL_NAME, 'ascii');
/** h and ck after InitializeSymmetric(name) and MixHash(prologue): the same for every handshake. */
const INITIAL_HASH = sha256(PROTOCOL_NAME_BYTES, Buffer.from(PROLOGUE, 'ascii'));
const INITIAL_CHAINING_KEY = PROTOCOL_NAME_BYTES;

/** A static identity with the values derived from it once. */
export interface StaticIdentity {
  privateKey: KeyObject;
  publicKey: Buffer;
  /** HASH("mac1----" || publicKey): the key others use for mac1 of messages to us. */
  mac1Key: Buffer;
}

export function staticIdentityFromPrivate(privateKey: Uint8Array): StaticIdentity {
  const pair = x25519KeyPairFromPrivate(privateKey);
  return { privateKey: pair.privateKey, publicKey: pair.publicKey, mac1Key: mac1KeyFor(pair.publicKey) };
}

export function mac1KeyFor(receiverStaticPublic: Uint8Array): Buffer {
  return sha256(Buffer.from(MAC1_LABEL, 'ascii'), receiverStaticPublic);
}

/** mac1 = first 16 bytes of HMAC-SHA256(mac1Key, frame[4 .. mac1 offset)). */
function computeMac1(mac1Key: Uint8Array, frame: Buffer, mac1Offset: number): Buffer {
  return hmacSha256(mac1Key, frame.subarray(LENGTH_PREFIX_BYTES, mac1Offset)).subarray(0, MAC_BYTES);
}

/** Noise SymmetricState (Noise spec §5.2) with SHA-256 and ChaChaPoly. */
class SymmetricState {
  chainingKey: Buffer = INITIAL_CHAINING_KEY;
  hash: Buffer = INITIAL_HASH;
  private key: Buffer | null = null;
  private nonce = 0n;

  mixHash(data: Uint8Array): void {
    this.hash = sha256(this.hash, data);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, key] = hkdf2(this.chainingKey, inputKeyMaterial);
    this.chainingKey = chainingKey;
    this.key = key;
    this.nonce = 0n;
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    if (!this.key) throw new XnetmonError('ERR_INTERNAL', 'encryptAndHash before mixKey');
    const ciphertext = aeadSeal(this.key, this.nonce++, this.hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array, what: string): Buffer {
    if (!this.key) throw new XnetmonError('ERR_INTERNAL', 'decryptAndHash before mixKey');
    const plaintext = aeadOpen(this.key, this.nonce, this.hash, ciphertext);
    if (!plaintext) throw new SecureChannelError('decrypt', `handshake ${what} did not authenticate`);
    this.nonce++;
    this.mixHash(ciphertext);
    return plaintext;
  }

  /** Noise Split(): (initiator->responder key, responder->initiator key). */
  split(): [Buffer, Buffer] {
    return hkdf2(this.chainingKey, EMPTY);
  }
}

/** Keys and indices of one direction pair, produced by a completed handshake. */
export interface TransportKeys {
  sendKey: Buffer;
  receiveKey: Buffer;
  /** Our index: the receiver_index the peer puts on records to us. */
  localIndex: number;
  /** The peer's index: the receiver_index we put on records to the peer. */
  remoteIndex: number;
}

export interface InitiationParams {
  initiator: StaticIdentity;
  responderPublicKey: Uint8Array;
  /** TAI64N, 12 bytes; must grow between handshakes of the same initiator key. */
  timestamp: Uint8Array;
  senderIndex: number;
  /** Injected ephemeral private key (test vectors); a fresh one otherwise. */
  ephemeralPrivateKey?: Uint8Array;
  /** DH(initiator static, responder static), cached by long-lived callers. */
  staticShared?: Buffer;
  /** responderPublicKey already imported (x25519PublicKeyObject), cached by long-lived callers. */
  responderKey?: KeyObject;
}

/** State the initiator keeps between sending the initiation and reading the response. */
export interface InitiatorHandshake {
  readonly symmetric: SymmetricState;
  readonly ephemeral: X25519KeyPair;
  readonly initiator: StaticIdentity;
  readonly senderIndex: number;
}

function resolveEphemeral(injected: Uint8Array | undefined): X25519KeyPair {
  return injected ? x25519KeyPairFromPrivate(injected) : takeEphemeralX25519();
}

function checkIndex(index: number): void {
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff)
    throw new ValidationError('senderIndex', 'must be a u32');
}

/**
 * The part of an initiation that does not depend on the moment it is sent: e, es, s, ss.
 * Use it once: completeInitiation() consumes it.
 */
export interface PreparedInitiation {
  readonly symmetric: SymmetricState;
  readonly ephemeral: X25519KeyPair;
  readonly initiator: StaticIdentity;
  readonly responderPublicKey: Buffer;
  readonly encryptedStatic: Buffer;
  /** Set by completeInitiation(): an ephemeral serves one handshake only. */
  used: boolean;
}

/**
 * Initiator, first half: -> e, es, s, ss. It holds the only DH of the initiation, so a
 * long-lived client prepares its next one in idle time (the ephemeral private key is then
 * held until that handshake, as the pool of ephemerals already holds it).
 */
export function prepareInitiation(params: Omit<InitiationParams, 'timestamp' | 'senderIndex'>): PreparedInitiation {
  if (isLowOrderPoint(params.responderPublicKey))
    throw new SecureChannelError('low_order_key', 'responder static key is a small-order point');
  const ephemeral = resolveEphemeral(params.ephemeralPrivateKey);
  const state = new SymmetricState();
  state.mixHash(params.responderPublicKey); // pre-message <- s
  state.mixHash(ephemeral.publicKey); // e
  state.mixKey(x25519(ephemeral.privateKey, params.responderKey ?? params.responderPublicKey)); // es
  const encryptedStatic = state.encryptAndHash(params.initiator.publicKey); // s
  state.mixKey(params.staticShared ?? x25519(params.initiator.privateKey, params.responderPublicKey)); // ss
  return {
    symmetric: state,
    ephemeral,
    initiator: params.initiator,
    responderPublicKey: Buffer.from(params.responderPublicKey),
    encryptedStatic,
    used: false,
  };
}

/** Initiator, second half: {timestamp}, the indices and mac1. Returns the full frame. */
export function completeInitiation(
  prepared: PreparedInitiation,
  timestamp: Uint8Array,
  senderIndex: number,
): { frame: Buffer; handshake: InitiatorHandshake } {
  checkIndex(senderIndex);
  if (timestamp.length !== TAI64N_BYTES) throw new ValidationError('timestamp', 'must be 12 bytes of TAI64N');
  if (prepared.used) throw new XnetmonError('ERR_INTERNAL', 'a prepared initiation was completed twice');
  prepared.used = true;
  const state = prepared.symmetric;
  const encryptedTimestamp = state.encryptAndHash(timestamp);

  const frame = Buffer.alloc(INITIATION_FRAME_BYTES);
  frame.writeUInt32LE(INITIATION_FRAME_BYTES - LENGTH_PREFIX_BYTES, 0);
  frame[INIT.type] = MessageType.initiation;
  frame.writeUInt32LE(senderIndex, INIT.senderIndex);
  prepared.ephemeral.publicKey.copy(frame, INIT.ephemeral);
  prepared.encryptedStatic.copy(frame, INIT.encryptedStatic);
  encryptedTimestamp.copy(frame, INIT.encryptedTimestamp);
  computeMac1(mac1KeyFor(prepared.responderPublicKey), frame, INIT.mac1).copy(frame, INIT.mac1);
  return {
    frame,
    handshake: { symmetric: state, ephemeral: prepared.ephemeral, initiator: prepared.initiator, senderIndex },
  };
}

/** Initiator: -> e, es, s, ss, {timestamp}. Returns the full frame. */
export function createInitiation(params: InitiationParams): { frame: Buffer; handshake: InitiatorHandshake } {
  return completeInitiation(prepareInitiation(params), params.timestamp, params.senderIndex);
}

/**
 * Hooks the responder runs between the checks of an initiation, so the cheap
 * ones (rate limits) happen before the expensive ones (DH). Throw a
 * SecureChannelError to reject.
 */
export interface InitiationPolicy<Peer> {
  /** After mac1 verified, before any DH: per-source rate limit. */
  afterMac1?(): void;
  /** After the initiator static decrypted: the configured peer, or undefined (unknown_key). */
  findPeer(initiatorStatic: Buffer): Peer | undefined;
  /** Before the static-static DH: per-key rate limit. */
  admitPeer?(peer: Peer): void;
  /** Cached DH(responder static, initiator static) for this peer. */
  staticShared?(peer: Peer): Buffer | undefined;
}

export interface ResponderHandshake {
  readonly symmetric: SymmetricState;
  readonly initiatorEphemeral: Buffer;
  readonly initiatorEphemeralKey: KeyObject;
  readonly initiatorStatic: Buffer;
  readonly initiatorIndex: number;
}

export interface ConsumedInitiation<Peer> {
  peer: Peer;
  initiatorStatic: Buffer;
  /** The initiator's TAI64N timestamp, authenticated. The caller checks it is newer. */
  timestamp: Buffer;
  handshake: ResponderHandshake;
}

/** The mac1 field of an initiation (the cookie reply's additional data). */
export function initiationMac1(frame: Buffer): Buffer {
  return frame.subarray(INIT.mac1, INIT.mac1 + MAC_BYTES);
}

/** Size, type and mac1 of an initiation (with or without mac2): one HMAC, no DH. Throws the rejection. */
export function verifyInitiationMac1(frame: Buffer, responder: StaticIdentity): void {
  const sized = frame.length === INITIATION_FRAME_BYTES || frame.length === INITIATION_WITH_MAC2_FRAME_BYTES;
  if (
    !sized ||
    frame.readUInt32LE(0) !== frame.length - LENGTH_PREFIX_BYTES ||
    frame[INIT.type] !== MessageType.initiation
  ) {
    throw new SecureChannelError('malformed', 'initiation has the wrong size or type');
  }
  if (!constantTimeEqual(computeMac1(responder.mac1Key, frame, INIT.mac1), initiationMac1(frame))) {
    throw new SecureChannelError('mac1', 'initiation mac1 does not match this host key');
  }
}

/** Responder: check and decrypt an initiation frame, in the order of docs/protocol.md §4.1. mac2, if any, is the caller's (cookie.ts). */
export function consumeInitiation<Peer>(
  frame: Buffer,
  responder: StaticIdentity,
  policy: InitiationPolicy<Peer>,
): ConsumedInitiation<Peer> {
  verifyInitiationMac1(frame, responder);
  policy.afterMac1?.();
  const initiatorEphemeral = Buffer.from(frame.subarray(INIT.ephemeral, INIT.ephemeral + KEY_BYTES));
  if (isLowOrderPoint(initiatorEphemeral))
    throw new SecureChannelError('low_order_key', 'initiator ephemeral is a small-order point');

  const state = new SymmetricState();
  state.mixHash(responder.publicKey);
  state.mixHash(initiatorEphemeral);
  // Imported into OpenSSL once for both DHs with it (es here, ee in the response).
  const initiatorEphemeralKey = x25519PublicKeyObject(initiatorEphemeral);
  state.mixKey(x25519(responder.privateKey, initiatorEphemeralKey));
  const initiatorStatic = state.decryptAndHash(
    frame.subarray(INIT.encryptedStatic, INIT.encryptedTimestamp),
    'static key',
  );
  if (isLowOrderPoint(initiatorStatic))
    throw new SecureChannelError('low_order_key', 'initiator static key is a small-order point');
  const peer = policy.findPeer(initiatorStatic);
  if (peer === undefined) throw new SecureChannelError('unknown_key', 'initiator static key is not a configured peer');
  policy.admitPeer?.(peer);
  state.mixKey(policy.staticShared?.(peer) ?? x25519(responder.privateKey, initiatorStatic));
  const timestamp = state.decryptAndHash(frame.subarray(INIT.encryptedTimestamp, INIT.mac1), 'timestamp');
  return {
    peer,
    initiatorStatic,
    timestamp,
    handshake: {
      symmetric: state,
      initiatorEphemeral,
      initiatorEphemeralKey,
      initiatorStatic,
      initiatorIndex: frame.readUInt32LE(INIT.senderIndex),
    },
  };
}

export interface ResponseParams {
  /** The host's TAI64N wall clock, so the client learns the clock offset. */
  timestamp: Uint8Array;
  senderIndex: number;
  ephemeralPrivateKey?: Uint8Array;
  /** An ephemeral prepared for this initiator, with se computed ahead (prepareResponder()). */
  prepared?: PreparedResponder;
}

/** A responder ephemeral made for one initiator static key, with se = DH(e, s_initiator). */
export interface PreparedResponder {
  readonly ephemeral: X25519KeyPair;
  readonly initiatorStatic: Buffer;
  readonly ephemeralStaticShared: Buffer;
}

/**
 * Takes se off the response's critical path: the host knows each client's static key, so
 * it makes the ephemeral for that client's next handshake, and its DH with that key, in
 * idle time. Use it once.
 */
export function prepareResponder(initiatorStatic: Uint8Array, ephemeralPrivateKey?: Uint8Array): PreparedResponder {
  const ephemeral = resolveEphemeral(ephemeralPrivateKey);
  return {
    ephemeral,
    initiatorStatic: Buffer.from(initiatorStatic),
    ephemeralStaticShared: x25519(ephemeral.privateKey, initiatorStatic),
  };
}

/** Responder: <- e, ee, se, {timestamp}. Returns the full frame and the transport keys. */
export function createResponse(
  handshake: ResponderHandshake,
  params: ResponseParams,
): { frame: Buffer; keys: TransportKeys } {
  checkIndex(params.senderIndex);
  if (params.timestamp.length !== TAI64N_BYTES) throw new ValidationError('timestamp', 'must be 12 bytes of TAI64N');
  // A prepared ephemeral serves only the initiator it was made for; an injected key wins (test vectors).
  const prepared =
    !params.ephemeralPrivateKey && params.prepared?.initiatorStatic.equals(handshake.initiatorStatic)
      ? params.prepared
      : undefined;
  const ephemeral = prepared?.ephemeral ?? resolveEphemeral(params.ephemeralPrivateKey);
  const state = handshake.symmetric;
  state.mixHash(ephemeral.publicKey); // e
  state.mixKey(x25519(ephemeral.privateKey, handshake.initiatorEphemeralKey)); // ee
  state.mixKey(prepared?.ephemeralStaticShared ?? x25519(ephemeral.privateKey, handshake.initiatorStatic)); // se
  const encryptedTimestamp = state.encryptAndHash(params.timestamp);
  const [initiatorToResponder, responderToInitiator] = state.split();

  const frame = Buffer.alloc(RESPONSE_FRAME_BYTES);
  frame.writeUInt32LE(RESPONSE_FRAME_BYTES - LENGTH_PREFIX_BYTES, 0);
  frame[RESP.type] = MessageType.response;
  frame.writeUInt32LE(params.senderIndex, RESP.senderIndex);
  frame.writeUInt32LE(handshake.initiatorIndex, RESP.receiverIndex);
  ephemeral.publicKey.copy(frame, RESP.ephemeral);
  encryptedTimestamp.copy(frame, RESP.encryptedTimestamp);
  computeMac1(mac1KeyFor(handshake.initiatorStatic), frame, RESP.mac1).copy(frame, RESP.mac1);
  return {
    frame,
    keys: {
      sendKey: responderToInitiator,
      receiveKey: initiatorToResponder,
      localIndex: params.senderIndex,
      remoteIndex: handshake.initiatorIndex,
    },
  };
}

/** Initiator: check and decrypt the response (docs/protocol.md §4.2). The handshake state is consumed. */
export function consumeResponse(
  handshake: InitiatorHandshake,
  frame: Buffer,
): { keys: TransportKeys; timestamp: Buffer } {
  if (
    frame.length !== RESPONSE_FRAME_BYTES ||
    frame.readUInt32LE(0) !== frame.length - LENGTH_PREFIX_BYTES ||
    frame[RESP.type] !== MessageType.response
  ) {
    throw new SecureChannelError('malformed', 'response has the wrong size or type');
  }
  if (!constantTimeEqual(computeMac1(handshake.initiator.mac1Key, frame, RESP.mac1), frame.subarray(RESP.mac1))) {
    throw new SecureChannelError('mac1', 'response mac1 does not match our key');
  }
  if (frame.readUInt32LE(RESP.receiverIndex) !== handshake.senderIndex) {
    throw new SecureChannelError('unknown_index', 'response is for another initiation');
  }
  const responderEphemeral = Buffer.from(frame.subarray(RESP.ephemeral, RESP.ephemeral + KEY_BYTES));
  if (isLowOrderPoint(responderEphemeral))
    throw new SecureChannelError('low_order_key', 'responder ephemeral is a small-order point');
  // Work on the handshake's own state: a failed response leaves the handshake unusable, which is what we want.
  const state = handshake.symmetric;
  state.mixHash(responderEphemeral);
  const responderEphemeralKey = x25519PublicKeyObject(responderEphemeral); // imported once for ee and se
  state.mixKey(x25519(handshake.ephemeral.privateKey, responderEphemeralKey)); // ee
  state.mixKey(x25519(handshake.initiator.privateKey, responderEphemeralKey)); // se
  const timestamp = state.decryptAndHash(frame.subarray(RESP.encryptedTimestamp, RESP.mac1), 'timestamp');
  const [initiatorToResponder, responderToInitiator] = state.split();
  return {
    keys: {
      sendKey: initiatorToResponder,
      receiveKey: responderToInitiator,
      localIndex: handshake.senderIndex,
      remoteIndex: frame.readUInt32LE(RESP.senderIndex),
    },
    timestamp,
  };
}

/** The handshake hash after the last message, for test vectors and channel binding. */
export function handshakeHash(handshake: InitiatorHandshake | ResponderHandshake): Buffer {
  return Buffer.from(handshake.symmetric.hash);
}
