// src/net: addresses, prefixes and MACs between text and bytes, and the errors bad text gets
// (a ValidationError naming the field).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  addressBytes,
  parseAddress,
  formatAddress,
  parsePrefixText,
  formatPrefixBytes,
  hostBitsSet,
  maskedAddress,
  prefixKey,
  isUnicastAddress,
  macBytes,
  macFromBytes,
  writeMac,
  isUnicastMac,
} from '../../src/net/index.js';
import { parsePrefix, formatPrefix } from '../../src/dataplane/prefix.js';
import { ValidationError } from '../../src/errors/index.js';

const hex = (b: Uint8Array | undefined): string | undefined => (b ? Buffer.from(b).toString('hex') : undefined);
const namesField = (path: string, text: RegExp) => (err: unknown) =>
  err instanceof ValidationError && err.path === path && text.test(err.message);

test('IPv4 and IPv6 literals to network-order bytes', () => {
  assert.equal(hex(addressBytes('192.0.2.1')), 'c0000201');
  assert.equal(hex(addressBytes('0.0.0.0')), '00000000');
  assert.equal(hex(addressBytes('2001:db8::1')), '20010db8000000000000000000000001');
  assert.equal(hex(addressBytes('::')), '00000000000000000000000000000000');
  assert.equal(hex(addressBytes('::ffff:192.0.2.1')), '00000000000000000000ffffc0000201');
  assert.equal(hex(addressBytes('fe80::1%eth0')), 'fe800000000000000000000000000001');
  for (const bad of ['', '1.2.3', '256.1.1.1', '1.2.3.4.5', '01.2.3.4x', '2001:db8::1::2', 'gggg::', 'blue']) {
    assert.equal(addressBytes(bad), undefined, bad);
  }
});

test('parseAddress names the field of a bad address', () => {
  assert.deepEqual(parseAddress('10.1.2.3', 'x'), { family: 4, bytes: Buffer.from([10, 1, 2, 3]) });
  assert.equal(parseAddress('2001:db8::', 'x').family, 6);
  assert.throws(
    () => parseAddress('10.1.2.300', 'routers[0].address'),
    namesField('routers[0].address', /"10\.1\.2\.300" is not an IPv4 or IPv6 address/),
  );
});

