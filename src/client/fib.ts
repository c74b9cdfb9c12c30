// The router's kernel state as the client replicates it, parsed from iproute2's JSON dumps
// (`ip -json link show`, `ip -json -4|-6 route show table all`, `ip -json neigh show`).
// Pure functions: tests feed them dumps captured from a real kernel (test/unit/fixtures).
import type { RouteKind, RouterInterface } from '../wire/index.js';
import {
  addressBytes,
  formatAddress,
  formatPrefixBytes,
  hostBitsSet,
  isUnicastMac,
  parsePrefixText,
  type Family,
} from '../net/index.js';

/** One replicated route: the router's best route for a prefix over the configured tables. */
export interface FibRoute {
  /** Canonical text ("10.9.0.0/16", "2001:db8::/32"): the snapshot key. */
  readonly prefix: string;
  readonly family: Family;
  readonly kind: RouteKind;
  readonly gateway: string | null;
  readonly interface: RouterInterface | null;
}

export interface FibNeighbour {
  readonly address: string;
  readonly mac: string;
  readonly interface: RouterInterface;
}

/** Something in a dump that is not replicated, and why (logged at debug level). */
export interface SkippedEntry {
  readonly what: string;
  readonly reason: string;
}

export interface FibOptions {
  /** Tables to replicate (names or numbers as `ip` prints them); local always wins, then this order. */
  readonly tables: readonly string[];
  /** Interfaces on the host's segments; null = all but loopback. */
  readonly interfaces: readonly string[] | null;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asArray(dump: unknown, what: string): unknown[] {
  if (!Array.isArray(dump)) throw new TypeError(`${what} dump is not a JSON array`);
  return dump;
}

function text(record: JsonObject, field: string): string | undefined {
  const value = record[field];
  return typeof value === 'string' ? value : undefined;
}

// ---- links ---------------------------------------------------------------------------------

/** Interfaces by name, with the router's ifindex and MAC (null when not an Ethernet unicast MAC). */
export function parseLinkDump(dump: unknown): Map<string, RouterInterface & { readonly loopback: boolean }> {
  const out = new Map<string, RouterInterface & { readonly loopback: boolean }>();
  for (const record of asArray(dump, 'link')) {
    if (!isObject(record)) continue;
    const name = text(record, 'ifname');
    const index = record.ifindex;
    if (
      !name ||
      typeof index !== 'number' ||
      !Number.isInteger(index) ||
      index <= 0 ||
      name.length > 15 ||
      /[\s/:]/.test(name)
    )
      continue;
    const address = text(record, 'address')?.toLowerCase();
    const mac = text(record, 'link_type') === 'ether' && address && isUnicastMac(address) ? address : null;
    out.set(name, { index, name, mac, loopback: text(record, 'link_type') === 'loopback' });
  }
  return out;
}

/** The interfaces whose routes and neighbours are replicated. */
export function replicatedInterfaces(
  links: ReadonlyMap<string, RouterInterface & { loopback: boolean }>,
  options: FibOptions,
): Map<string, RouterInterface> {
  const out = new Map<string, RouterInterface>();
  for (const [name, link] of links) {
    if (options.interfaces ? !options.interfaces.includes(name) : link.loopback) continue;
    out.set(name, { index: link.index, name: link.name, mac: link.mac });
  }
  return out;
}

// ---- routes ----------------------------------------------------------------------------------

const TABLE_ALIASES: Record<string, string> = { main: '254', local: '255', default: '253', unspec: '0' };

function tableId(name: string): string {
  return TABLE_ALIASES[name] ?? name;
}

/** Ranges that never go to the host: loopback, link-local, multicast. */
const NOT_REPLICATED: readonly { family: Family; prefix: string; why: string }[] = [
  { family: 4, prefix: '127.0.0.0/8', why: 'loopback' },
  { family: 4, prefix: '224.0.0.0/4', why: 'multicast' },
  { family: 6, prefix: '::1/128', why: 'loopback' },
  { family: 6, prefix: 'fe80::/10', why: 'link-local (interface-scoped)' },
  { family: 6, prefix: 'ff00::/8', why: 'multicast' },
].map((r) => ({ ...r, family: r.family as Family }));

function insideRange(family: Family, addr: Buffer, length: number): string | undefined {
  for (const range of NOT_REPLICATED) {
    if (range.family !== family) continue;
    const p = parsePrefixText(range.prefix, 'range');
    if (length < p.length) continue;
    const masked = Buffer.from(addr);
    for (let bit = p.length; bit < masked.length * 8; bit++) masked[bit >> 3]! &= ~(0x80 >> (bit & 7));
    if (masked.equals(p.addr)) return range.why;
  }
  return undefined;
}

interface Candidate {
  readonly route: FibRoute;
  readonly rank: number;
  readonly metric: number;
}

/**
 * The replicated routes of one family from `ip -json -4|-6 route show table all`: per prefix
 * the route the kernel would use (local table first, then the configured order, then the
 * lowest metric), mapped to what the host can do with it:
 * - unicast via a gateway on a replicated interface: unicast (the host forwards it);
 * - unicast on-link (connected): unicast without gateway (the host hands it to the router);
 * - multipath, a gateway of the other family, or an interface not on the host's segments: via-vm;
 * - local: local; blackhole: blackhole; unreachable, prohibit, throw: via-vm (the router answers ICMP);
 * - broadcast, multicast, anycast, nat, and loopback/link-local/multicast prefixes: not replicated.
 */
export function parseRouteDump(
  dump: unknown,
  family: Family,
  links: ReadonlyMap<string, RouterInterface>,
  replicated: ReadonlyMap<string, RouterInterface>,
  options: FibOptions,
  skipped: SkippedEntry[] = [],
): Map<string, FibRoute> {
  const ranks = new Map<string, number>();
  ranks.set('255', 0); // Rule 0 looks up the local table before any other.
  options.tables.forEach((t, i) => {
    if (!ranks.has(tableId(t))) ranks.set(tableId(t), i + 1);
  });
  const wantsLocal = options.tables.some((t) => tableId(t) === '255');
  const best = new Map<string, Candidate>();
  for (const record of asArray(dump, 'route')) {
    if (!isObject(record)) continue;
    const dst = text(record, 'dst');
    const what = `${text(record, 'type') ?? 'unicast'} ${dst ?? '?'} table ${text(record, 'table') ?? 'main'}`;
    const skip = (reason: string): void => {
      skipped.push({ what, reason });
    };
    const table = tableId(text(record, 'table') ?? 'main');
    const rank = ranks.get(table);
    if (rank === undefined || (table === '255' && !wantsLocal)) continue;
    if (!dst) {
      skip('no destination');
      continue;
    }
    let addr: Buffer;
    let length: number;
    if (dst === 'default') {
      addr = Buffer.alloc(family === 4 ? 4 : 16);
      length = 0;
    } else {
      const bytes = addressBytes(dst.split('/')[0]!);
      if (!bytes || (bytes.length === 4) !== (family === 4)) {
        skip('not a prefix of this family');
        continue;
      }
      try {
        const p = parsePrefixText(dst, 'dst');
        addr = p.addr;
        length = p.length;
      } catch {
        skip('malformed prefix');
        continue;
      }
      if (hostBitsSet(addr, length)) {
        skip('host bits set');
        continue;
      }
    }
    const special = insideRange(family, addr, length);
    if (special) {
      skip(special);
      continue;
    }
    const prefix = formatPrefixBytes(addr, length, 0, family);
    const type = text(record, 'type') ?? 'unicast';
    const dev = text(record, 'dev');
    let route: FibRoute;
    switch (type) {
      case 'unicast': {
        const gatewayText = text(record, 'gateway');
        const out = dev === undefined ? undefined : replicated.get(dev);
        if (Array.isArray(record.nexthops) || isObject(record.via)) {
          // ECMP, or an IPv4 route via an IPv6 next hop: the router forwards those itself.
          route = { prefix, family, kind: 'via-vm', gateway: null, interface: null };
        } else if (!out) {
          if (dev !== undefined && !links.has(dev)) {
            skip(`unknown interface ${dev}`);
            continue;
          }
          route = { prefix, family, kind: 'via-vm', gateway: null, interface: null };
        } else if (gatewayText !== undefined) {
          const gw = addressBytes(gatewayText);
          if (!gw || (gw.length === 4) !== (family === 4)) {
            skip(`gateway ${gatewayText} is not IPv${family}`);
            continue;
          }
          route = { prefix, family, kind: 'unicast', gateway: formatAddress(gw), interface: out };
        } else {
          route = { prefix, family, kind: 'unicast', gateway: null, interface: out };
        }
        break;
      }
      case 'local':
        route = { prefix, family, kind: 'local', gateway: null, interface: null };
        break;
      case 'blackhole':
        route = { prefix, family, kind: 'blackhole', gateway: null, interface: null };
        break;
      case 'unreachable':
      case 'prohibit':
      case 'throw':
        route = { prefix, family, kind: 'via-vm', gateway: null, interface: null };
        break;
      default:
        skip(`type ${type} is not replicated`);
        continue;
    }
    const metric = typeof record.metric === 'number' ? record.metric : 0;
    const current = best.get(prefix);
    if (!current || rank < current.rank || (rank === current.rank && metric < current.metric))
      best.set(prefix, { route, rank, metric });
  }
  return new Map([...best].map(([key, c]) => [key, c.route]));
}

// ---- neighbours ----------------------------------------------------------------------------------

const USABLE_STATES = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT']);

/** Neighbours with a usable MAC on replicated interfaces, keyed "ifname|address". */
export function parseNeighbourDump(
  dump: unknown,
  replicated: ReadonlyMap<string, RouterInterface>,
): Map<string, FibNeighbour> {
  const out = new Map<string, FibNeighbour>();
  for (const record of asArray(dump, 'neigh')) {
    if (!isObject(record)) continue;
    const dst = text(record, 'dst');
    const dev = text(record, 'dev');
    const mac = text(record, 'lladdr')?.toLowerCase();
    const states = Array.isArray(record.state) ? record.state.filter((s): s is string => typeof s === 'string') : [];
    if (!dst || !dev || !mac || !isUnicastMac(mac) || !states.some((s) => USABLE_STATES.has(s))) continue;
    const iface = replicated.get(dev);
    const bytes = addressBytes(dst);
    if (!iface || !bytes) continue;
    const address = formatAddress(bytes);
    out.set(neighbourSnapshotKey(dev, address), { address, mac, interface: iface });
  }
  return out;
}

export function neighbourSnapshotKey(ifname: string, address: string): string {
  return `${ifname}|${address}`;
}
