// The host's peer list: which client keys may connect, and the network each updates,
// with what is derived from each key once per configuration.

import { ValidationError } from '../errors/index.js';
import { prepareResponder, type PreparedResponder, type StaticIdentity } from './handshake.js';
import { parsePublicKey } from './keys.js';
import { MadeAhead, x25519 } from './primitives.js';

/** One virtual router allowed to connect: its client key and the network it updates. */
export interface SecurePeer {
  /** X25519 public key, base64 of the raw 32 bytes. */
  publicKey: string;
  /** Network name this key may update. */
  id: string;
}

/** @internal */
export interface ConfiguredPeer {
  id: string;
  publicKey: Buffer;
  publicKeyBase64: string;
  /** DH(host static, client static), computed once per configuration. */
  staticShared: Buffer;
  /** The ephemeral of this client's next handshake, with se, made in idle time after its last one. */
  responders: MadeAhead<PreparedResponder>;
}

/** @internal the peer list, checked (ValidationError with the path of the bad entry). */
export function parsePeers(peers: readonly SecurePeer[], identity: StaticIdentity): Map<string, ConfiguredPeer> {
  if (!Array.isArray(peers)) throw new ValidationError('peers', 'must be an array');
  const byKey = new Map<string, ConfiguredPeer>();
  peers.forEach((peer, i) => {
    if (typeof peer?.id !== 'string' || peer.id.length === 0)
      throw new ValidationError(`peers[${i}].id`, 'must be a non-empty string');
    const publicKey = parsePublicKey(peer.publicKey, `peers[${i}].publicKey`);
    const publicKeyBase64 = publicKey.toString('base64');
    const clash = byKey.get(publicKeyBase64);
    if (clash) throw new ValidationError(`peers[${i}].publicKey`, `same key as peer "${clash.id}"`);
    byKey.set(publicKeyBase64, {
      id: peer.id,
      publicKey,
      publicKeyBase64,
      staticShared: x25519(identity.privateKey, publicKey),
      responders: new MadeAhead(() => prepareResponder(publicKey)),
    });
  });
  return byKey;
}
