// Test doubles for the manager and client tests: an in-memory DataPlane with the real one's
// route, next hop and filter semantics (validate all, then write; failures can be injected),
// an in-process UpdateSession pair, a manual clock, and a two-network config. The fake's own
// test is test/unit/manager-fakes.test.ts.
import { parseConfig, type XnetmonConfig } from '../../src/config/index.js';
import type {
  FilterRuleSpec,
  NexthopSpec,
  Prefix,
  Route4Columns,
  RouteSpec,
  RouteTarget,
  RouteWriteOptions,
} from '../../src/dataplane/index.js';
import { ValidationError, XnetmonError } from '../../src/errors/index.js';
import { RouteFlags } from '../../src/loader/layouts.js';
import { formatPrefixBytes, parsePrefixText } from '../../src/net/index.js';
import {
  decodeAck,
  PayloadQueue,
  segmentMapFromConfig,
  type Ack,
  type Clock,
  type RouteWriter,
  type RouterInterface,
  type UpdateLogger,
  type UpdateSession,
} from '../../src/manager/index.js';

// ---- data plane -----------------------------------------------------------------------------

function canonical(prefix: string | Prefix, path: string): string {
  if (typeof prefix !== 'string') return formatPrefixBytes(prefix.addr, prefix.length, 0, prefix.family);
  const p = parsePrefixText(prefix, path);
  return formatPrefixBytes(p.addr, p.length, 0, p.family);
}

/** Like DataPlane: routes keyed by (network, prefix), next hops shared by identity, filters per network. */
export class FakeDataPlane implements RouteWriter {
  readonly tables = new Map<number, Map<string, RouteTarget>>();
  readonly nexthops = new Map<number, NexthopSpec>();
  readonly filters = new Map<number, FilterRuleSpec[]>();
  /** Every write, in order: "add 1 10.0.0.0/8", "del 1 10.0.0.0/8". */
  readonly log: string[] = [];
  /** The next addRoutes call writes this many routes, then throws (a map that filled up). */
  failNextAddAfter: number | null = null;
  /** How each route write asked to be undone ('read': the data plane's own rollback; 'caller'). */
  readonly undoModes: string[] = [];
  /** Entries the route map holds over all networks, like max_entries of xnm_routes4/6 (one count for both here). */
  maxRoutes = Infinity;
  private nextNexthop = 1;
  private readonly free: number[] = [];

  constructor(readonly networks: readonly number[] = [1, 2]) {
    for (const id of networks) this.tables.set(id, new Map());
  }

  private table(netId: number): Map<string, RouteTarget> {
    const table = this.tables.get(netId);
    if (!table) throw new XnetmonError('ERR_UNKNOWN_NETWORK', `unknown network ${netId}`);
    return table;
  }

  nexthop(spec: NexthopSpec): number {
    for (const [id, existing] of this.nexthops) if (JSON.stringify(existing) === JSON.stringify(spec)) return id;
    const id = this.free.pop() ?? this.nextNexthop++;
    this.nexthops.set(id, { ...spec });
    return id;
  }

  releaseNexthop(id: number): void {
    if (this.nexthops.delete(id)) this.free.push(id);
  }

  addRoutes(netId: number, routes: readonly RouteSpec[], options?: RouteWriteOptions): void {
    this.table(netId);
    this.undoModes.push(options?.undo ?? 'read');
    this.write(
      netId,
      routes.map((r, i) => ({ prefix: canonical(r.prefix, `routes[${i}].prefix`), target: r.target })),
    );
  }

  /** Like DataPlane.addRoutes4: host-order addresses; a route flag (BLACKHOLE, LOCAL, VIA_VM) wins over the next hop. */
  addRoutes4(netId: number, columns: Route4Columns, options?: RouteWriteOptions): void {
    this.table(netId);
    this.undoModes.push(options?.undo ?? 'read');
    const routes: { prefix: string; target: RouteTarget }[] = [];
    for (let i = 0; i < columns.count; i++) {
      const addr = columns.addrs[i]! >>> 0;
      const length = columns.lengths[i]!;
      if (length > 32) throw new ValidationError(`routes[${i}]`, `prefix length ${length} must be 0..32`);
      if (length < 32 && (addr & (0xffffffff >>> length)) !== 0)
        throw new ValidationError(`routes[${i}]`, 'host bits set');
      const flags = columns.flags?.[i] ?? 0;
      const target: RouteTarget =
        flags & RouteFlags.BLACKHOLE
          ? { kind: 'blackhole' }
          : flags & RouteFlags.LOCAL
            ? { kind: 'local' }
            : flags & RouteFlags.VIA_VM
              ? { kind: 'via-vm' }
              : { kind: 'nexthop', nexthopId: columns.nexthops[i]! };
      routes.push({
        prefix: `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${length}`,
        target,
      });
    }
    this.write(netId, routes);
  }

