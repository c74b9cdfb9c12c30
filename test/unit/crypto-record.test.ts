// The record layer and the handshake without sockets: every check of
// docs/protocol.md §4 with its reason, and random mutations of valid messages.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_RECORD_LIMITS,
  FrameDecoder,
  SecureChannelError,
  SessionKeypair,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  encodeTai64n,
  receiveRecord,
  sealRecord,
  staticIdentityFromPrivate,
  type RecordLimits,
  type TransportKeys,
} from '../../src/crypto/index.js';

const T0 = 1_700_000_000_000;
const limits: RecordLimits = { ...DEFAULT_RECORD_LIMITS, eMaxMs: 2000 };

function reason(expected: string): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof SecureChannelError, `expected SecureChannelError, got ${String(error)}`);
    assert.equal(error.reason, expected);
    return true;
  };
}

function keyPairs(): { sender: SessionKeypair; receiver: SessionKeypair } {
  const a: TransportKeys = {
    sendKey: Buffer.alloc(32, 0xa1),
    receiveKey: Buffer.alloc(32, 0xb2),
    localIndex: 10,
    remoteIndex: 20,
  };
  const b: TransportKeys = { sendKey: a.receiveKey, receiveKey: a.sendKey, localIndex: 20, remoteIndex: 10 };
  // Receiver learned offset 0 (clocks agree).
  return { sender: new SessionKeypair(a, T0, 0), receiver: new SessionKeypair(b, T0, 0) };
}

function seal(sender: SessionKeypair, payload: Buffer, nowMs = T0): Buffer {
  return Buffer.concat(sender.seal(payload, nowMs, limits));
}

function receive(receiver: SessionKeypair, frame: Buffer, nowMs = T0, recordLimits = limits) {
  return receiveRecord(frame, (index) => (index === receiver.localIndex ? receiver : undefined), nowMs, recordLimits);
}

describe('record layer checks', () => {
  it('round-trips payloads and delivers the sender timestamp', () => {
    const { sender, receiver } = keyPairs();
    for (let i = 0; i < 5; i++) {
      const payload = Buffer.from(`update ${i}`);
      const got = receive(receiver, seal(sender, payload, T0 + i), T0 + i);
      assert.deepEqual(got.payload, payload);
      assert.equal(got.counter, BigInt(i));
      assert.equal(got.senderTimeMs, T0 + i);
    }
  });

  it('refuses a duplicated record (replay)', () => {
    const { sender, receiver } = keyPairs();
    const frame = seal(sender, Buffer.from('x'));
    receive(receiver, frame);
    assert.throws(() => receive(receiver, frame), reason('replay'));
  });

  it('accepts reordering within the window once each, refuses beyond it', () => {
    const { sender, receiver } = keyPairs();
    const frames = Array.from({ length: 8 }, (_, i) => seal(sender, Buffer.from([i])));
    for (const i of [3, 0, 7, 1, 2, 6, 4, 5]) assert.deepEqual(receive(receiver, frames[i]).payload, Buffer.from([i]));
    for (const frame of frames) assert.throws(() => receive(receiver, frame), reason('replay'));
    const old = seal(sender, Buffer.from('old'));
    sender.sendCounter = 9000n;
    receive(receiver, seal(sender, Buffer.from('far ahead')));
    assert.throws(() => receive(receiver, old), reason('replay'));
  });

  it('a forged record cannot move the window (it moves only after the tag verifies)', () => {
    const { sender, receiver } = keyPairs();
    sender.sendCounter = 100_000n;
    const forged = seal(sender, Buffer.from('x'));
    forged[forged.length - 1] ^= 1;
    assert.throws(() => receive(receiver, forged), reason('decrypt'));
    sender.sendCounter = 0n;
    assert.ok(receive(receiver, seal(sender, Buffer.from('still fresh'))));
  });

  it('refuses a counter at REJECT_AFTER_MESSAGES, and the sender refuses to reach it', () => {
    const { sender, receiver } = keyPairs();
    sender.sendCounter = limits.rejectAfterMessages;
    const atLimit = sealRecord({
      key: sender.sendKey,
      receiverIndex: 20,
      counter: limits.rejectAfterMessages,
      senderTimeMs: T0,
      payload: Buffer.from('x'),
    });
    assert.throws(() => receive(receiver, atLimit), reason('counter_limit'));
    assert.throws(() => sender.seal(Buffer.from('x'), T0, limits), reason('counter_limit'));
    const below = sealRecord({
      key: sender.sendKey,
      receiverIndex: 20,
      counter: limits.rejectAfterMessages - 1n,
      senderTimeMs: T0,
      payload: Buffer.from('x'),
    });
    assert.ok(receive(receiver, below));
  });

  it('refuses records whose timestamp breaks eq. (1) by more than e_max', () => {
    const { sender, receiver } = keyPairs();
    assert.ok(receive(receiver, seal(sender, Buffer.from('ok'), T0 - 1500), T0));
    assert.throws(() => receive(receiver, seal(sender, Buffer.from('late'), T0 - 2001), T0), reason('skew'));
    const { sender: s2, receiver: r2 } = keyPairs();
    assert.throws(() => receive(r2, seal(s2, Buffer.from('future'), T0 + 2001), T0), reason('skew'));
  });

  it('uses the offset learned at the handshake (clocks that differ but stay put are fine)', () => {
    const a: TransportKeys = {
      sendKey: Buffer.alloc(32, 1),
      receiveKey: Buffer.alloc(32, 2),
      localIndex: 1,
      remoteIndex: 2,
    };
    const b: TransportKeys = { sendKey: a.receiveKey, receiveKey: a.sendKey, localIndex: 2, remoteIndex: 1 };
    // Sender clock is 60 s behind; the receiver learned offset +60 000 ms (+5 ms transit).
    const sender = new SessionKeypair(a, T0 - 60_000, 0);
    const receiver = new SessionKeypair(b, T0, 60_005);
    assert.ok(receive(receiver, seal(sender, Buffer.from('x'), T0 - 60_000 + 100), T0 + 100));
    assert.throws(() => receive(receiver, seal(sender, Buffer.from('y'), T0 + 100), T0 + 100), reason('skew'));
  });

  it('refuses records under keys older than REJECT_AFTER_SECONDS, an unknown index and a flipped bit', () => {
    const { sender, receiver } = keyPairs();
    const late = T0 + limits.rejectAfterSeconds * 1000;
    assert.throws(() => receive(receiver, seal(sender, Buffer.from('x'), late - 10), late), reason('key_expired'));
    assert.throws(() => sender.seal(Buffer.from('x'), late, limits), reason('key_expired'));
    const fresh = keyPairs();
    const frame = seal(fresh.sender, Buffer.from('payload'));
    const wrongIndex = Buffer.from(frame);
    wrongIndex[5] ^= 1;
    assert.throws(() => receive(fresh.receiver, wrongIndex), reason('unknown_index'));
    const flipped = Buffer.from(frame);
    flipped[30] ^= 0x10;
    assert.throws(() => receive(fresh.receiver, flipped), reason('decrypt'));
    const shortened = Buffer.from(frame.subarray(0, frame.length - 1));
    shortened.writeUInt32LE(shortened.length - 4, 0);
    assert.throws(() => receive(fresh.receiver, shortened), reason('decrypt'));
  });
});

