// The test vectors of docs/protocol.md §9, byte for byte. Keep the two identical:
// an independent implementation is checked against the document, and this
// implementation against the same hex here.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  completeInitiation,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  encodeTai64n,
  handshakeHash,
  mac1KeyFor,
  openRecord,
  prepareInitiation,
  prepareResponder,
  publicKeyFromPrivate,
  sealRecord,
  staticIdentityFromPrivate,
} from '../../src/crypto/index.js';

const hex = (value: string): Buffer => Buffer.from(value, 'hex');

const V = {
  clientStaticPrivate: '7a73d8b11f58f976564610f1ee83bcc38a0f3608091e76e0ec8b3afe0b63353c',
  clientStaticPublic: '112760e824af077199053151b5529325033c63d798b29d306b231acce1377522',
  clientStaticPublicBase64: 'ESdg6CSvB3GZBTFRtVKTJQM8Y9eYsp0wayMazOE3dSI=',
  clientEphemeralPrivate: '41101e5a5b67ba66360e85c8f3950a360f93eafe4820937e51b8f469497821b4',
  hostStaticPrivate: 'a054feed52654f07da95645430eb223d5c454336bdef60eb6d38d849b1fb9962',
  hostStaticPublic: '20e473e0d24d37e896b109758c44fbb0fbf9e943c0ea13fcefde7109937a1013',
  hostStaticPublicBase64: 'IORz4NJNN+iWsQl1jET7sPv56UPA6hP8795xCZN6EBM=',
  hostEphemeralPrivate: '20420e9fb2add00bd36d5c1bff833433d782716f4091c7d6c05a8279877742db',
  mac1KeyHost: 'aa67d37de816bf4b669555ea9e5cbd09b258af05d0300932853511dfb97e309b',
  mac1KeyClient: '74bbc99057b91d014f6de3783efcdef559e06f77bb3bd817b7f8e123df5f8c70',
  clientTimeMs: 1700000000123,
  clientTimestamp: '400000006553f10a0754d4c0',
  hostTimeMs: 1700000000456,
  hostTimestamp: '400000006553f10a1b2e0200',
  clientIndex: 0x11223344,
  hostIndex: 0x55667788,
  initiation:
    '810000000144332211abf4b3f149f77aa56915d990112898dc0809c5fd8e944069e9c6a8be27562a68a87d4a7738a8b8a93eaf95bb9ba01387c7' +
    '6031abbfc1079f86e9739169b3b95c6a0830193344a47dbcf336c4a102fb0930e1af58e69ced0ef0c8839e1948edd946a16463d1a6f873b4878b' +
    'a01021cf2f44c04113b4be436f98b30373',
  response:
    '55000000028877665544332211bcc2c20299e5c784409fc72f2c0d5d05cd9dbd9b0bf39ae20cbc997ee5a1af3125d6195260f8dc314fe69b005e' +
    '1d5282056eb19442b2cdcd1ebab244bd5f0cff8f78e91175963f13d994c2ea',
  handshakeHash: 'c1b3fb755649617c23bb03ec61b0ee6438399cb97a8a01fce3c763700137ec7b',
  keyClientToHost: '546a8b2243120ec253f342b1b6348aedc883fda44b9afef9bcc0da1d28167b12',
  keyHostToClient: 'b7a68bbff33ab129ade6bcc9741dfc8fd8fc3d67d3441842a02d27c6bb33e357',
  recordCounter: 7n,
  recordTimeMs: 1700000000500,
  recordPayload: 'XNetMon route update 10.0.0.0/8',
  record:
    '4400000003887766550700000000000000e2411b50633436fa18ad5922774ba94001a7edfc01aba9bf20c9ac39ae6df5aa7a4a234ab27be669a1' +
    'e93961342fcb1c9c1364fb178941',
  keepaliveTimeMs: 1700000000789,
  keepalive: '2500000003443322110000000000000000fac1c28bcf78af5306e959ad5f21c0180037808fe095be09',
} as const;

function runHandshake() {
  const client = staticIdentityFromPrivate(hex(V.clientStaticPrivate));
  const host = staticIdentityFromPrivate(hex(V.hostStaticPrivate));
  const initiation = createInitiation({
    initiator: client,
    responderPublicKey: host.publicKey,
    timestamp: encodeTai64n(V.clientTimeMs),
    senderIndex: V.clientIndex,
    ephemeralPrivateKey: hex(V.clientEphemeralPrivate),
  });
  const consumed = consumeInitiation(initiation.frame, host, {
    findPeer: (key) => (key.equals(client.publicKey) ? 'vector-client' : undefined),
  });
  const response = createResponse(consumed.handshake, {
    timestamp: encodeTai64n(V.hostTimeMs),
    senderIndex: V.hostIndex,
    ephemeralPrivateKey: hex(V.hostEphemeralPrivate),
  });
  const completed = consumeResponse(initiation.handshake, response.frame);
  return { client, host, initiation, consumed, response, completed };
}

