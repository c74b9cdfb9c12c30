// The router's packet filter, from `nft -j list ruleset`, in the subset the host's data plane
// can replicate (docs/manager.md). Paper IV-B: the client replicates the DomU's packet filter;
// the host confines it to the router's own network.
//
// Replicated: base chains of type filter, hook forward, in tables of family inet, ip or ip6,
// in priority order. A rule is replicated when it is, in any order, matches of
//   ip|ip6 saddr|daddr ADDRESS[/LEN]      meta l4proto | ip protocol | ip6 nexthdr  tcp|udp|icmp|icmpv6|N
//   tcp|udp|th sport|dport PORT[-PORT]    (th needs an l4proto match of tcp or udp first)
// with optional counters, ending in accept or drop. Anything else (other operators, sets,
// ct, iif, jumps, log, ...) is skipped with a warning naming the rule handle. A chain
// policy of drop becomes a final catch-all drop rule.
import type { FilterRule } from '../wire/index.js';
import type { Family } from '../net/index.js';
import { addressBytes, formatPrefixBytes, hostBitsSet } from '../net/index.js';

export interface NftWarning {
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  /** The rule's handle (0 for warnings about a whole chain). */
  readonly handle: number;
  readonly reason: string;
}

export interface ParsedFilter {
  readonly rules: FilterRule[];
  readonly warnings: NftWarning[];
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, 'ipv6-icmp': 58 };
const TABLE_FAMILIES: Record<string, readonly Family[]> = { ip: [4], ip6: [6], inet: [4, 6] };

interface BaseChain {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly prio: number;
  readonly policy: string;
  readonly order: number;
}

class Unsupported extends Error {}

function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