/** One random change to a byte string: flip, truncate, insert, overwrite or delete. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('overwrite' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** A mutation that leaves the whole original frame at the start of the stream changed nothing of it. */
function changesFrame(original: Buffer, mutated: Buffer): boolean {
  return !(mutated.length >= original.length && mutated.subarray(0, original.length).equals(original));
}

function mutate(original: Buffer, change: Mutation): Buffer {
  const at = change.at % (original.length + 1);
  switch (change.kind) {
    case 'flip': {
      const copy = Buffer.from(original);
      copy[at % copy.length] ^= 1 << change.bit;
      return copy;
    }
    case 'truncate':
      return Buffer.from(original.subarray(0, at % original.length));
    case 'insert': {
      // Strictly inside: bytes appended after a whole frame are the next frame, not a change of this one.
      const inside = at % original.length;
      return Buffer.concat([original.subarray(0, inside), change.bytes, original.subarray(inside)]);
    }
    case 'overwrite': {
      const copy = Buffer.from(original);
      Buffer.from(change.bytes).copy(copy, at % copy.length);
      return copy;
    }
    case 'delete':
      return Buffer.concat([original.subarray(0, at), original.subarray(at + change.count)]);
  }
}

/** Feed bytes as a stream would arrive: frames the decoder completes go to `accept`. Returns accepted count. */
function feed(bytes: Buffer, accept: (frame: Buffer) => void): number {
  const decoder = new FrameDecoder();
  let accepted = 0;
  try {
    for (const frame of decoder.push(bytes)) {
      accept(frame);
      accepted++;
    }
  } catch (error) {
    assert.ok(error instanceof SecureChannelError, `non-protocol error escaped: ${String(error)}`);
  }
  return accepted;
}