test('formatAddress: dotted quad, and RFC 5952 for IPv6 (longest zero run, lower case, no single-group ::)', () => {
  assert.equal(formatAddress(Buffer.from([192, 0, 2, 1])), '192.0.2.1');
  const v6 = (text: string): string => formatAddress(addressBytes(text)!);
  assert.equal(v6('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(v6('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
  assert.equal(v6('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(v6('::'), '::');
  assert.equal(v6('::1'), '::1');
  assert.equal(v6('fe80::'), 'fe80::');
  // An address inside a larger buffer, at an offset.
  assert.equal(formatAddress(Buffer.from([9, 9, 10, 0, 0, 1]), 2, 4), '10.0.0.1');
});

test('prefixes: text to bytes and back; a bare address is a host prefix', () => {
  assert.deepEqual(parsePrefixText('10.0.0.0/8', 'p'), { family: 4, addr: Buffer.from([10, 0, 0, 0]), length: 8 });
  assert.equal(parsePrefixText('192.0.2.7', 'p').length, 32);
  assert.equal(parsePrefixText('2001:db8::1', 'p').length, 128);
  assert.equal(formatPrefixBytes(Buffer.from([10, 1, 0, 0]), 16), '10.1.0.0/16');
  assert.equal(formatPrefixBytes(addressBytes('2001:db8::')!, 32), '2001:db8::/32');
  assert.equal(prefixKey(Buffer.from([10, 9, 0, 0]), 16), '0a090000/16');
});

test('bad prefixes are refused naming the field and the text', () => {
  for (const [bad, why] of [
    ['10.0.0.0/33', /must be 0\.\.32/],
    ['2001:db8::/129', /must be 0\.\.128/],
    ['10.0.0.0/-1', /must be 0\.\.32/],
    ['10.0.0.0/', /must be 0\.\.32/],
    ['10.0.0.0/8a', /must be 0\.\.32/],
    ['300.0.0.0/8', /is not an IPv4 or IPv6 prefix/],
    ['blue', /is not an IPv4 or IPv6 prefix/],
  ] as const) {
    assert.throws(() => parsePrefixText(bad, 'routes[3].prefix'), namesField('routes[3].prefix', why), bad);
  }
});

test("host bits: detected, masked, and refused by the data plane's parsePrefix with a suggestion", () => {
  assert.equal(hostBitsSet(Buffer.from([10, 0, 0, 1]), 8), true);
  assert.equal(hostBitsSet(Buffer.from([10, 0, 0, 0]), 8), false);
  assert.equal(hostBitsSet(Buffer.from([10, 128, 0, 0]), 9), false);
  assert.equal(hostBitsSet(Buffer.from([10, 64, 0, 0]), 9), true);
  assert.equal(hostBitsSet(Buffer.from([10, 0, 0, 1]), 32), false);
  assert.equal(hostBitsSet(Buffer.from([1, 2, 3, 4]), 0), true);
  assert.deepEqual([...maskedAddress(Buffer.from([10, 255, 255, 255]), 12)], [10, 240, 0, 0]);
  assert.throws(
    () => parsePrefix('10.0.0.1/8', 'prefix'),
    namesField('prefix', /host bits set \(did you mean 10\.0\.0\.0\/8\?\)/),
  );
  assert.throws(() => parsePrefix('10.0.0.0/8/1', 'prefix'), namesField('prefix', /malformed prefix/));
  assert.equal(formatPrefix(parsePrefix(' 2001:db8:0::/48 ')), '2001:db8::/48');
});

test('unicast addresses', () => {
  for (const yes of ['10.0.0.1', '192.0.2.1', '2001:db8::1', 'fe80::1'])
    assert.equal(isUnicastAddress(addressBytes(yes)!), true, yes);
  for (const no of ['0.0.0.0', '224.0.0.1', '255.255.255.255', '::', 'ff02::1'])
    assert.equal(isUnicastAddress(addressBytes(no)!), false, no);
});

test('MACs: text to bytes and back, any case; bad text names the field', () => {
  assert.deepEqual([...macBytes('02:00:0A:ff:00:01')], [2, 0, 10, 255, 0, 1]);
  assert.equal(macFromBytes(Buffer.from([2, 0, 10, 255, 0, 1])), '02:00:0a:ff:00:01');
  assert.equal(macFromBytes(Buffer.from([9, 2, 0, 0, 0, 0, 0, 7]), 2), '00:00:00:00:00:07');
  const out = Buffer.alloc(8);
  writeMac('aa:bb:cc:dd:ee:ff', out, 2, 'mac');
  assert.equal(out.toString('hex'), '0000aabbccddeeff');
  const malformed = [
    '',
    '02:00:00:00:00',
    '02:00:00:00:00:01:02',
    '02-00-00-00-00-01',
    '0200.0000.0001',
    'g2:00:00:00:00:01',
    '2:0:0:0:0:1',
  ];
  for (const bad of malformed) {
    assert.throws(
      () => macBytes(bad, 'attachments[0].mac'),
      namesField('attachments[0].mac', /is not a MAC address/),
      bad,
    );
  }
  assert.throws(() => macBytes('nope'), namesField('mac', /"nope" is not a MAC address/));
});

test('unicast MACs: not multicast or broadcast, not all zeros, well formed', () => {
  assert.equal(isUnicastMac('02:00:00:00:00:01'), true);
  assert.equal(isUnicastMac('01:00:5e:00:00:01'), false);
  assert.equal(isUnicastMac('ff:ff:ff:ff:ff:ff'), false);
  assert.equal(isUnicastMac('00:00:00:00:00:00'), false);
  assert.equal(isUnicastMac('not a mac'), false);
});
