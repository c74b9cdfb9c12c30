// The byte-level vectors of docs/manager.md ("Test vectors"): the encoder gives exactly these
// bytes, the decoder reads them back, and the bits the doc says are refused are refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeAck,
  decodeEndOfSync,
  decodeMessage,
  decodeNeighbourBatch,
  decodeRouteBatch,
  encodeAck,
  encodeEndOfSync,
  encodeNeighbourBatch,
  encodeRouteBatch,
  neighbourBatchFromLists,
  neighbourBatchToLists,
  ProtocolError,
  routeChangesFromLists,
  routeChangesToLists,
  type RouterInterface,
} from '../../src/wire/index.js';

const ETH0: RouterInterface = { index: 2, name: 'eth0', mac: '02:00:00:01:00:01' };

/** Copied from docs/manager.md: a change there is a change of the protocol. */
const VECTORS = {
  routeBatch:
    '0200000007000100000002010200000100010465746830000000030a09000010800a01000200000a0100001800000000' +
    '000000c0000200180200000000ffff0000000120010db8000900000000000000000000300300000000000000000000000000' +
    '000000ffff000000010a0700001000000000',
  neighbourBatch:
    '0300000008000100000002010200000100010465746830000000010a010002020000000002000000000000000000000000' +
    '000120010db80001000000000000000000020000',
  endOfSync: '0500000009',
  ackOk: '060000000701000000',
  ackError: '0600000007000c4552525f4e4f5f48454c4c4f001073656e642048656c6c6f206669727374',
};

const ROUTE_ADDS = [
  { prefix: '10.9.0.0/16', kind: 'unicast', gateway: '10.1.0.2', interface: ETH0 },
  { prefix: '10.1.0.0/24', kind: 'unicast', gateway: null, interface: ETH0 },
  { prefix: '192.0.2.0/24', kind: 'blackhole', gateway: null, interface: null },
  { prefix: '2001:db8:9::/48', kind: 'via-vm', gateway: null, interface: null },
] as const;
const NEIGHBOUR_ADDS = [{ address: '10.1.0.2', mac: '02:00:00:00:00:02', interface: ETH0 }];
const NEIGHBOUR_DELETES = [{ address: '2001:db8:1::2', interface: ETH0 }];

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

describe('update protocol vectors (docs/manager.md)', () => {
  it('RouteBatch', () => {
    const encoded = encodeRouteBatch({ sequence: 7, ...routeChangesFromLists(ROUTE_ADDS, ['10.7.0.0/16']) });
    assert.equal(encoded.toString('hex'), VECTORS.routeBatch);
    const decoded = decodeRouteBatch(hex(VECTORS.routeBatch));
    assert.equal(decoded.sequence, 7);
    const lists = routeChangesToLists(decoded);
    assert.deepEqual(
      lists.adds.map((r) => [r.prefix, r.kind, r.gateway, r.interface?.name ?? null]),
      [
        ['10.9.0.0/16', 'unicast', '10.1.0.2', 'eth0'],
        ['10.1.0.0/24', 'unicast', null, 'eth0'],
        ['192.0.2.0/24', 'blackhole', null, null],
        ['2001:db8:9::/48', 'via-vm', null, null],
      ],
    );
    assert.deepEqual(lists.deletes, ['10.7.0.0/16']);
  });

  it('NeighbourBatch', () => {
    const encoded = encodeNeighbourBatch(neighbourBatchFromLists(8, NEIGHBOUR_ADDS, NEIGHBOUR_DELETES));
    assert.equal(encoded.toString('hex'), VECTORS.neighbourBatch);
    const decoded = decodeNeighbourBatch(hex(VECTORS.neighbourBatch));
    assert.equal(decoded.sequence, 8);
    const lists = neighbourBatchToLists(decoded);
    const adds = lists.adds.map((n) => [n.address, n.mac, n.interface.name]);
    assert.deepEqual(adds, [['10.1.0.2', '02:00:00:00:00:02', 'eth0']]);
    assert.deepEqual(
      lists.deletes.map((n) => [n.address, n.interface.name]),
      [['2001:db8:1::2', 'eth0']],
    );
  });

  it('EndOfSync and Acks', () => {
    assert.equal(encodeEndOfSync({ sequence: 9 }).toString('hex'), VECTORS.endOfSync);
    assert.equal(decodeEndOfSync(hex(VECTORS.endOfSync)).sequence, 9);
    assert.equal(encodeAck({ sequence: 7, ok: true, errorCode: '', errorMessage: '' }).toString('hex'), VECTORS.ackOk);
    const positive = { sequence: 7, ok: true, errorCode: '', errorMessage: '' };
    assert.deepEqual(decodeAck(hex(VECTORS.ackOk)), { type: 'ack', ...positive });
    const error = { sequence: 7, ok: false, errorCode: 'ERR_NO_HELLO', errorMessage: 'send Hello first' };
    assert.equal(encodeAck(error).toString('hex'), VECTORS.ackError);
    assert.deepEqual(decodeAck(hex(VECTORS.ackError)), { type: 'ack', ...error });
  });

  it('refuses the bits the doc says are refused', () => {
    const refused = (vector: string, offset: number, value: number, field: RegExp): void => {
      const bytes = hex(vector);
      bytes[offset] = value;
      assert.throws(
        () => decodeMessage(bytes),
        (e: unknown) => e instanceof ProtocolError && field.test(e.message),
      );
    };
    // RouteBatch: interface flags at 11; IPv4 routes from 27, 12 bytes each: address, length, kind (+5), gateway (+6).
    for (const flags of [0x02, 0x80]) refused(VECTORS.routeBatch, 11, flags, /flags/);
    for (const kind of [0x04, 0x7f, 0x84]) refused(VECTORS.routeBatch, 27 + 5, kind, /kind/);
    // The second route (no gateway bit) with a non-zero gateway byte.
    refused(VECTORS.routeBatch, 27 + 12 + 6, 1, /gateway/);
    refused(VECTORS.ackOk, 5, 2, /ok/);
  });
});
