// Keys, small-order points, TAI64N, the replay window and frame splitting.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ValidationError, XnetmonError } from '../../src/errors/index.js';
import {
  FrameDecoder,
  ReplayWindow,
  SecureChannelError,
  decodeTai64nMs,
  encodeTai64n,
  generateKeyPair,
  isLowOrderPoint,
  parsePrivateKey,
  parsePublicKey,
  protocolConstants,
  publicKeyFromPrivate,
  sealRecord,
} from '../../src/crypto/index.js';
import { x25519, x25519PrivateKeyObject } from '../../src/crypto/primitives.js';

const LOW_ORDER_HEX = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
  '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

function rejectsWith(reason: string): (error: unknown) => boolean {
  return (error) => error instanceof SecureChannelError && error.reason === reason && error instanceof XnetmonError;
}

describe('keys', () => {
  it('generates base64 key pairs whose public key matches the private one', () => {
    const pair = generateKeyPair();
    assert.equal(Buffer.from(pair.publicKey, 'base64').length, 32);
    assert.equal(Buffer.from(pair.privateKey, 'base64').length, 32);
    assert.equal(publicKeyFromPrivate(pair.privateKey), pair.publicKey);
    assert.equal(parsePublicKey(pair.publicKey).toString('base64'), pair.publicKey);
    assert.notEqual(generateKeyPair().privateKey, pair.privateKey);
  });

  it('refuses keys of the wrong length, non-base64 and non-canonical spellings', () => {
    for (const bad of [
      '',
      'abc',
      Buffer.alloc(31, 1).toString('base64'),
      Buffer.alloc(33, 1).toString('base64'),
      `${'!'.repeat(43)}=`,
    ]) {
      assert.throws(
        () => parsePublicKey(bad, 'peers[0].publicKey'),
        (error: unknown) => error instanceof ValidationError && error.path === 'peers[0].publicKey',
      );
    }
    // Same 32 bytes, different trailing bits in the last character.
    const canonical = Buffer.alloc(32, 7).toString('base64');
    const sloppy = `${canonical.slice(0, 42)}${String.fromCharCode(canonical.charCodeAt(42) + 1)}=`;
    assert.throws(() => parsePublicKey(sloppy), ValidationError);
    assert.throws(() => parsePrivateKey(42), ValidationError);
  });

  it('refuses every small-order point, also with bit 255 set', () => {
    for (const pointHex of LOW_ORDER_HEX) {
      const point = Buffer.from(pointHex, 'hex');
      assert.ok(isLowOrderPoint(point));
      assert.throws(
        () => parsePublicKey(point.toString('base64')),
        (error: unknown) => error instanceof ValidationError && /small-order/.test(error.message),
      );
      const highBit = Buffer.from(point);
      highBit[31] |= 0x80;
      assert.ok(isLowOrderPoint(highBit));
    }
    assert.ok(!isLowOrderPoint(Buffer.from(generateKeyPair().publicKey, 'base64')));
  });

  it('the small-order list is right: X25519 with each point gives all zeros (refused as low_order_key)', () => {
    const privateKey = generateKeyPairSync('x25519').privateKey;
    for (const pointHex of LOW_ORDER_HEX) {
      assert.throws(() => x25519(privateKey, Buffer.from(pointHex, 'hex')), rejectsWith('low_order_key'));
    }
    const other = Buffer.from(generateKeyPair().publicKey, 'base64');
    assert.equal(x25519(x25519PrivateKeyObject(Buffer.alloc(32, 9)), other).length, 32);
  });
});

describe('TAI64N', () => {
  it('encodes like WireGuard (2^62 + 10 + seconds, nanoseconds) and orders by bytes', () => {
    assert.equal(encodeTai64n(0).toString('hex'), '400000000000000a00000000');
    assert.equal(decodeTai64nMs(encodeTai64n(1700000000123)), 1700000000123);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 0, max: 2 ** 45 }), (a, b) => {
        const order = Math.sign(Buffer.compare(encodeTai64n(a), encodeTai64n(b)));
        return order === Math.sign(a - b);
      }),
    );
  });
});