describe('random mutations are never accepted', () => {
  const clientKey = Buffer.alloc(32, 0x11);
  const hostKey = Buffer.alloc(32, 0x22);
  const client = staticIdentityFromPrivate(clientKey);
  const host = staticIdentityFromPrivate(hostKey);
  const policy = { findPeer: (key: Buffer) => (key.equals(client.publicKey) ? 'client' : undefined) };
  const freshInitiation = () =>
    createInitiation({
      initiator: client,
      responderPublicKey: host.publicKey,
      timestamp: encodeTai64n(T0),
      senderIndex: 7,
      ephemeralPrivateKey: Buffer.alloc(32, 0x33),
    });

  it('records: flips, truncations, insertions, overwrites, deletions', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), mutation, (payload, change) => {
        const { sender, receiver } = keyPairs();
        const original = seal(sender, Buffer.from(payload));
        const mutated = mutate(original, change);
        fc.pre(changesFrame(original, mutated));
        assert.equal(
          feed(mutated, (frame) => receive(receiver, frame)),
          0,
        );
      }),
      { numRuns: 1500 },
    );
  });

  it('initiations', () => {
    const original = freshInitiation().frame;
    assert.ok(consumeInitiation(original, host, policy));
    fc.assert(
      fc.property(mutation, (change) => {
        const mutated = mutate(original, change);
        fc.pre(changesFrame(original, mutated));
        assert.equal(
          feed(mutated, (frame) => consumeInitiation(frame, host, policy)),
          0,
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('responses', () => {
    const respond = () => {
      const initiation = freshInitiation();
      const consumed = consumeInitiation(initiation.frame, host, policy);
      const response = createResponse(consumed.handshake, {
        timestamp: encodeTai64n(T0),
        senderIndex: 9,
        ephemeralPrivateKey: Buffer.alloc(32, 0x44),
      });
      return { handshake: initiation.handshake, frame: response.frame };
    };
    const reference = respond();
    assert.ok(consumeResponse(reference.handshake, reference.frame));
    fc.assert(
      fc.property(mutation, (change) => {
        const { handshake, frame } = respond();
        const mutated = mutate(frame, change);
        fc.pre(changesFrame(frame, mutated));
        assert.equal(
          feed(mutated, (bytes) => consumeResponse(handshake, bytes)),
          0,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('a response is bound to its initiation: valid mac1 and index, other handshake -> decrypt', () => {
    const fresh = () =>
      createInitiation({
        initiator: client,
        responderPublicKey: host.publicKey,
        timestamp: encodeTai64n(T0),
        senderIndex: 7,
      });
    const first = fresh();
    const second = fresh();
    const response = createResponse(consumeInitiation(first.frame, host, policy).handshake, {
      timestamp: encodeTai64n(T0),
      senderIndex: 9,
    });
    assert.throws(() => consumeResponse(second.handshake, response.frame), reason('decrypt'));
    const otherIndex = createInitiation({
      initiator: client,
      responderPublicKey: host.publicKey,
      timestamp: encodeTai64n(T0),
      senderIndex: 8,
    });
    assert.throws(() => consumeResponse(otherIndex.handshake, response.frame), reason('unknown_index'));
    assert.ok(consumeResponse(first.handshake, response.frame));
  });
});

describe('handshake checks', () => {
  const client = staticIdentityFromPrivate(Buffer.alloc(32, 0x51));
  const host = staticIdentityFromPrivate(Buffer.alloc(32, 0x52));
  const stranger = staticIdentityFromPrivate(Buffer.alloc(32, 0x53));
  const initiation = (to: Buffer) =>
    createInitiation({ initiator: client, responderPublicKey: to, timestamp: encodeTai64n(T0), senderIndex: 1 }).frame;

  it('mac1 is checked before any DH: wrong host key -> mac1, and the policy hooks are not reached', () => {
    let reached = false;
    const frame = initiation(stranger.publicKey);
    assert.throws(
      () => consumeInitiation(frame, host, { afterMac1: () => (reached = true), findPeer: () => 'x' }),
      reason('mac1'),
    );
    assert.equal(reached, false);
  });

  it('an unknown client key -> unknown_key; the per-key hook runs only for known keys', () => {
    let admitted = false;
    assert.throws(
      () =>
        consumeInitiation(initiation(host.publicKey), host, {
          findPeer: () => undefined,
          admitPeer: () => (admitted = true),
        }),
      reason('unknown_key'),
    );
    assert.equal(admitted, false);
  });

  it('the client refuses an initiation where it expects a response', () => {
    const mine = createInitiation({
      initiator: client,
      responderPublicKey: host.publicKey,
      timestamp: encodeTai64n(T0),
      senderIndex: 1,
    });
    const initiationToClient = createInitiation({
      initiator: stranger,
      responderPublicKey: client.publicKey,
      timestamp: encodeTai64n(T0),
      senderIndex: 1,
    });
    assert.throws(() => consumeResponse(mine.handshake, initiationToClient.frame), reason('malformed'));
  });
});