  /** Validates every route (next hops exist and are the network's), then writes them in order. */
  private write(netId: number, parsed: readonly { prefix: string; target: RouteTarget }[]): void {
    const table = this.table(netId);
    for (const [i, r] of parsed.entries()) {
      if (r.target.kind !== 'nexthop') continue;
      const nh = this.nexthops.get(r.target.nexthopId);
      if (!nh) throw new ValidationError(`routes[${i}].nexthop`, `next hop ${r.target.nexthopId} does not exist`);
      if (nh.netId !== netId)
        throw new ValidationError(
          `routes[${i}].nexthop`,
          `next hop ${r.target.nexthopId} belongs to network ${nh.netId}, not ${netId}`,
        );
    }
    const failAfter = this.failNextAddAfter;
    this.failNextAddAfter = null;
    for (const [i, r] of parsed.entries()) {
      if (failAfter !== null && i >= failAfter) throw new XnetmonError('ERR_MAP_FULL', 'xnm_routes4 is full (ENOSPC)');
      if (!table.has(r.prefix) && this.routeEntries() >= this.maxRoutes)
        throw new XnetmonError('ERR_MAP_FULL', 'xnm_routes4 is full (ENOSPC)');
      table.set(r.prefix, r.target);
      this.log.push(`add ${netId} ${r.prefix}`);
    }
  }

  /** Routes of every network. */
  routeEntries(): number {
    let count = 0;
    for (const table of this.tables.values()) count += table.size;
    return count;
  }

  deleteRoutes(netId: number, prefixes: readonly (string | Prefix)[]): number {
    const table = this.table(netId);
    let removed = 0;
    for (const [i, p] of prefixes.entries()) {
      const prefix = canonical(p, `prefixes[${i}]`);
      if (table.delete(prefix)) removed++;
      this.log.push(`del ${netId} ${prefix}`);
    }
    return removed;
  }

  listRoutes(netId?: number): { netId: number; prefix: string; target: RouteTarget }[] {
    const out: { netId: number; prefix: string; target: RouteTarget }[] = [];
    for (const [id, table] of this.tables) {
      if (netId !== undefined && id !== netId) continue;
      for (const [prefix, target] of table) out.push({ netId: id, prefix, target });
    }
    return out;
  }

  setFilter(netId: number, rules: readonly FilterRuleSpec[]): void {
    this.table(netId);
    if (rules.length > 32) throw new ValidationError('filter', `${rules.length} rules; at most 32 per network`);
    this.filters.set(
      netId,
      rules.map((r) => ({ ...r })),
    );
  }

  /** A network's routes, readable: prefix -> "via-vm" | "local" | "blackhole" | "nh <dmac> <ifindex>/<vlan> from <smac>". */
  view(netId: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [prefix, target] of [...this.table(netId)].sort(([a], [b]) => a.localeCompare(b))) {
      if (target.kind !== 'nexthop') out[prefix] = target.kind;
      else {
        const nh = this.nexthops.get(target.nexthopId);
        out[prefix] = nh
          ? `nh ${nh.dmac} ${nh.ifindex}/${nh.vlan} from ${nh.smac}`
          : `nh ${target.nexthopId} (missing)`;
      }
    }
    return out;
  }
}

// ---- sessions ------------------------------------------------------------------------------------

/** An in-memory session: `deliver` plays the peer, `sent` holds what the tested side sent. */
export class FakeSession implements UpdateSession {
  readonly sent: Buffer[] = [];
  closed = false;
  private readonly inbox = new PayloadQueue();
  private readonly sentWaiters: (() => void)[] = [];

  /** The other end, when this is one end of a pair: what one sends, the other receives. */
  peer: FakeSession | null = null;

  constructor(
    readonly peerId: string,
    readonly remoteAddress = '192.0.2.9:40000',
    /** The router's client key, when the network has several (absent: its first router). */
    readonly peerPublicKey: string | undefined = undefined,
  ) {}

