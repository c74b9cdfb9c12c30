// The nftables subset: captured `nft -j list ruleset` output, supported rules replicated
// exactly, everything else skipped with a warning naming the rule handle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNftRuleset } from '../../src/client/index.js';
import type { FilterRule } from '../../src/manager/index.js';
import { NFT_SIMPLE, NFT_SUBSET } from '../support/client-samples.js';

const rule = (r: Partial<FilterRule> & Pick<FilterRule, 'handle' | 'family' | 'action'>): FilterRule => ({
  proto: 0,
  src: null,
  dst: null,
  sport: null,
  dport: null,
  ...r,
});

test('supported rules of the documented form, in chain order, policy drop last', () => {
  const { rules } = parseNftRuleset(NFT_SUBSET);
  assert.deepEqual(rules, [
    // ip saddr 10.1.0.0/24 ip daddr 10.9.0.0/16 meta l4proto tcp th sport 1024-65535 th dport 80 accept
    rule({
      handle: 4,
      family: 4,
      proto: 6,
      src: '10.1.0.0/24',
      dst: '10.9.0.0/16',
      sport: [1024, 65535],
      dport: [80, 80],
      action: 'accept',
    }),
    // ip saddr 10.1.0.0/24 meta l4proto udp th dport 53 accept
    rule({ handle: 5, family: 4, proto: 17, src: '10.1.0.0/24', dport: [53, 53], action: 'accept' }),
    rule({
      handle: 6,
      family: 6,
      proto: 6,
      src: '2001:db8:1::/64',
      dst: '2001:db8:9::1/128',
      dport: [22, 22],
      action: 'drop',
    }),
    rule({ handle: 7, family: 4, dst: '10.66.0.5/32', action: 'drop' }),
    // meta l4proto tcp accept, in an inet table: both families
    rule({ handle: 8, family: 4, proto: 6, action: 'accept' }),
    rule({ handle: 8, family: 6, proto: 6, action: 'accept' }),
    rule({ handle: 9, family: 4, proto: 17, action: 'drop' }), // ip protocol udp drop
    rule({ handle: 10, family: 4, proto: 6, dport: [8000, 8080], action: 'drop' }), // with a counter
    rule({ handle: 10, family: 6, proto: 6, dport: [8000, 8080], action: 'drop' }),
    rule({
      handle: 19,
      family: 4,
      proto: 6,
      src: '10.1.0.0/24',
      dst: '10.9.0.0/16',
      sport: [1024, 65535],
      dport: [80, 80],
      action: 'accept',
    }),
    // policy drop of inet filter forward
    rule({ handle: 0, family: 4, action: 'drop' }),
    rule({ handle: 0, family: 6, action: 'drop' }),
    // ip6 filter6 forward (priority filter + 10) comes after
    rule({ handle: 2, family: 6, proto: 17, dport: [123, 123], action: 'drop' }),
  ]);
});

test('unsupported rules are skipped with a warning naming the handle; other hooks and families are ignored', () => {
  const { warnings } = parseNftRuleset(NFT_SUBSET);
  const byHandle = Object.fromEntries(warnings.filter((w) => w.handle !== 0).map((w) => [w.handle, w.reason]));
  assert.deepEqual(byHandle, {
    11: 'operator "!="', // tcp dport != 80
    13: 'port match {"set":[53,5353]} is not a port or range', // udp dport { 53, 5353 }
    14: 'th ports without a "meta l4proto tcp|udp" match before them',
    15: 'address match {"range":["10.0.0.1","10.0.0.5"]} is not an address or prefix',
    16: 'operator "in"', // ct state established
    17: 'match on {"meta":{"key":"nfproto"}}',
    18: 'statement "jump"',
  });
  assert.ok(
    warnings.every((w) => w.chain === 'forward'),
    'input, prerouting and bridge chains are not read',
  );
  const chainWarning = warnings.find((w) => w.handle === 0)!;
  assert.equal(chainWarning.table, 'filter6');
  assert.match(chainWarning.reason, /several forward chains/);
});

test('a rule without matches is a catch-all; counters and comments do not matter', () => {
  const { rules, warnings } = parseNftRuleset(NFT_SIMPLE);
  assert.deepEqual(
    rules.filter((r) => r.handle === 12),
    [rule({ handle: 12, family: 4, action: 'drop' }), rule({ handle: 12, family: 6, action: 'drop' })],
  );
  assert.deepEqual(
    warnings.map((w) => w.handle).sort((a, b) => a - b),
    [0, 10, 11, 14, 15],
  );
  assert.equal(warnings.find((w) => w.handle === 15)!.reason, 'statement "log"');
});

test('empty or missing rulesets give no rules', () => {
  assert.deepEqual(parseNftRuleset({ nftables: [{ metainfo: { version: '1.0.6' } }] }), { rules: [], warnings: [] });
  assert.deepEqual(parseNftRuleset(null), { rules: [], warnings: [] });
});

test('hand-written edge cases', () => {
  const ruleset = (expr: unknown[], family = 'inet') => ({
    nftables: [
      {
        chain: { family, table: 't', name: 'f', handle: 1, type: 'filter', hook: 'forward', prio: 0, policy: 'accept' },
      },
      { rule: { family, table: 't', chain: 'f', handle: 9, expr } },
    ],
  });
  const ip = (field: string, right: unknown) => ({
    match: { op: '==', left: { payload: { protocol: 'ip', field } }, right },
  });
  const ip6 = (field: string, right: unknown) => ({
    match: { op: '==', left: { payload: { protocol: 'ip6', field } }, right },
  });
  // Host bits set, an IPv6 match in an ip table, two protocols, no verdict, statements after the verdict.
  const reasons = [
    ruleset([ip('saddr', { prefix: { addr: '10.1.0.1', len: 24 } }), { accept: null }]),
    ruleset([ip6('saddr', '2001:db8::1'), { accept: null }], 'ip'),
    ruleset([
      { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'tcp' } },
      { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } },
      { drop: null },
    ]),
    ruleset([ip('saddr', '10.1.0.1')]),
    ruleset([{ accept: null }, { counter: null }]),
    ruleset([{ match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'sctp' } }, { accept: null }]),
  ].map((r) => parseNftRuleset(r).warnings.map((w) => w.reason));
  assert.deepEqual(reasons, [
    ['prefix {"prefix":{"addr":"10.1.0.1","len":24}} has host bits set'],
    ['matches IPv6 in a table that only sees IPv4'],
    ['two different protocols (6 and 17)'],
    ['no accept or drop verdict'],
    ['statements after the verdict'],
    ['protocol "sctp" is not one of tcp, udp, icmp, icmpv6 or a number'],
  ]);
  // ip protocol 47 (a number) is fine.
  const gre = parseNftRuleset(ruleset([ip('protocol', 47), { drop: null }], 'ip'));
  assert.deepEqual(gre.rules, [rule({ handle: 9, family: 4, proto: 47, action: 'drop' })]);
});