function describe(value: unknown): string {
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function prefixOf(right: unknown, family: Family): string {
  let addrText: unknown;
  let length: unknown;
  if (typeof right === 'string') {
    addrText = right;
    length = family === 4 ? 32 : 128;
  } else if (isObject(right) && isObject(right.prefix)) {
    addrText = right.prefix.addr;
    length = right.prefix.len;
  } else {
    return unsupported(`address match ${describe(right)} is not an address or prefix`);
  }
  const addr = typeof addrText === 'string' ? addressBytes(addrText) : undefined;
  if (
    !addr ||
    (addr.length === 4) !== (family === 4) ||
    typeof length !== 'number' ||
    !Number.isInteger(length) ||
    length < 0 ||
    length > addr.length * 8
  ) {
    return unsupported(`address match ${describe(right)} is not an IPv${family} prefix`);
  }
  if (hostBitsSet(addr, length)) return unsupported(`prefix ${describe(right)} has host bits set`);
  return formatPrefixBytes(addr, length);
}

function portsOf(right: unknown): [number, number] {
  const port = (v: unknown): number =>
    typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff
      ? v
      : unsupported(`port ${describe(v)} is not a number`);
  if (typeof right === 'number') return [port(right), port(right)];
  if (isObject(right) && Array.isArray(right.range) && right.range.length === 2) {
    const lo = port(right.range[0]);
    const hi = port(right.range[1]);
    if (lo > hi) return unsupported(`port range ${lo}-${hi} is empty`);
    return [lo, hi];
  }
  return unsupported(`port match ${describe(right)} is not a port or range`);
}

function protocolOf(right: unknown): number {
  if (typeof right === 'number' && Number.isInteger(right) && right >= 0 && right <= 255) return right;
  if (typeof right === 'string' && Object.hasOwn(PROTOCOLS, right)) return PROTOCOLS[right]!;
  return unsupported(`protocol ${describe(right)} is not one of tcp, udp, icmp, icmpv6 or a number`);
}

/** One rule's expressions -> replicated rules (one per family it applies to). */
function parseRule(expressions: unknown, tableFamilies: readonly Family[], handle: number): FilterRule[] {
  if (!Array.isArray(expressions)) return unsupported('no expressions');
  let families = tableFamilies;
  let proto = 0;
  const addresses: { src?: { family: Family; text: unknown }; dst?: { family: Family; text: unknown } } = {};
  let sport: [number, number] | null = null;
  let dport: [number, number] | null = null;
  let action: 'accept' | 'drop' | null = null;
  const restrictFamily = (family: Family): void => {
    if (!families.includes(family))
      unsupported(`matches IPv${family} in a table that only sees IPv${families.join('/IPv')}`);
    families = [family];
  };
  const setProto = (value: number): void => {
    if (proto !== 0 && proto !== value) unsupported(`two different protocols (${proto} and ${value})`);
    proto = value;
  };
  for (const expression of expressions) {
    if (action !== null) unsupported('statements after the verdict');
    if (!isObject(expression)) unsupported(`expression ${describe(expression)}`);
    const keys = Object.keys(expression);
    if (keys.length !== 1) unsupported(`expression ${describe(expression)}`);
    const key = keys[0]!;
    const body = expression[key];
    if (key === 'counter') continue; // counts, never decides
    if (key === 'accept' || key === 'drop') {
      action = key;
      continue;
    }
    if (key !== 'match' || !isObject(body)) unsupported(`statement "${key}"`);
    if (body.op !== '==') unsupported(`operator "${String(body.op)}"`);
    const { left, right } = body;
    if (isObject(left) && isObject(left.payload)) {
      const { protocol, field } = left.payload;
      if ((protocol === 'ip' || protocol === 'ip6') && (field === 'saddr' || field === 'daddr')) {
        const family: Family = protocol === 'ip' ? 4 : 6;
        restrictFamily(family);
        const which = field === 'saddr' ? 'src' : 'dst';
        if (addresses[which]) unsupported(`two ${which} address matches`);
        addresses[which] = { family, text: right };
        continue;
      }
      if ((protocol === 'ip' && field === 'protocol') || (protocol === 'ip6' && field === 'nexthdr')) {
        restrictFamily(protocol === 'ip' ? 4 : 6);
        setProto(protocolOf(right));
        continue;
      }
      if ((protocol === 'tcp' || protocol === 'udp' || protocol === 'th') && (field === 'sport' || field === 'dport')) {
        if (protocol === 'th') {
          if (proto !== 6 && proto !== 17) unsupported('th ports without a "meta l4proto tcp|udp" match before them');
        } else {
          setProto(PROTOCOLS[protocol]!);
        }
        const ports = portsOf(right);
        if (field === 'sport') {
          if (sport) unsupported('two source port matches');
          sport = ports;
        } else {
          if (dport) unsupported('two destination port matches');
          dport = ports;
        }
        continue;
      }
      unsupported(`match on ${String(protocol)} ${String(field)}`);
    }
    if (isObject(left) && isObject(left.meta) && left.meta.key === 'l4proto') {
      setProto(protocolOf(right));
      continue;
    }
    unsupported(`match on ${describe(left)}`);
  }
  if (action === null) unsupported('no accept or drop verdict');
  if ((sport || dport) && proto !== 6 && proto !== 17) unsupported('ports are only replicated for tcp and udp');
  return families.map((family) => ({
    handle,
    family,
    proto,
    src: addresses.src ? prefixOf(addresses.src.text, family) : null,
    dst: addresses.dst ? prefixOf(addresses.dst.text, family) : null,
    sport,
    dport,
    action: action!,
  }));
}

/** The replicable forward filter of a ruleset dump (`nft -j list ruleset`, parsed JSON). */
export function parseNftRuleset(dump: unknown): ParsedFilter {
  const rules: FilterRule[] = [];
  const warnings: NftWarning[] = [];
  const items = isObject(dump) && Array.isArray(dump.nftables) ? dump.nftables : [];
  const chains: BaseChain[] = [];
  items.forEach((item, order) => {
    if (!isObject(item) || !isObject(item.chain)) return;
    const c = item.chain;
    if (
      c.hook !== 'forward' ||
      c.type !== 'filter' ||
      typeof c.family !== 'string' ||
      !Object.hasOwn(TABLE_FAMILIES, c.family)
    )
      return;
    if (typeof c.table !== 'string' || typeof c.name !== 'string') return;
    chains.push({
      family: c.family,
      table: c.table,
      name: c.name,
      prio: typeof c.prio === 'number' ? c.prio : 0,
      policy: typeof c.policy === 'string' ? c.policy : 'accept',
      order,
    });
  });
  chains.sort((a, b) => a.prio - b.prio || a.order - b.order);
  const withRules = chains.filter(
    (chain) =>
      chain.policy === 'drop' ||
      items.some(
        (item) =>
          isObject(item) &&
          isObject(item.rule) &&
          item.rule.family === chain.family &&
          item.rule.table === chain.table &&
          item.rule.chain === chain.name,
      ),
  );
  if (withRules.length > 1) {
    for (const chain of withRules.slice(1)) {
      warnings.push({
        family: chain.family,
        table: chain.table,
        chain: chain.name,
        handle: 0,
        reason:
          'several forward chains: replicated as one list, first match wins (an accept in an earlier chain no longer reaches this one)',
      });
    }
  }
  for (const chain of chains) {
    const families = TABLE_FAMILIES[chain.family]!;
    for (const item of items) {
      if (!isObject(item) || !isObject(item.rule)) continue;
      const r = item.rule;
      if (r.family !== chain.family || r.table !== chain.table || r.chain !== chain.name) continue;
      const handle =
        typeof r.handle === 'number' && Number.isInteger(r.handle) && r.handle >= 0 && r.handle <= 0xffffffff
          ? r.handle
          : 0;
      try {
        rules.push(...parseRule(r.expr, families, handle));
      } catch (error) {
        if (!(error instanceof Unsupported)) throw error;
        warnings.push({ family: chain.family, table: chain.table, chain: chain.name, handle, reason: error.message });
      }
    }
    if (chain.policy === 'drop') {
      for (const family of families)
        rules.push({ handle: 0, family, proto: 0, src: null, dst: null, sport: null, dport: null, action: 'drop' });
    }
  }
  return { rules, warnings };
}