  async send(payload: Buffer): Promise<void> {
    if (this.closed) throw new Error('session closed');
    this.sent.push(payload);
    for (const wake of this.sentWaiters.splice(0)) wake();
    this.peer?.deliver(payload);
  }

  messages(): AsyncIterable<Buffer> {
    return this.inbox.iterate();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.close();
    for (const wake of this.sentWaiters.splice(0)) wake();
    this.peer?.close();
  }

  /** The peer sends a payload. */
  deliver(payload: Buffer): void {
    this.inbox.push(payload);
  }

  /** The peer sends a payload and waits for the one reply (an Ack). */
  async request(payload: Buffer): Promise<Ack> {
    const before = this.sent.length;
    this.deliver(payload);
    while (this.sent.length === before) {
      if (this.closed) throw new Error('session closed before a reply');
      await new Promise<void>((resolve) => this.sentWaiters.push(resolve));
    }
    return decodeAck(this.sent[before]!);
  }

  /** Waits until `count` payloads have been sent. */
  async waitSent(count: number): Promise<void> {
    while (this.sent.length < count && !this.closed)
      await new Promise<void>((resolve) => this.sentWaiters.push(resolve));
  }
}

/** Two connected ends: the client's (peer "host") and the host's (peer = the network name). */
export function sessionPair(network: string): { client: FakeSession; host: FakeSession } {
  const client = new FakeSession('host', '192.0.2.1:7400');
  const host = new FakeSession(network);
  client.peer = host;
  host.peer = client;
  return { client, host };
}

// ---- time and logs -------------------------------------------------------------------------------

export class ManualClock implements Clock {
  private time = 1_700_000_000_000;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** Moves time on, running timers that fall due, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers].filter(([, t]) => t.at <= end).sort(([, a], [, b]) => a.at - b.at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].at;
      due[1].callback();
    }
    this.time = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

export class MemoryLogger implements UpdateLogger {
  readonly lines: { level: string; message: string; fields: object }[] = [];
  debug(fields: object, message: string): void {
    this.lines.push({ level: 'debug', message, fields });
  }
  info(fields: object, message: string): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(fields: object, message: string): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(fields: object, message: string): void {
    this.lines.push({ level: 'error', message, fields });
  }
}

// ---- a host with two networks ------------------------------------------------------------------------

export const KEYS = { blue: Buffer.alloc(32, 1).toString('base64'), green: Buffer.alloc(32, 2).toString('base64') };

/** blue (1) on p0 untagged and q0 VLAN 10; green (2, filter default drop) on p0 untagged and q0 VLAN 20. */
export function twoNetworkConfig(staleRouteTimeoutS = 60): XnetmonConfig {
  return parseConfig(`
host:
  links: [{ name: p0, capacity_mbps: 1000 }, { name: q0, capacity_mbps: 1000 }]
  stale_route_timeout_s: ${staleRouteTimeoutS}
networks:
  - id: 1
    name: blue
    routers: [{ vif: vifb, client_public_key: "${KEYS.blue}" }]
    attachments:
      - { interface: p0, vlan: 0, mac: "02:00:00:01:00:01" }
      - { interface: q0, vlan: 10, mac: "02:00:00:01:00:02" }
  - id: 2
    name: green
    filter_default: drop
    routers: [{ vif: vifg, client_public_key: "${KEYS.green}" }]
    attachments:
      - { interface: p0, vlan: 0, mac: "02:00:00:02:00:01" }
      - { interface: q0, vlan: 20, mac: "02:00:00:02:00:02" }
`);
}

export const HOST_LINKS = new Map([
  ['p0', { ifindex: 10, linkSlot: 0 }],
  ['q0', { ifindex: 11, linkSlot: 1 }],
]);
export const segments = segmentMapFromConfig(HOST_LINKS);

/** blue's router interfaces: eth0 on p0, eth1 on q0 VLAN 10 (matched by MAC). */
export const BLUE = {
  eth0: { index: 2, name: 'eth0', mac: '02:00:00:01:00:01' } satisfies RouterInterface,
  eth1: { index: 3, name: 'eth1', mac: '02:00:00:01:00:02' } satisfies RouterInterface,
  /** A management interface that is on none of blue's segments. */
  mgmt: { index: 4, name: 'mgmt0', mac: '52:54:00:12:34:56' } satisfies RouterInterface,
  /** Claims green's MAC on p0. */
  spoof: { index: 9, name: 'eth9', mac: '02:00:00:02:00:01' } satisfies RouterInterface,
};