describe('ReplayWindow (RFC 6479)', () => {
  it('accepts each counter once, in order', () => {
    const window = new ReplayWindow();
    for (let i = 0n; i < 20_000n; i++) assert.ok(window.accept(i));
    assert.ok(!window.accept(19_999n));
    assert.ok(!window.accept(0n));
  });

  it('accepts reordering within the window exactly once each', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        fc.array(fc.integer({ min: 0, max: 8159 }), { minLength: 1, maxLength: 300 }),
        (base, offsets) => {
          const window = new ReplayWindow();
          const top = base + 8159n;
          assert.ok(window.accept(top));
          const seen = new Set<number>([8159]);
          for (const offset of offsets) {
            const counter = base + BigInt(offset);
            const fresh = !seen.has(offset);
            assert.equal(window.check(counter), fresh);
            assert.equal(window.accept(counter), fresh);
            seen.add(offset);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses counters older than the window and keeps working after a big jump', () => {
    const window = new ReplayWindow();
    assert.equal(window.windowSize, 8160n);
    assert.ok(window.accept(10_000n));
    assert.ok(!window.check(10_000n - 8160n));
    assert.ok(window.check(10_000n - 8159n));
    assert.ok(window.accept(1_000_000n));
    assert.ok(!window.accept(10_000n));
    assert.ok(window.accept(1_000_000n - 5n));
    assert.ok(!window.accept(1_000_000n - 5n));
    assert.ok(!window.check(-1n));
  });

  it('check() does not move the window (only accept() after the tag verified does)', () => {
    const window = new ReplayWindow();
    window.accept(5n);
    assert.ok(window.check(1_000_000n));
    assert.ok(window.accept(4n));
    assert.equal(window.greatestAccepted, 5n);
  });
});

describe('FrameDecoder', () => {
  const record = sealRecord({
    key: Buffer.alloc(32, 1),
    receiverIndex: 1,
    counter: 0n,
    senderTimeMs: 1,
    payload: Buffer.alloc(1000, 2),
  });

  it('reassembles frames split at every byte boundary and several per chunk', () => {
    const stream = Buffer.concat([record, record, record]);
    for (const step of [1, 2, 5, 17, 1000, stream.length]) {
      const decoder = new FrameDecoder();
      const frames: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) frames.push(...decoder.push(stream.subarray(i, i + step)));
      assert.equal(frames.length, 3);
      for (const frame of frames) assert.deepEqual(frame, record);
      decoder.end();
    }
  });

  it('refuses an oversized length from the first 4 bytes, before any body', () => {
    const decoder = new FrameDecoder();
    const header = Buffer.alloc(4);
    header.writeUInt32LE(protocolConstants.MAX_FRAME_LENGTH + 1);
    assert.throws(() => decoder.push(header), rejectsWith('oversize'));
  });

  it('refuses wrong sizes per type and unknown types from the 5-byte header', () => {
    const header = (length: number, type: number): Buffer => {
      const bytes = Buffer.alloc(5);
      bytes.writeUInt32LE(length);
      bytes[4] = type;
      return bytes;
    };
    assert.throws(() => new FrameDecoder().push(header(130, 1)), rejectsWith('malformed'));
    assert.throws(() => new FrameDecoder().push(header(86, 2)), rejectsWith('malformed'));
    assert.throws(() => new FrameDecoder().push(header(36, 3)), rejectsWith('malformed'));
    assert.throws(() => new FrameDecoder().push(header(40, 9)), rejectsWith('malformed'));
    assert.throws(() => new FrameDecoder().push(header(0, 3)), rejectsWith('malformed'));
    assert.deepEqual(new FrameDecoder().push(header(129, 1)), []);
  });

  it('reports a stream that ends inside a frame as truncated', () => {
    const decoder = new FrameDecoder();
    decoder.push(record.subarray(0, record.length - 1));
    assert.throws(() => decoder.end(), rejectsWith('truncated'));
  });
});