describe('crypto test vectors (docs/protocol.md §9)', () => {
  it('derives the static public keys, base64 encodings and mac1 keys', () => {
    const { client, host } = runHandshake();
    assert.equal(client.publicKey.toString('hex'), V.clientStaticPublic);
    assert.equal(host.publicKey.toString('hex'), V.hostStaticPublic);
    assert.equal(publicKeyFromPrivate(hex(V.clientStaticPrivate).toString('base64')), V.clientStaticPublicBase64);
    assert.equal(publicKeyFromPrivate(hex(V.hostStaticPrivate).toString('base64')), V.hostStaticPublicBase64);
    assert.equal(mac1KeyFor(host.publicKey).toString('hex'), V.mac1KeyHost);
    assert.equal(mac1KeyFor(client.publicKey).toString('hex'), V.mac1KeyClient);
    assert.equal(encodeTai64n(V.clientTimeMs).toString('hex'), V.clientTimestamp);
    assert.equal(encodeTai64n(V.hostTimeMs).toString('hex'), V.hostTimestamp);
  });

  it('builds the exact initiation and the host reads it back', () => {
    const { initiation, consumed } = runHandshake();
    assert.equal(initiation.frame.toString('hex'), V.initiation);
    assert.equal(consumed.peer, 'vector-client');
    assert.equal(consumed.initiatorStatic.toString('hex'), V.clientStaticPublic);
    assert.equal(consumed.timestamp.toString('hex'), V.clientTimestamp);
    assert.equal(consumed.handshake.initiatorIndex, V.clientIndex);
  });

  it('builds the exact response and both sides derive the same transport keys', () => {
    const { initiation, consumed, response, completed } = runHandshake();
    assert.equal(response.frame.toString('hex'), V.response);
    assert.equal(completed.timestamp.toString('hex'), V.hostTimestamp);
    assert.equal(handshakeHash(initiation.handshake).toString('hex'), V.handshakeHash);
    assert.equal(handshakeHash(consumed.handshake).toString('hex'), V.handshakeHash);
    assert.equal(completed.keys.sendKey.toString('hex'), V.keyClientToHost);
    assert.equal(completed.keys.receiveKey.toString('hex'), V.keyHostToClient);
    assert.equal(response.keys.receiveKey.toString('hex'), V.keyClientToHost);
    assert.equal(response.keys.sendKey.toString('hex'), V.keyHostToClient);
    assert.equal(completed.keys.remoteIndex, V.hostIndex);
    assert.equal(response.keys.remoteIndex, V.clientIndex);
  });

  it("halves prepared ahead (the initiation's e, es, s, ss; the response's e and se) give the same bytes", () => {
    const client = staticIdentityFromPrivate(hex(V.clientStaticPrivate));
    const host = staticIdentityFromPrivate(hex(V.hostStaticPrivate));
    const prepared = prepareInitiation({
      initiator: client,
      responderPublicKey: host.publicKey,
      ephemeralPrivateKey: hex(V.clientEphemeralPrivate),
    });
    const initiation = completeInitiation(prepared, encodeTai64n(V.clientTimeMs), V.clientIndex);
    assert.equal(initiation.frame.toString('hex'), V.initiation);
    assert.throws(
      () => completeInitiation(prepared, encodeTai64n(V.clientTimeMs + 1), V.clientIndex),
      /completed twice/,
    );
    const consumed = consumeInitiation(initiation.frame, host, { findPeer: () => 'vector-client' });
    const response = createResponse(consumed.handshake, {
      timestamp: encodeTai64n(V.hostTimeMs),
      senderIndex: V.hostIndex,
      prepared: prepareResponder(client.publicKey, hex(V.hostEphemeralPrivate)),
    });
    assert.equal(response.frame.toString('hex'), V.response);
    assert.equal(consumeResponse(initiation.handshake, response.frame).keys.sendKey.toString('hex'), V.keyClientToHost);
  });

  it('a responder prepared for another client is not used: a fresh ephemeral is, and the handshake completes', () => {
    const { client, host } = runHandshake();
    const initiation = createInitiation({
      initiator: client,
      responderPublicKey: host.publicKey,
      timestamp: encodeTai64n(V.clientTimeMs),
      senderIndex: V.clientIndex,
    });
    const consumed = consumeInitiation(initiation.frame, host, { findPeer: () => 'vector-client' });
    const forOther = prepareResponder(host.publicKey);
    const response = createResponse(consumed.handshake, {
      timestamp: encodeTai64n(V.hostTimeMs),
      senderIndex: V.hostIndex,
      prepared: forOther,
    });
    assert.ok(!response.frame.includes(forOther.ephemeral.publicKey), "the other client's ephemeral stays unused");
    const completed = consumeResponse(initiation.handshake, response.frame);
    assert.ok(completed.keys.sendKey.equals(response.keys.receiveKey));
  });

  it('seals the exact data record and keepalive, and opens them', () => {
    const record = sealRecord({
      key: hex(V.keyClientToHost),
      receiverIndex: V.hostIndex,
      counter: V.recordCounter,
      senderTimeMs: V.recordTimeMs,
      payload: Buffer.from(V.recordPayload, 'ascii'),
    });
    assert.equal(record.toString('hex'), V.record);
    const opened = openRecord(hex(V.record), hex(V.keyClientToHost));
    assert.equal(opened.senderTimeMs, V.recordTimeMs);
    assert.equal(opened.payload.toString('ascii'), V.recordPayload);

    const keepalive = sealRecord({
      key: hex(V.keyHostToClient),
      receiverIndex: V.clientIndex,
      counter: 0n,
      senderTimeMs: V.keepaliveTimeMs,
      payload: Buffer.alloc(0),
    });
    assert.equal(keepalive.toString('hex'), V.keepalive);
    assert.equal(openRecord(hex(V.keepalive), hex(V.keyHostToClient)).payload.length, 0);
  });
});
