// The data plane manager (host side). Paper IV-B: the XNetMon server maps the forwarding
// table and packet filter built in each DomU to Dom0, into the tables of that DomU's
// network only, and adapts filter rules so that they cannot touch other networks' traffic.
//
// One UpdateManager serves every network. For each it keeps the authoritative route table
// (what the router said, and what the maps hold for it), so that a failed kernel write is
// rolled back, evicted routes can be restored, and a restart of either side needs no flush:
// routes go stale and are swept after the router's full resync (RFC 4724 style).
//
// The table is columnar (table.ts): a full table of a million routes goes through in a few
// hundred milliseconds of manager time, with IPv4 writes in large addRoutes4 batches.
// Every change (a batch, a sweep, an eviction) is one operation: rows are staged against the
// committed table, targets are resolved once per gateway, the map writes are planned from
// the difference, written adds-then-deletes, and only then committed.
//
// Imports from the data plane are types only: the client imports this module's index for
// the protocol and must not load the BPF loader inside a virtual router.
// Size: one class of ~1,300 lines (sessions, resync, validation, neighbours, memory control,
// plan/write/rollback); its split into rooms is the open layout issue, to be done in one
// restructuring with RouteTable behind methods, not piecemeal.
import type { DataPlane, FilterRuleSpec, Prefix, Route4Columns, RouteSpec, RouteTarget } from '../dataplane/index.js';
import {
  LAYOUT_LIMITS, networkQuotas, QUOTA_TABLE_NAMES, tableCapacities, type NetworkDefinition, type QuotaTable, type TableCapacities, type XnetmonConfig,
} from '../config/index.js';
import { FailureLog, ValidationError, XnetmonError } from '../errors/index.js';
import { CoverIndexBuilder, type CoverIndex } from './cover.js';
import {
  formatAddress, formatPrefixBytes, hostBitsSet, isUnicastAddress, isUnicastMac, macFromBytes, maskedAddress, parsePrefixText, prefixKey, type Family,
} from '../net/index.js';
import {
  encodeAck, decodeMessage, KIND_GATEWAY_BIT, NO_INTERFACE, PROTOCOL_VERSION, ProtocolError, ROUTE_KINDS,
  type FilterReplace, type NeighbourBatch, type RouteBatch, type RouteColumns, type PrefixColumns, type RouterInterface,
  type NeighbourColumns, type NeighbourKeyColumns, type UpdateMessage,
} from '../wire/index.js';
import { InterfaceRegistry, NeighbourAddresses, type InterfaceEntry } from './registry.js';
import type { SegmentBinding, SegmentMap } from './segments.js';
import {
  RouteTable, EVICTED, KIND_BLACKHOLE, KIND_LOCAL, KIND_UNICAST, KIND_VIA_VM, ORIGIN_ADOPTED, ORIGIN_FREE, ORIGIN_NEIGHBOUR, ORIGIN_ROUTER,
  STALE, TARGET_BLACKHOLE, TARGET_LOCAL, TARGET_NONE, TARGET_VIA_VM, UNRESOLVED, type CommitHooks, type Via,
} from './table.js';
import { silentLogger, systemClock, type Clock, type UpdateLogger, type UpdateSession } from '../wire/index.js';

/** The part of DataPlane the manager writes through (tests may pass a fake with the same behaviour). */
export type RouteWriter = Pick<DataPlane, 'nexthop' | 'releaseNexthop' | 'addRoutes' | 'addRoutes4' | 'deleteRoutes' | 'listRoutes' | 'setFilter'>;

export interface UpdateManagerOptions {
  readonly dataPlane: RouteWriter;
  readonly config: XnetmonConfig;
  readonly segments: SegmentMap;
  readonly logger?: UpdateLogger;
  readonly clock?: Clock;
  /**
   * Start from the routes already in the (pinned) maps, marked stale: after a host daemon
   * restart the router's resync then replaces them with no gap in forwarding. Default true.
   */
  readonly adoptInstalledRoutes?: boolean;
  /**
   * Sizes of the shared tables, when the data plane was opened with other sizes than
   * bpf/xnetmon.h's (DataPlane.open's maxRoutes4/maxRoutes6): the default quotas are shares of these.
   */
  readonly capacities?: Partial<TableCapacities>;
}

/** The tables a network's quota limits: the shared ones, and its filter slots (fixed by the map layout). */
export type QuotaTableName = QuotaTable | 'filterRules';

/** One table of `quotaStatus`: what the network holds, its limit, and how many batches hit it. */
export interface QuotaUse {
  readonly used: number;
  readonly quota: number;
  readonly rejections: number;
}

export type QuotaStatus = Readonly<Record<QuotaTableName, QuotaUse>> & {
  /** Batches the kernel refused for lack of room (ERR_MAP_FULL and other data plane errors). */
  readonly mapWriteFailures: number;
};

/** Per-network route counts: `installed` is the network's use of the memory resource. */
export interface RouteCounts {
  readonly netId: number;
  readonly network: string;
  /** Entries in the data plane maps, including defaults added by memory control and neighbour host routes. */
  readonly installed: number;
  /** Entries in the table: the router's routes, neighbour host routes and adopted routes (installed or evicted). */
  readonly routes: number;
  readonly stale: number;
  readonly evicted: number;
  /** Unicast routes sent to the VM because their next hop's MAC is not known yet. */
  readonly unresolved: number;
  readonly neighbours: number;
  /** Host routes (/32, /128) to neighbours on the router's connected subnets. */
  readonly neighbourRoutes: number;
}

/** One entry of a network's table (`xnetmon routes`). */
export interface RouteInfo {
  readonly prefix: string;
  /** What the maps hold; null when the route is evicted. */
  readonly target: RouteTarget | null;
  readonly stale: boolean;
  readonly evicted: boolean;
  /** The router's route, a host route to one of its neighbours, or adopted from the maps after a host restart. */
  readonly source: 'router' | 'neighbour' | 'adopted';
}

/** One line of `xnetmon clients`. */
export interface SessionInfo {
  readonly netId: number;
  readonly network: string;
  readonly connected: boolean;
  /** The channel's peer identity and address, and the name the client gave in Hello. */
  readonly peer: string | null;
  readonly remoteAddress: string | null;
  readonly clientName: string | null;
  readonly connectedSince: Date | null;
  readonly disconnectedSince: Date | null;
  readonly lastUpdate: Date | null;
  readonly resyncing: boolean;
  readonly routes: number;
  readonly stale: number;
  readonly evicted: number;
  readonly lastError: string | null;
}

/** A batch was refused or could not be written; `code` goes into the Ack. */
export class BatchRejectedError extends XnetmonError {}

/**
 * A batch would take a network over its quota of a shared table (code ERR_QUOTA): it is refused
 * whole, nothing of it applied, so that the other networks always find their share free.
 */
export class QuotaExceededError extends BatchRejectedError {
  constructor(readonly network: string, readonly table: QuotaTableName, readonly quota: number, readonly wanted: number) {
    const where = table === 'filterRules' ? 'xnm_filters' : QUOTA_TABLE_NAMES[table];
    super('ERR_QUOTA', `network ${network} is over its quota of ${table} (${where}): the batch would hold ${wanted}, the quota is ${quota}; nothing of it was applied`);
  }
}

const QUOTA_TABLE_LIST: readonly QuotaTableName[] = ['routes4', 'routes6', 'nexthops', 'neighbours', 'filterRules'];

// ---- internal state ---------------------------------------------------------------------

interface NeighbourEntry {
  /** "router ifindex|address hex". */
  readonly key: string;
  readonly family: Family;
  readonly addr: Buffer;
  /** The router interface it was reported on (interface registry id). */
  readonly ifaceId: number;
  readonly mac: string;
  stale: boolean;
}

interface NetworkState {
  definition: NetworkDefinition;
  readonly tables: Record<Family, RouteTable>;
  readonly hooks: Record<Family, CommitHooks>;
  readonly interfaces: InterfaceRegistry;
  /** key "ifindex|hex address" -> neighbour. */
  readonly neighbours: Map<string, NeighbourEntry>;
  /** Sorted neighbour addresses; null when neighbours changed since it was built. */
  neighbourAddresses: NeighbourAddresses | null;
  /** neighbour key -> ids of the vias (gateways) it resolves, per family's table. */
  readonly viasByNeighbour: Record<Family, Map<string, Set<number>>>;
  /** Families whose default route is memory control's route to the VM. */
  readonly syntheticDefaults: Set<Family>;
  coverIndex: CoverIndex | null;
  filterRules: readonly FilterRuleSpec[] | null;
  session: UpdateSession | null;
  clientName: string | null;
  helloSeen: boolean;
  resyncing: boolean;
  resyncFailed: boolean;
  connectedSince: number | null;
  disconnectedSince: number | null;
  lastUpdate: number | null;
  lastError: string | null;
  staleTimer: unknown;
  /** Next hop ids the data plane gave this network (its use of xnm_nexthops). */
  readonly nexthopIds: Set<number>;
  /** Batches refused per table for the quota. */
  readonly quotaRejections: Record<QuotaTableName, number>;
  mapWriteFailures: number;
}

/** One change of one network's table, from staging to commit. */
class Operation {
  /** Next hops made (or found) for this change; released at the end when nothing uses them. */
  readonly acquired: number[] = [];
  /** Next hop by segment and MAC, for this change. */
  readonly nexthops = new Map<string, number>();
  /** Memory control's default routes to add or remove with this change. */
  addDefaults: Family[] = [];
  removeDefaults: Family[] = [];
  /** Router entries whose announcement changes: neighbours inside them may gain or lose their host route. */
  readonly changed: Record<Family, number[]> = { 4: [], 6: [] };

  constructor(
    /** The neighbour table as it will be after this change. */
    readonly neighbour: (key: string) => NeighbourEntry | undefined,
  ) {}
}

const FAMILIES = [4, 6] as const;

function targetOf(code: number): RouteTarget | null {
  if (code > 0) return { kind: 'nexthop', nexthopId: code };
  switch (code) {
    case TARGET_VIA_VM: return { kind: 'via-vm' };
    case TARGET_LOCAL: return { kind: 'local' };
    case TARGET_BLACKHOLE: return { kind: 'blackhole' };
    default: return null;
  }
}

function codeOf(target: RouteTarget): number {
  switch (target.kind) {
    case 'nexthop': return target.nexthopId;
    case 'via-vm': return TARGET_VIA_VM;
    case 'local': return TARGET_LOCAL;
    case 'blackhole': return TARGET_BLACKHOLE;
  }
}

function describeInterface(iface: RouterInterface): string {
  return `${iface.name} (index ${iface.index}${iface.mac ? `, MAC ${iface.mac}` : ''})`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorCode(error: unknown): string {
  if (error instanceof XnetmonError && /^[A-Z][A-Z0-9_]{0,31}$/.test(error.code)) return error.code;
  return 'ERR_APPLY';
}

function hexOf(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('hex');
}

/** Host-order value of four network-order bytes. */
function u32At(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

function unicast6(bytes: Uint8Array, offset: number): boolean {
  if (bytes[offset] === 0xff) return false;
  for (let k = 0; k < 16; k++) if (bytes[offset + k] !== 0) return true;
  return false;
}

/** True when a sorted list of host-order IPv4 addresses has one inside addr/length. */
function containsAny4(sorted: Uint32Array, addr: number, length: number): boolean {
  const n = sorted.length;
  const last = length === 32 ? addr : addr + (0xffffffff >>> length);
  // Most prefixes of a full table are nowhere near the router's connected subnets.
  if (n === 0 || last < sorted[0]! || addr > sorted[n - 1]!) return false;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < addr) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sorted[lo]! <= last;
}

/** Slots of the per-batch IPv4 gateway cache (a power of two; the shift takes the hash's top bits). */
const VIA_CACHE_SIZE = 1024;
const VIA_CACHE_SHIFT = 22;

/**
 * One family's map writes of an operation, as row indices (-1: memory control's default
 * route) with the target to write; typed arrays, as a full table writes a million at once.
 */
interface FamilyWrites {
  upserts: Int32Array;
  upsertTargets: Int32Array;
  upsertCount: number;
  deletes: Int32Array;
  deleteCount: number;
}

// ---- the manager --------------------------------------------------------------------------

export class UpdateManager {
  private readonly dp: RouteWriter;
  private readonly logger: UpdateLogger;
  private readonly clock: Clock;
  private config: XnetmonConfig;
  private segments: SegmentMap;
  private readonly networks = new Map<number, NetworkState>();
  /** How many installed routes use each next hop (by id): released at zero. */
  private nexthopRefs = new Int32Array(1024);
  /** Next hops whose count fell to zero in the operation being committed. */
  private readonly droppedNexthops: number[] = [];
  /** Every virtual router MAC on this host: never a next hop of the fast path. */
  private routerMacs = new Map<string, string>();
  private closed = false;
  private readonly capacities: TableCapacities;
  /** Every network's effective quota per shared table (config/quota.ts). */
  private quotas = new Map<number, Record<QuotaTable, number>>();
  /** Which network holds each next hop id. */
  private readonly nexthopOwner = new Map<number, NetworkState>();
  /** Refused batches and failed map writes, logged at most once per interval per network and code. */
  private readonly failures: FailureLog;

  constructor(options: UpdateManagerOptions) {
    this.dp = options.dataPlane;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.config = options.config;
    this.segments = options.segments;
    this.capacities = tableCapacities({ tableCapacities: options.capacities ?? {} });
    this.quotas = networkQuotas(this.config, this.capacities);
    this.failures = new FailureLog(this.logger, { now: () => this.clock.now() });
    this.indexRouterMacs();
    for (const network of this.config.networks) this.networks.set(network.id, this.newState(network));
    if (options.adoptInstalledRoutes ?? true) for (const state of this.networks.values()) this.adopt(state);
  }

  // ---- public API ------------------------------------------------------------------------

  /**
   * Serves one session of the secure channel until it closes. The session's peerId names
   * the network (the channel authenticated it); a newer session of the same network
   * replaces an older one. Never rejects.
   */
  async attachSession(session: UpdateSession): Promise<void> {
    const state = [...this.networks.values()].find((s) => s.definition.name === session.peerId);
    if (!state || this.closed) {
      this.logger.warn({ peer: session.peerId, remote: session.remoteAddress }, 'update session for an unknown network: closed');
      session.close();
      return;
    }
    const previous = state.session;
    state.session = session;
    state.helloSeen = false;
    state.resyncing = false;
    state.connectedSince = this.clock.now();
    state.disconnectedSince = null;
    state.lastError = null;
    if (previous) {
      this.logger.info({ network: state.definition.name }, 'a new update session replaces the previous one');
      previous.close();
    }
    this.logger.info({ network: state.definition.name, remote: session.remoteAddress }, 'update session started');
    try {
      for await (const payload of session.messages()) {
        if (state.session !== session) break;
        const reply = this.handlePayload(state, payload);
        if (reply.payload) await session.send(reply.payload);
        if (reply.close) {
          session.close();
          break;
        }
      }
    } catch (error) {
      this.logger.info({ network: state.definition.name, err: errorText(error) }, 'update session ended with an error');
    } finally {
      if (state.session === session) this.sessionEnded(state);
    }
  }

  /** Route counts of one network (by id or name). */
  routeCounts(network: number | string): RouteCounts {
    return this.counts(this.state(network));
  }

  /** Entries a network has in the maps: the controller's memory resource (paper IV-A). Constant time. */
  routeCount(network: number | string): number {
    const state = this.state(network);
    return state.tables[4].installed + state.tables[6].installed + state.syntheticDefaults.size;
  }

  /** A network's use of each shared table against its quota, and the batches refused for it. */
  quotaStatus(network: number | string): QuotaStatus {
    const state = this.state(network);
    const quota = this.quotas.get(state.definition.id) ?? { routes4: 0, routes6: 0, nexthops: 0, neighbours: 0 };
    const filterRules = (state.filterRules?.length ?? 0) + (state.definition.filterDefault === 'drop' ? 2 : 0);
    const used: Record<QuotaTableName, number> = {
      routes4: this.familyUse(state, 4), routes6: this.familyUse(state, 6), nexthops: state.nexthopIds.size, neighbours: state.neighbours.size, filterRules,
    };
    const limit: Record<QuotaTableName, number> = { ...quota, filterRules: LAYOUT_LIMITS.filterRules };
    const out = Object.fromEntries(QUOTA_TABLE_LIST.map((t) => [t, { used: used[t], quota: limit[t], rejections: state.quotaRejections[t] }]));
    return { ...out, mapWriteFailures: state.mapWriteFailures } as QuotaStatus;
  }

  allRouteCounts(): RouteCounts[] {
    return [...this.networks.values()].sort((a, b) => a.definition.id - b.definition.id).map((s) => this.counts(s));
  }

  sessions(): SessionInfo[] {
    return [...this.networks.values()].sort((a, b) => a.definition.id - b.definition.id).map((s) => {
      const counts = this.counts(s);
      const date = (t: number | null): Date | null => (t === null ? null : new Date(t));
      return {
        netId: s.definition.id, network: s.definition.name, connected: s.session !== null,
        peer: s.session?.peerId ?? null, remoteAddress: s.session?.remoteAddress ?? null, clientName: s.clientName,
        connectedSince: s.session ? date(s.connectedSince) : null, disconnectedSince: date(s.disconnectedSince),
        lastUpdate: date(s.lastUpdate), resyncing: s.resyncing, routes: counts.routes, stale: counts.stale, evicted: counts.evicted,
        lastError: s.lastError,
      };
    });
  }

  /** The authoritative table of a network, readable (tests, `xnetmon routes`). */
  routes(network: number | string): RouteInfo[] {
    const state = this.state(network);
    const out: RouteInfo[] = [];
    for (const table of [state.tables[4], state.tables[6]]) {
      for (let slot = 0; slot < table.top; slot++) {
        const origin = table.origin[slot]!;
        if (origin < ORIGIN_ROUTER) continue;
        const bits = table.bits[slot]!;
        out.push({
          prefix: formatPrefixBytes(table.addressOf(slot), table.length[slot]!, 0, table.family),
          target: targetOf(table.target[slot]!),
          stale: (bits & STALE) !== 0,
          evicted: (bits & EVICTED) !== 0,
          source: origin === ORIGIN_NEIGHBOUR ? 'neighbour' : origin === ORIGIN_ADOPTED ? 'adopted' : 'router',
        });
      }
    }
    return out;
  }

  /**
   * Paper IV-A memory control: removes `fraction` of a network's installed routes from the
   * maps, most specific first, and installs a default route to the VM so that no packet is
   * lost, only slowed. A route that covers an evicted one is evicted with it (otherwise it
   * would catch the evicted route's packets). Evicted routes are kept for restoreRoutes.
   * Returns how many routes were evicted.
   */
  evictRoutes(network: number | string, fraction: number): number {
    if (!(fraction >= 0 && fraction <= 1)) throw new ValidationError('fraction', `${fraction} must be a number from 0 to 1`);
    const state = this.state(network);
    const wanted = Math.ceil(fraction * (state.tables[4].installed + state.tables[6].installed));
    if (wanted === 0) return 0;
    const order = this.evictionOrder(state);
    let chosen = 0;
    const families = new Set<Family>();
    const op = new Operation((key) => state.neighbours.get(key));
    try {
      this.operateEviction(state, op, wanted, order, families, (n) => { chosen = n; });
    } catch (error) {
      // All or nothing: nothing was evicted. The controller tries again next period.
      state.mapWriteFailures++;
      throw error;
    }
    this.logger.info({ network: state.definition.name, evicted: chosen, fraction }, 'routes evicted for memory control; a default route now goes to the VM');
    return chosen;
  }

  private operateEviction(
    state: NetworkState, op: Operation, wanted: number, order: { families: Uint8Array; slots: Int32Array }, families: Set<Family>, done: (chosen: number) => void,
  ): void {
    let chosen = 0;
    this.operate(state, op, () => {
      const choose = (table: RouteTable, slot: number): void => {
        const row = table.stage(slot);
        const rows = table.rows;
        // A route adopted after a host restart has no announcement to restore from: it is dropped,
        // and comes back (evicted or not) with the router's resync.
        if (rows.origin[row] === ORIGIN_ADOPTED) rows.origin[row] = ORIGIN_FREE;
        else rows.bits[row] = (rows.bits[row]! | EVICTED) & ~UNRESOLVED;
        chosen++;
        families.add(table.family);
      };
      for (let k = 0; k < order.slots.length && chosen < wanted; k++) {
        const table = state.tables[order.families[k] === 4 ? 4 : 6];
        const slot = order.slots[k]!;
        if (table.staged(slot)) continue;
        choose(table, slot);
        // Every installed route that covers this one goes too.
        const addr = table.family === 4 ? null : table.addressOf(slot);
        const addr4 = table.family === 4 ? table.addr4[slot]! : 0;
        for (let length = table.length[slot]! - 1; length >= 0; length--) {
          if (table.usedLengths[length] === 0) continue;
          const cover = addr === null ? table.find4(length === 0 ? 0 : (addr4 & (0xffffffff << (32 - length))) >>> 0, length) : table.find(maskedAddress(addr, length), 0, length);
          if (cover >= 0 && !table.staged(cover) && table.isLive(cover) && table.target[cover] !== TARGET_NONE) choose(table, cover);
        }
      }
      op.addDefaults = [...families].filter((f) => !state.syntheticDefaults.has(f));
    }, () => {
      for (const family of op.addDefaults) state.syntheticDefaults.add(family);
      state.coverIndex = this.evictedIndex(state);
    });
    done(chosen);
  }

  /**
   * Puts a network's evicted routes back into the maps and removes memory control's default
   * routes. Most specific first, so a route never returns before the more specific ones it
   * covers. When the maps refuse (full), it keeps what went in, in ever smaller steps, and
   * leaves the rest evicted behind the default to the VM for the next call; the defaults go
   * only with the last evicted route. Returns how many routes were restored.
   */
  restoreRoutes(network: number | string): number {
    const state = this.state(network);
    const pending = this.evictedMostSpecificFirst(state);
    let restored = 0;
    let step = Math.max(1, pending.length);
    let from = 0;
    for (;;) {
      const to = Math.min(pending.length, from + step);
      try {
        this.restoreSlots(state, pending, from, to, to === pending.length);
      } catch (error) {
        if (step > 1) {
          step = Math.ceil(step / 2);
          continue;
        }
        state.mapWriteFailures++;
        this.failures.report(`${state.definition.name}:restore`, { network: state.definition.name, restored, left: pending.length - from, err: errorText(error) },
          'restoring evicted routes stopped: the maps refused; the rest stay evicted (via the VM) until the next restore');
        break;
      }
      restored += to - from;
      from = to;
      if (from >= pending.length) break;
    }
    this.logger.info({ network: state.definition.name, restored, left: pending.length - restored }, 'evicted routes restored');
    return restored;
  }

  /** A network's evicted entries, most specific first (family, slot). */
  private evictedMostSpecificFirst(state: NetworkState): { family: Family; slot: number; hostBits: number }[] {
    const out: { family: Family; slot: number; hostBits: number }[] = [];
    for (const table of [state.tables[4], state.tables[6]]) {
      for (let slot = 0; slot < table.top; slot++) {
        if (table.isLive(slot) && table.bits[slot]! & EVICTED) out.push({ family: table.family, slot, hostBits: table.maxLength - table.length[slot]! });
      }
    }
    return out.sort((a, b) => a.hostBits - b.hostBits);
  }

  /** One all-or-nothing step of restoreRoutes: entries [from, to) of `pending`; the last step removes the defaults. */
  private restoreSlots(state: NetworkState, pending: readonly { family: Family; slot: number }[], from: number, to: number, last: boolean): void {
    const op = new Operation((key) => state.neighbours.get(key));
    this.operate(state, op, () => {
      for (let k = from; k < to; k++) {
        const { family, slot } = pending[k]!;
        const table = state.tables[family];
        if (!table.isLive(slot) || !(table.bits[slot]! & EVICTED)) continue;
        const row = table.stage(slot);
        table.rows.bits[row] = table.rows.bits[row]! & ~EVICTED;
      }
      if (last) op.removeDefaults = [...state.syntheticDefaults];
    }, () => {
      if (last) {
        state.syntheticDefaults.clear();
        state.coverIndex = null;
      } else {
        state.coverIndex = this.evictedIndex(state);
      }
    });
  }

  /**
   * A new configuration: networks that are gone lose their routes and session; changed
   * networks get their routes re-resolved (a segment may have moved) and their filter's
   * default rule re-applied.
   */
  updateConfig(config: XnetmonConfig, segments: SegmentMap = this.segments): void {
    const previous = this.config;
    this.config = config;
    this.segments = segments;
    this.indexRouterMacs();
    // A quota change applies live: the next batch is checked against the new quota.
    this.quotas = networkQuotas(config, this.capacities);
    const ids = new Set(config.networks.map((n) => n.id));
    for (const [id, state] of this.networks) {
      if (ids.has(id)) continue;
      this.withdrawAll(state, 'network removed from the configuration');
      state.session?.close();
      this.clock.clearTimeout(state.staleTimer);
      this.networks.delete(id);
    }
    for (const network of config.networks) {
      const state = this.networks.get(network.id);
      if (!state) {
        this.networks.set(network.id, this.newState(network));
        continue;
      }
      const before = previous.networks.find((n) => n.id === network.id);
      state.definition = network;
      if (before === network) continue;
      this.reresolve(state);
      if (state.filterRules) {
        try {
          this.writeFilter(state, state.filterRules);
        } catch (error) {
          this.logger.error({ network: state.definition.name, err: errorText(error) }, 'rewriting the filter after a configuration change failed; the router\'s next FilterReplace writes it');
        }
      }
    }
  }

  /** Stops timers and closes sessions. Routes stay in the maps: a restarted daemon adopts them. */
  close(): void {
    this.closed = true;
    for (const state of this.networks.values()) {
      this.clock.clearTimeout(state.staleTimer);
      state.staleTimer = undefined;
      const session = state.session;
      state.session = null;
      session?.close();
    }
  }

  // ---- sessions and messages -----------------------------------------------------------------

  /** Handles one payload; returns the Ack to send, and whether to close the session. */
  private handlePayload(state: NetworkState, payload: Buffer): { payload: Buffer | null; close: boolean } {
    let message: UpdateMessage;
    try {
      message = decodeMessage(payload);
    } catch (error) {
      const text = error instanceof ProtocolError ? error.message : errorText(error);
      state.lastError = text;
      this.logger.warn({ network: state.definition.name, err: text }, 'undecodable update message: session closed');
      return { payload: encodeAck({ sequence: 0, ok: false, errorCode: 'ERR_PROTOCOL', errorMessage: text }), close: true };
    }
    const ack = (sequence: number, error?: { code: string; message: string }) => encodeAck(error
      ? { sequence, ok: false, errorCode: error.code, errorMessage: error.message }
      : { sequence, ok: true, errorCode: '', errorMessage: '' });

    if (message.type === 'hello') {
      if (message.version !== PROTOCOL_VERSION) {
        const text = `protocol version ${message.version} is not supported; the host speaks ${PROTOCOL_VERSION}`;
        state.lastError = text;
        return { payload: ack(0, { code: 'ERR_VERSION', message: text }), close: true };
      }
      state.clientName = message.clientName;
      state.helloSeen = true;
      this.beginResync(state);
      return { payload: ack(0), close: false };
    }
    if (message.type === 'ack') return { payload: ack(0, { code: 'ERR_UNEXPECTED', message: 'the host does not take Acks' }), close: false };
    if (!state.helloSeen) return { payload: ack(message.sequence, { code: 'ERR_NO_HELLO', message: 'send Hello first' }), close: false };

    try {
      switch (message.type) {
        case 'route-batch': this.applyRouteBatch(state, message); break;
        case 'neighbour-batch': this.applyNeighbourBatch(state, message); break;
        case 'filter-replace': this.applyFilter(state, message); break;
        case 'end-of-sync': this.endResync(state); break;
      }
    } catch (error) {
      const code = errorCode(error);
      const text = errorText(error);
      if (state.resyncing) state.resyncFailed = true;
      state.lastError = text;
      if (error instanceof QuotaExceededError) state.quotaRejections[error.table]++;
      else if (code === 'ERR_MAP_FULL' || (error instanceof BatchRejectedError && code !== 'ERR_RESYNC_INCOMPLETE')) state.mapWriteFailures++;
      // A router can send refused batches as fast as the channel carries them: one line per interval.
      this.failures.report(`${state.definition.name}:${code}`, { network: state.definition.name, sequence: message.sequence, code, err: text }, `${message.type} refused`);
      return { payload: ack(message.sequence, { code, message: text }), close: false };
    }
    state.lastUpdate = this.clock.now();
    // A resync that makes progress keeps the stale routes (with 0 they wait for EndOfSync).
    if (state.resyncing && this.config.host.staleRouteTimeoutS > 0) this.armStaleTimer(state);
    return { payload: ack(message.sequence), close: false };
  }

  private sessionEnded(state: NetworkState): void {
    state.session = null;
    state.helloSeen = false;
    state.resyncing = false;
    state.disconnectedSince = this.clock.now();
    // Paper IV-B with RFC 4724: the replica keeps forwarding while the router is away.
    this.markAllStale(state);
    const stale = state.tables[4].stale + state.tables[6].stale;
    this.logger.info({ network: state.definition.name, stale, holdS: this.config.host.staleRouteTimeoutS }, 'update session closed; routes kept as stale');
    if (this.config.host.staleRouteTimeoutS === 0) this.trySweep(state, 'graceful restart is off (stale_route_timeout_s = 0)');
    else this.armStaleTimer(state);
  }

  private beginResync(state: NetworkState): void {
    this.markAllStale(state);
    state.resyncing = true;
    state.resyncFailed = false;
    if (this.config.host.staleRouteTimeoutS > 0) this.armStaleTimer(state);
    else {
      this.clock.clearTimeout(state.staleTimer);
      state.staleTimer = undefined;
    }
  }

  private endResync(state: NetworkState): void {
    if (!state.resyncing) return;
    state.resyncing = false;
    if (state.resyncFailed) {
      // Routes of a refused batch are still in the router's FIB: keep them stale rather than
      // sweep them, for as long as the router stays connected (it retries the resync).
      this.clock.clearTimeout(state.staleTimer);
      state.staleTimer = undefined;
      throw new BatchRejectedError('ERR_RESYNC_INCOMPLETE', 'a batch of this resync was refused: stale routes are kept until a complete resync');
    }
    this.sweepStale(state, 'end of resync');
  }

  private markAllStale(state: NetworkState): void {
    state.tables[4].markAllStale();
    state.tables[6].markAllStale();
    for (const neighbour of state.neighbours.values()) neighbour.stale = true;
  }

  private armStaleTimer(state: NetworkState): void {
    this.clock.clearTimeout(state.staleTimer);
    state.staleTimer = this.clock.setTimeout(() => {
      state.staleTimer = undefined;
      // Paper IV-B with RFC 4724: a router that does not come back loses its replica.
      this.trySweep(state, `no complete resync within ${this.config.host.staleRouteTimeoutS} s`);
    }, this.config.host.staleRouteTimeoutS * 1000);
  }

  /** sweepStale for timers and other callers that cannot take an exception (it is logged, and retried). */
  private trySweep(state: NetworkState, reason: string): void {
    try {
      this.sweepStale(state, reason);
    } catch {
      // sweepStale logged it and re-armed the timer.
    }
  }

  /**
   * Deletes every stale route and neighbour: routes that used the neighbours go to the VM,
   * host routes of the neighbours go, and host routes of neighbours inside a withdrawn
   * router route are decided again (a withdrawn connected route takes them along).
   */
  private sweepStale(state: NetworkState, reason: string): void {
    this.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
    const gone = [...state.neighbours.values()].filter((n) => n.stale);
    const op = new Operation((key) => {
      const n = state.neighbours.get(key);
      return n && !n.stale ? n : undefined;
    });
    let withdrawn = 0;
    try {
      this.operate(state, op, () => {
        const addresses = this.neighbourAddresses(state);
        for (const table of [state.tables[4], state.tables[6]]) {
          const track = addresses.has(table.family);
          for (let slot = 0; slot < table.top; slot++) {
            if (!table.isLive(slot) || !(table.bits[slot]! & STALE)) continue;
            const row = table.stage(slot);
            if (track && table.origin[slot] === ORIGIN_ROUTER && this.mayHoldNeighbour(addresses, table, slot)) op.changed[table.family].push(slot);
            table.rows.origin[row] = ORIGIN_FREE;
            withdrawn++;
          }
        }
        for (const n of gone) this.stageDependents(state, n.family, n.key);
        this.stageNeighbourRoutes(state, op, gone);
        if (this.liveAfter(state.tables[4]) + this.liveAfter(state.tables[6]) === 0) op.removeDefaults = [...state.syntheticDefaults];
      }, () => {
        for (const n of gone) this.forgetNeighbour(state, n);
        for (const family of op.removeDefaults) state.syntheticDefaults.delete(family);
        if (state.tables[4].used + state.tables[6].used === 0) state.coverIndex = null;
      });
    } catch (error) {
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 'sweeping stale routes failed; retrying after the hold time');
      this.armStaleTimer(state);
      throw error;
    }
    if (withdrawn > 0) this.logger.info({ network: state.definition.name, withdrawn, reason }, 'stale routes withdrawn');
  }

  private withdrawAll(state: NetworkState, reason: string): void {
    this.markAllStale(state);
    this.trySweep(state, reason);
    this.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
  }

  // ---- validation and staging -------------------------------------------------------------------

  /** Where a router interface is: one of the network's own attachments, or nowhere (with the reason). */
  private placeInterface(network: NetworkDefinition, iface: RouterInterface): { segment: SegmentBinding | null; problem: string } {
    const segment = this.segments.segmentFor(network, iface);
    if (!segment) {
      return {
        segment: null,
        problem: `interface ${describeInterface(iface)} is not on any of network ${network.name}'s segments`
          + ' (list the router\'s data interfaces under `interfaces` in client.yaml)',
      };
    }
    const own = network.attachments.some((a) => a.interface === segment.link && a.vlan === segment.vlan && a.mac.toLowerCase() === segment.routerMac.toLowerCase());
    if (!own) {
      return {
        segment: null,
        problem: `interface ${describeInterface(iface)} maps to link ${segment.link} VLAN ${segment.vlan} MAC ${segment.routerMac},`
          + ` which is not an attachment of network ${network.name}`,
      };
    }
    if (!Number.isInteger(segment.ifindex) || segment.ifindex <= 0 || !Number.isInteger(segment.linkSlot) || segment.linkSlot < 0) {
      return { segment: null, problem: `segment ${segment.link} has no usable ifindex/link slot` };
    }
    return { segment, problem: '' };
  }

  private internInterface(state: NetworkState, iface: RouterInterface): InterfaceEntry {
    return state.interfaces.intern(iface, (i) => this.placeInterface(state.definition, i));
  }

  /** The via of a gateway on an interface; a new one is indexed under the neighbour it needs. */
  private viaFor(state: NetworkState, table: RouteTable, ifaceId: number, gateway: Uint8Array, offset: number): number {
    const entry = state.interfaces.get(ifaceId)!;
    return table.internVia(ifaceId, entry.iface.index, gateway, offset, (via) => {
      const index = state.viasByNeighbour[table.family];
      let set = index.get(via.neighbourKey);
      if (!set) index.set(via.neighbourKey, (set = new Set()));
      set.add(via.id);
      state.interfaces.ref(ifaceId, 1);
    });
  }

  /**
   * Paper IV-B: validates one list of added routes and stages them. Nothing is written here;
   * the first bad entry throws a ValidationError naming it. The hot loop of a full table:
   * typed-array reads, a numeric IPv4 key, one via lookup per route.
   */
  private stageRouteAdds(state: NetworkState, op: Operation, batch: RouteBatch, c: RouteColumns, list: string): void {
    const table = state.tables[c.family];
    const v4 = c.family === 4;
    const size = table.width;
    const max = table.maxLength;
    const { addrs, lengths, kinds, gateways, interfaces } = c;
    const tableSize = batch.interfaces.length;
    table.reserveFor(c.count);
    // Row columns as locals: reserved above, so staging in this loop does not reallocate them.
    const rows = table.rows;
    const { origin: rowOrigin, kind: rowKind, via: rowVia, iface: rowIface, bits: rowBits } = rows;
    const rowRouterLengths = table.rowRouterLengths;
    // Per message: interface table position -> registry id, and gateway -> via (IPv4: a
    // direct-mapped cache in front of the via index, as a batch has few distinct gateways).
    const ifaceIds = new Int32Array(tableSize).fill(-1);
    const viaByGateway = new Map<string, number>();
    const cacheGateway = new Uint32Array(VIA_CACHE_SIZE);
    const cacheRef = new Int32Array(VIA_CACHE_SIZE).fill(-1);
    const cacheVia = new Int32Array(VIA_CACHE_SIZE);
    const cover = state.coverIndex;
    const addresses = this.neighbourAddresses(state);
    const neighbours4 = addresses.v4;
    const track = addresses.has(c.family);
    const changed = op.changed[c.family];
    // Error texts are built only on error: a resync batch holds ~87,000 routes.
    const pathOf = (i: number): string => `routeBatch.${list}[${i}] (${formatPrefixBytes(addrs, lengths[i]!, i * size, c.family)})`;
    const fail = (i: number, message: string): never => {
      throw new ValidationError(pathOf(i), message);
    };
    for (let i = 0; i < c.count; i++) {
      const o = i * size;
      const length = lengths[i]!;
      if (length > max) fail(i, `prefix length ${length} must be 0..${max}`);
      let addr4 = 0;
      if (v4) {
        addr4 = u32At(addrs, o);
        if (length < 32 && (addr4 & (0xffffffff >>> length)) !== 0) fail(i, `host bits are set: ${formatPrefixBytes(addrs, length, o, 4)} is not a prefix`);
      } else if (hostBitsSet(addrs, length, o, 16)) {
        fail(i, `host bits are set: ${formatPrefixBytes(addrs, length, o, 6)} is not a prefix`);
      }
      // IPv4: found or created (pending, staged) with one probe; a created slot is forgotten if the batch is refused.
      let slot = v4 ? table.findOrCreate4(addr4, length) : table.find(addrs, o, length);
      const created = v4 && table.created;
      if (slot >= 0 && !created && table.staged(slot)) fail(i, `${formatPrefixBytes(addrs, length, o, c.family)} appears twice in the batch`);
      const kindByte = kinds[i]!;
      const kind = kindByte & ~KIND_GATEWAY_BIT;
      if (kind >= ROUTE_KINDS.length) fail(i, `unknown route kind ${kindByte}`);
      const hasGateway = (kindByte & KIND_GATEWAY_BIT) !== 0;
      if (hasGateway) {
        if (kind !== KIND_UNICAST) fail(i, `a ${ROUTE_KINDS[kind]} route has no gateway`);
        const unicast = v4 ? gateways[o] !== 0 && gateways[o]! < 224 : unicast6(gateways, o);
        if (!unicast) fail(i, `gateway ${formatAddress(gateways, o, c.family)} is not a unicast address`);
      }
      const ref = interfaces[i]!;
      if (ref !== NO_INTERFACE && ref >= tableSize) fail(i, `interface reference ${ref} is not in the table`);
      let ifaceId = -1;
      let via = -1;
      if (kind === KIND_UNICAST) {
        if (ref === NO_INTERFACE) fail(i, 'a unicast route needs an out-interface');
        ifaceId = ifaceIds[ref]!;
        if (ifaceId < 0) {
          // Paper IV-B: a route may only leave through a segment of its own network.
          const entry = this.internInterface(state, batch.interfaces[ref]!);
          if (!entry.segment) fail(i, entry.problem);
          ifaceId = ifaceIds[ref] = entry.id;
        }
        if (hasGateway && v4) {
          const gateway = u32At(gateways, o);
          const h = Math.imul(gateway ^ (ref << 16), 0x9e3779b1) >>> VIA_CACHE_SHIFT;
          if (cacheRef[h] === ref && cacheGateway[h] === gateway) via = cacheVia[h]!;
          else {
            via = this.viaFor(state, table, ifaceId, gateways, o);
            cacheRef[h] = ref;
            cacheGateway[h] = gateway;
            cacheVia[h] = via;
          }
        } else if (hasGateway) {
          const gatewayKey = `${ref}|${hexOf(gateways, o, 16)}`;
          via = viaByGateway.get(gatewayKey) ?? -1;
          if (via < 0) {
            via = this.viaFor(state, table, ifaceId, gateways, o);
            viaByGateway.set(gatewayKey, via);
          }
        }
      }
      let row: number;
      let evicted: boolean;
      let announcementChanged: boolean;
      if (slot >= 0 && !created) {
        row = table.stage(slot);
        // A replaced evicted route stays evicted; a new route that covers an evicted one is evicted too.
        evicted = (rowBits[row]! & EVICTED) !== 0 || (cover !== null && (v4 ? cover.covers4(addr4, length) : cover.covers6(addrs, o, length)));
        announcementChanged = rowOrigin[row] !== ORIGIN_ROUTER || rowKind[row] !== kind || rowVia[row] !== via || rowIface[row] !== ifaceId;
      } else {
        if (created) row = table.rowOf[slot]!;
        else {
          row = table.create(addrs, o, length);
          slot = rows.slot[row]!;
        }
        evicted = cover !== null && (v4 ? cover.covers4(addr4, length) : cover.covers6(addrs, o, length));
        announcementChanged = true;
      }
      rowOrigin[row] = ORIGIN_ROUTER;
      rowKind[row] = kind;
      rowVia[row] = via;
      rowIface[row] = ifaceId;
      rowBits[row] = evicted ? EVICTED : 0;
      rowRouterLengths[length] = 1;
      // Only a change of a prefix that holds a neighbour can move that neighbour's host route.
      if (announcementChanged && track && (v4 ? containsAny4(neighbours4, addr4, length) : addresses.mayContain6(addrs, o, length))) changed.push(slot);
    }
  }

  private stageRouteDeletes(state: NetworkState, op: Operation, c: PrefixColumns, list: string, absent: Set<string>): void {
    const table = state.tables[c.family];
    const size = table.width;
    const v4 = c.family === 4;
    const addresses = this.neighbourAddresses(state);
    const track = addresses.has(c.family);
    const fail = (i: number, message: (text: string) => string): never => {
      const text = formatPrefixBytes(c.addrs, c.lengths[i]!, i * size, c.family);
      throw new ValidationError(`routeBatch.${list}[${i}] (${text})`, message(text));
    };
    for (let i = 0; i < c.count; i++) {
      const o = i * size;
      const length = c.lengths[i]!;
      const addr4 = v4 ? u32At(c.addrs, o) : 0;
      const hostBits = v4 ? length < 32 && (addr4 & (0xffffffff >>> length)) !== 0 : hostBitsSet(c.addrs, length, o, 16);
      if (hostBits) fail(i, (text) => `host bits are set: ${text} is not a prefix`);
      const slot = v4 ? table.find4(addr4, length) : table.find(c.addrs, o, length);
      if (slot >= 0 && table.staged(slot)) fail(i, (text) => `${text} is both added and deleted, or deleted twice`);
      // Deleting what the router never announced (or a neighbour host route) changes nothing.
      if (slot < 0 || table.origin[slot] === ORIGIN_NEIGHBOUR) {
        const key = prefixKey(c.addrs.subarray(o, o + size), length);
        if (absent.has(key)) fail(i, (text) => `${text} is both added and deleted, or deleted twice`);
        absent.add(key);
        continue;
      }
      const row = table.stage(slot);
      if (track && table.origin[slot] === ORIGIN_ROUTER && this.mayHoldNeighbour(addresses, table, slot)) op.changed[c.family].push(slot);
      table.rows.origin[row] = ORIGIN_FREE;
    }
  }

  /** False when no neighbour address can be inside the slot's prefix. */
  private mayHoldNeighbour(addresses: NeighbourAddresses, table: RouteTable, slot: number): boolean {
    return table.family === 4
      ? containsAny4(addresses.v4, table.addr4[slot]!, table.length[slot]!)
      : addresses.mayContain6(table.addr6, slot * 16, table.length[slot]!);
  }

  /** Stages every entry whose target depends on a neighbour (gateway routes and its host route). */
  private stageDependents(state: NetworkState, family: Family, neighbourKey: string): void {
    const table = state.tables[family];
    for (const viaId of state.viasByNeighbour[family].get(neighbourKey) ?? []) {
      table.slotsOf(viaId, (slot) => {
        if (!table.staged(slot)) table.stage(slot);
      });
    }
  }

  /**
   * Decides the host routes of neighbours again: those of `neighbours`, and those of every
   * neighbour inside a router entry this operation changes.
   */
  private stageNeighbourRoutes(state: NetworkState, op: Operation, neighbours: Iterable<{ family: Family; addr: Buffer }>): void {
    const candidates: Record<Family, Map<string, Buffer>> = { 4: new Map(), 6: new Map() };
    for (const n of neighbours) candidates[n.family].set(n.addr.toString('hex'), n.addr);
    const addresses = this.neighbourAddresses(state);
    for (const family of FAMILIES) {
      const table = state.tables[family];
      const found = candidates[family];
      for (const slot of op.changed[family]) {
        if (family === 4) {
          const low = table.addr4[slot]!;
          const length = table.length[slot]!;
          const high = low + (length === 0 ? 0x100000000 : 2 ** (32 - length)) - 1;
          addresses.inRange4(low, high, (addr) => {
            const bytes = Buffer.allocUnsafe(4);
            bytes.writeUInt32BE(addr, 0);
            found.set(bytes.toString('hex'), bytes);
          });
        } else {
          const low = table.addressOf(slot);
          const high = Buffer.from(low);
          const length = table.length[slot]!;
          for (let byte = length >> 3; byte < 16; byte++) high[byte] = byte === length >> 3 ? high[byte]! | (0xff >> (length & 7)) : 0xff;
          addresses.inRange6(low.toString('hex'), high.toString('hex'), (hex) => found.set(hex, Buffer.from(hex, 'hex')));
        }
      }
      for (const addr of found.values()) this.stageNeighbourRoute(state, op, table, addr);
    }
  }

  /**
   * The host route (/32, /128) of one neighbour address. It exists when the router's own
   * longest match for the address is a connected route (unicast, no gateway) on the interface
   * the neighbour was seen on, that interface is on one of the network's segments, and the
   * MAC is not a virtual router's. The router's own route for the same prefix always wins.
   */
  private stageNeighbourRoute(state: NetworkState, op: Operation, table: RouteTable, addr: Buffer): void {
    // Paper IV-B: for performance packets are forwarded by Dom0; on a connected subnet that takes a next hop per destination.
    const slot = table.find(addr, 0, table.maxLength);
    const current = slot >= 0 ? table.viewOrigin(slot) : ORIGIN_FREE;
    if (current === ORIGIN_ROUTER) return;
    const neighbour = this.hostRouteNeighbour(state, op, table, addr);
    if (neighbour) {
      const row = slot >= 0 ? table.stage(slot) : table.create(addr, 0, table.maxLength);
      const rows = table.rows;
      rows.origin[row] = ORIGIN_NEIGHBOUR;
      rows.kind[row] = KIND_UNICAST;
      rows.via[row] = this.viaFor(state, table, neighbour.ifaceId, addr, 0);
      rows.iface[row] = neighbour.ifaceId;
      // An evicted entry replaced in place stays evicted (memory control decides when it returns).
      rows.bits[row] = (rows.bits[row]! & EVICTED) | (neighbour.stale ? STALE : 0);
    } else if (current === ORIGIN_NEIGHBOUR) {
      table.rows.origin[table.stage(slot)] = ORIGIN_FREE;
    }
  }

  /** The neighbour that should have a host route to `addr`, if any (see stageNeighbourRoute). */
  private hostRouteNeighbour(state: NetworkState, op: Operation, table: RouteTable, addr: Buffer): NeighbourEntry | undefined {
    const match = this.longestRouterMatch(table, addr);
    if (match < 0 || table.viewKind(match) !== KIND_UNICAST || table.viewVia(match) >= 0) return undefined;
    const connected = state.interfaces.get(table.viewIface(match));
    if (!connected?.segment) return undefined;
    const neighbour = op.neighbour(`${connected.iface.index}|${addr.toString('hex')}`);
    if (!neighbour || !state.interfaces.get(neighbour.ifaceId)?.segment) return undefined;
    // Same rule as for gateways: a virtual router's MAC is the VM's traffic to carry.
    if (this.routerMacs.has(neighbour.mac)) return undefined;
    return neighbour;
  }

  /** The router entry (as it will be after this operation) that is the longest match for `addr`, shorter than a host route; -1 if none. */
  private longestRouterMatch(table: RouteTable, addr: Buffer): number {
    const { routerLengths, rowRouterLengths } = table;
    const value = table.family === 4 ? addr.readUInt32BE(0) : 0;
    for (let length = table.maxLength - 1; length >= 0; length--) {
      if (routerLengths[length] === 0 && rowRouterLengths[length] === 0) continue;
      const slot = table.family === 4
        ? table.find4(length === 0 ? 0 : (value & (0xffffffff << (32 - length))) >>> 0, length)
        : table.find(maskedAddress(addr, length), 0, length);
      if (slot >= 0 && table.viewOrigin(slot) === ORIGIN_ROUTER) return slot;
    }
    return -1;
  }

  /** Live entries of a table once the staged rows are applied. */
  private liveAfter(table: RouteTable): number {
    let live = table.used;
    const rows = table.rows;
    for (let r = 0; r < rows.count; r++) {
      const before = table.isLive(rows.slot[r]!);
      const after = rows.origin[r]! >= ORIGIN_ROUTER;
      if (before !== after) live += after ? 1 : -1;
    }
    return live;
  }

  // ---- quotas -------------------------------------------------------------------------------------

  private quota(state: NetworkState, table: QuotaTable): number {
    return this.quotas.get(state.definition.id)?.[table] ?? 0;
  }

  /** Entries a network has in one family's route map, or will have when its evicted routes return. */
  private familyUse(state: NetworkState, family: Family): number {
    return state.tables[family].used + (state.syntheticDefaults.has(family) ? 1 : 0);
  }

  /**
   * Refuses a staged change that would take a family's routes over the quota. A change that
   * does not grow the table passes even over the quota (after the quota was lowered, the
   * router can still withdraw and replace routes).
   */
  private checkRouteQuotas(state: NetworkState): void {
    for (const family of FAMILIES) {
      const table: QuotaTable = family === 4 ? 'routes4' : 'routes6';
      const before = this.familyUse(state, family);
      const after = this.liveAfter(state.tables[family]) + (state.syntheticDefaults.has(family) ? 1 : 0);
      const quota = this.quota(state, table);
      if (after > quota && after > before) throw new QuotaExceededError(state.definition.name, table, quota, after);
    }
  }

  private checkNeighbourQuota(state: NetworkState, touched: ReadonlyMap<string, NeighbourEntry | null>): void {
    const before = state.neighbours.size;
    let after = before;
    for (const [key, entry] of touched) {
      const known = state.neighbours.has(key);
      if (entry && !known) after++;
      else if (!entry && known) after--;
    }
    const quota = this.quota(state, 'neighbours');
    if (after > quota && after > before) throw new QuotaExceededError(state.definition.name, 'neighbours', quota, after);
  }

  // ---- applying -----------------------------------------------------------------------------------

  /** Paper IV-B: one batch, validated whole, then written to this network's maps only; all or nothing. */
  private applyRouteBatch(state: NetworkState, batch: RouteBatch): void {
    const op = new Operation((key) => state.neighbours.get(key));
    this.operate(state, op, () => {
      this.stageRouteAdds(state, op, batch, batch.adds4, 'adds4');
      this.stageRouteAdds(state, op, batch, batch.adds6, 'adds6');
      const absent = new Set<string>();
      this.stageRouteDeletes(state, op, batch.deletes4, 'deletes4', absent);
      this.stageRouteDeletes(state, op, batch.deletes6, 'deletes6', absent);
      this.stageNeighbourRoutes(state, op, []);
      this.checkRouteQuotas(state);
    });
  }

  private applyNeighbourBatch(state: NetworkState, batch: NeighbourBatch): void {
    // key -> the neighbour after this batch, null when deleted.
    const touched = new Map<string, NeighbourEntry | null>();
    const op = new Operation((key) => (touched.has(key) ? touched.get(key) ?? undefined : state.neighbours.get(key)));
    // The entry's address, interface, error path and neighbour key, common to adds and deletes.
    const entryAt = (c: NeighbourKeyColumns, i: number, list: string) => {
      const size = c.family === 4 ? 4 : 16;
      const addr = c.addrs.subarray(i * size, (i + 1) * size);
      const iface = batch.interfaces[c.interfaces[i]!];
      const path = `neighbourBatch.${list}[${i}] (${formatAddress(addr, 0, c.family)})`;
      if (!iface) throw new ValidationError(path, 'interface reference is not in the table');
      return { addr, iface, path, key: `${iface.index}|${hexOf(addr, 0, size)}` };
    };
    const readAdds = (c: NeighbourColumns, list: string): void => {
      for (let i = 0; i < c.count; i++) {
        const { addr, iface, path, key } = entryAt(c, i, list);
        if (!isUnicastAddress(addr)) throw new ValidationError(path, 'is not a unicast address');
        const mac = macFromBytes(c.macs, i * 6);
        if (!isUnicastMac(mac)) throw new ValidationError(path, `MAC ${mac} is not a unicast MAC`);
        if (touched.has(key)) throw new ValidationError(path, 'appears twice in the batch');
        touched.set(key, { key, family: c.family, addr: Buffer.from(addr), ifaceId: this.internInterface(state, iface).id, mac, stale: false });
      }
    };
    const readDeletes = (c: NeighbourKeyColumns, list: string): void => {
      for (let i = 0; i < c.count; i++) {
        const { path, key } = entryAt(c, i, list);
        if (touched.has(key)) throw new ValidationError(path, 'is both added and deleted, or deleted twice');
        touched.set(key, null);
      }
    };
    // Neighbours whose host route is decided again: every one this batch adds, changes or deletes.
    const decide = new Map<string, { family: Family; addr: Buffer }>();
    this.operate(state, op, () => {
      readAdds(batch.adds4, 'adds4');
      readAdds(batch.adds6, 'adds6');
      readDeletes(batch.deletes4, 'deletes4');
      readDeletes(batch.deletes6, 'deletes6');
      this.checkNeighbourQuota(state, touched);
      for (const [key, after] of touched) {
        const before = state.neighbours.get(key);
        const which = after ?? before;
        if (!which) continue;
        decide.set(key, which);
        // Paper IV-B: until the next hop's MAC is known the VM forwards; a new MAC moves every route through it.
        if (before?.mac !== after?.mac) this.stageDependents(state, which.family, key);
      }
      this.stageNeighbourRoutes(state, op, decide.values());
      // Host routes of new neighbours are routes too.
      this.checkRouteQuotas(state);
    }, () => {
      for (const [key, after] of touched) {
        const before = state.neighbours.get(key);
        if (before) this.forgetNeighbour(state, before);
        if (after) {
          state.neighbours.set(key, after);
          state.interfaces.ref(after.ifaceId, 1);
          state.neighbourAddresses = null;
        }
      }
    });
  }

  private forgetNeighbour(state: NetworkState, neighbour: NeighbourEntry): void {
    if (state.neighbours.get(neighbour.key) !== neighbour) return;
    state.neighbours.delete(neighbour.key);
    state.interfaces.ref(neighbour.ifaceId, -1);
    state.neighbourAddresses = null;
  }

  private neighbourAddresses(state: NetworkState): NeighbourAddresses {
    state.neighbourAddresses ??= NeighbourAddresses.of(state.neighbours.values());
    return state.neighbourAddresses;
  }

  // ---- targets, map writes, commit, rollback ---------------------------------------------------------

  /**
   * Runs one change of a network: `stage` fills the tables' rows, then targets are resolved,
   * the maps written and the rows committed (then `afterCommit`). Any failure leaves the
   * table, the maps and the next hops as they were, and throws.
   */
  private operate(state: NetworkState, op: Operation, stage: () => void, afterCommit?: () => void): void {
    const { 4: t4, 6: t6 } = state.tables;
    t4.begin();
    t6.begin();
    try {
      stage();
      this.resolveTargets(state, op);
      this.writeMaps(state, op);
    } catch (error) {
      t4.abort(state.hooks[4]);
      t6.abort(state.hooks[6]);
      state.interfaces.prune();
      this.droppedNexthops.length = 0;
      this.releaseUnused(op.acquired);
      throw error;
    }
    t4.commit(state.hooks[4]);
    t6.commit(state.hooks[6]);
    afterCommit?.();
    state.interfaces.prune();
    // Next hops are freed only once no map entry points at them any more.
    const dropped = this.droppedNexthops.splice(0);
    this.releaseUnused([...dropped, ...op.acquired]);
  }

  /** The target of every staged row: one resolution per via (gateway), not per route. */
  private resolveTargets(state: NetworkState, op: Operation): void {
    for (const table of [state.tables[4], state.tables[6]]) {
      // Columns as locals (nothing below reallocates them): a full table is a million rows.
      const { count, origin: origins, bits: rowBits, kind: kinds, via: vias, slot: slots, target: targets } = table.rows;
      const { viaStamp, viaTarget, viaUnresolved } = table;
      for (let r = 0; r < count; r++) {
        const origin = origins[r]!;
        if (origin === ORIGIN_FREE) {
          targets[r] = TARGET_NONE;
          continue;
        }
        let bits = rowBits[r]! & ~UNRESOLVED;
        let target: number;
        if (bits & EVICTED) target = TARGET_NONE;
        else if (origin === ORIGIN_ADOPTED) target = table.target[slots[r]!]!;
        else {
          switch (kinds[r]) {
            case KIND_LOCAL: target = TARGET_LOCAL; break;
            case KIND_BLACKHOLE: target = TARGET_BLACKHOLE; break;
            case KIND_VIA_VM: target = TARGET_VIA_VM; break;
            default: {
              const via = vias[r]!;
              // Paper II: what the host cannot forward itself goes to the VM, as a route to the VM.
              // A connected route (no gateway) needs a MAC per destination: neighbour host routes
              // carry the ones the router knows; the router resolves the rest.
              if (via < 0) target = TARGET_VIA_VM;
              else {
                if (viaStamp[via] !== table.opStamp) this.resolveVia(state, op, table, via);
                target = viaTarget[via]!;
                if (viaUnresolved[via]) bits |= UNRESOLVED;
              }
            }
          }
        }
        rowBits[r] = bits;
        targets[r] = target;
      }
    }
  }

  private resolveVia(state: NetworkState, op: Operation, table: RouteTable, viaId: number): void {
    const via: Via = table.vias[viaId]!;
    table.viaStamp[viaId] = table.opStamp;
    table.viaUnresolved[viaId] = 0;
    table.viaTarget[viaId] = TARGET_VIA_VM;
    const segment = state.interfaces.get(via.ifaceId)?.segment;
    if (!segment) return;
    const mac = op.neighbour(via.neighbourKey)?.mac;
    // Paper IV-B: until the next hop's MAC is known, the VM forwards.
    if (!mac) {
      table.viaUnresolved[viaId] = 1;
      return;
    }
    const owner = this.routerMacs.get(mac);
    if (owner !== undefined) {
      // A virtual router's MAC is never a fast-path next hop: that traffic is the VM's to send (and pay for).
      this.logger.debug({ network: state.definition.name, mac, owner }, 'next hop is a virtual router: route goes via the VM');
      return;
    }
    const cacheKey = `${segment.ifindex}|${segment.vlan}|${segment.routerMac}|${segment.linkSlot}|${mac}`;
    let nexthopId = op.nexthops.get(cacheKey);
    if (nexthopId === undefined) {
      // Next hops are built by the manager from the segment, never by the router.
      nexthopId = this.dp.nexthop({
        netId: state.definition.id, ifindex: segment.ifindex, linkSlot: segment.linkSlot, vlan: segment.vlan, smac: segment.routerMac, dmac: mac,
      });
      // Pushed first: if the quota refuses it, the operation's abort releases it.
      op.acquired.push(nexthopId);
      if (!state.nexthopIds.has(nexthopId)) {
        const quota = this.quota(state, 'nexthops');
        if (state.nexthopIds.size >= quota) throw new QuotaExceededError(state.definition.name, 'nexthops', quota, state.nexthopIds.size + 1);
        this.holdNexthop(state, nexthopId);
      }
      op.nexthops.set(cacheKey, nexthopId);
    }
    table.viaTarget[viaId] = nexthopId;
  }

  /** The map writes of one family: rows whose target changes, and memory control's default route. */
  private planWrites(op: Operation, table: RouteTable): FamilyWrites {
    const rows = table.rows;
    const { slot: slots, origin: origins, target: rowTargets } = rows;
    const { target: installed } = table;
    // Two passes: count, then fill arrays of the right size.
    let upsertCount = 0;
    let deleteCount = 0;
    for (let r = 0; r < rows.count; r++) {
      const slot = slots[r]!;
      const before = table.isLive(slot) ? installed[slot]! : TARGET_NONE;
      const after = origins[r] === ORIGIN_FREE ? TARGET_NONE : rowTargets[r]!;
      if (after === before) continue;
      if (after !== TARGET_NONE) upsertCount++;
      else deleteCount++;
    }
    const writes: FamilyWrites = {
      upserts: new Int32Array(upsertCount + 1), upsertTargets: new Int32Array(upsertCount + 1), upsertCount: 0,
      deletes: new Int32Array(deleteCount + 1), deleteCount: 0,
    };
    for (let r = 0; r < rows.count; r++) {
      const slot = slots[r]!;
      const before = table.isLive(slot) ? installed[slot]! : TARGET_NONE;
      const after = origins[r] === ORIGIN_FREE ? TARGET_NONE : rowTargets[r]!;
      if (after === before) continue;
      if (after !== TARGET_NONE) {
        writes.upserts[writes.upsertCount] = r;
        writes.upsertTargets[writes.upsertCount++] = after;
      } else {
        writes.deletes[writes.deleteCount++] = r;
      }
    }
    const family = table.family;
    const defaultSlot = table.find(Buffer.alloc(table.width), 0, 0);
    const defaultRow = defaultSlot >= 0 && table.staged(defaultSlot) ? table.rowOf[defaultSlot]! : -1;
    const deletesDefaultRow = defaultRow >= 0 && writes.deletes.subarray(0, writes.deleteCount).includes(defaultRow);
    if (op.addDefaults.includes(family)) {
      writes.upserts[writes.upsertCount] = -1;
      writes.upsertTargets[writes.upsertCount++] = TARGET_VIA_VM;
      // A synthetic default replaces an evicted router default in place: never delete it after writing it.
      if (deletesDefaultRow) {
        const kept = writes.deletes.subarray(0, writes.deleteCount).filter((r) => r !== defaultRow);
        writes.deletes.set(kept);
        writes.deleteCount = kept.length;
      }
    } else if (op.removeDefaults.includes(family)) {
      let finalTarget = TARGET_NONE;
      if (defaultRow >= 0) finalTarget = rows.origin[defaultRow] === ORIGIN_FREE ? TARGET_NONE : rows.target[defaultRow]!;
      else if (defaultSlot >= 0 && table.isLive(defaultSlot)) finalTarget = table.target[defaultSlot]!;
      if (finalTarget === TARGET_NONE && !deletesDefaultRow) writes.deletes[writes.deleteCount++] = -1;
    }
    return writes;
  }

  /** Writes an operation's changes: IPv4 adds as one addRoutes4 batch, IPv6 adds, then deletes. */
  private writeMaps(state: NetworkState, op: Operation): void {
    const netId = state.definition.id;
    const { 4: t4, 6: t6 } = state.tables;
    const w4 = this.planWrites(op, t4);
    const w6 = this.planWrites(op, t6);
    if (w4.upsertCount + w4.deleteCount + w6.upsertCount + w6.deleteCount === 0) return;
    try {
      // Adds before deletes: a more specific route replacing a wider one never leaves a gap.
      if (w4.upsertCount > 0) this.dp.addRoutes4(netId, this.columns4(t4, w4.upserts, w4.upsertTargets, w4.upsertCount));
      if (w6.upsertCount > 0) this.dp.addRoutes(netId, this.specs(t6, w6.upserts, w6.upsertTargets, w6.upsertCount));
      const deletes: Prefix[] = [];
      for (const [table, w] of [[t4, w4], [t6, w6]] as const) for (let k = 0; k < w.deleteCount; k++) deletes.push(this.rowPrefix(table, w.deletes[k]!));
      if (deletes.length > 0) this.dp.deleteRoutes(netId, deletes);
    } catch (error) {
      // The table is not updated yet: it still says what the maps held before this change.
      this.restoreMaps(state, t4, w4);
      this.restoreMaps(state, t6, w6);
      if (error instanceof ValidationError) throw error;
      throw new BatchRejectedError(errorCode(error), `writing network ${state.definition.name}'s maps failed, nothing changed: ${errorText(error)}`, { cause: error });
    }
  }

  /** The prefix of a row (-1: the default route). */
  private rowPrefix(table: RouteTable, row: number): Prefix {
    if (row < 0) return { family: table.family, addr: Buffer.alloc(table.width), length: 0 };
    const slot = table.rows.slot[row]!;
    return { family: table.family, addr: table.addressOf(slot), length: table.length[slot]! };
  }

  /** Data plane columns of IPv4 rows (-1: the default route) and their targets. */
  private columns4(table: RouteTable, rowList: Int32Array, targets: Int32Array, count: number): Route4Columns {
    const columns = { addrs: new Uint32Array(count), lengths: new Uint8Array(count), nexthops: new Uint32Array(count), flags: new Uint32Array(count), count };
    const slots = table.rows.slot;
    for (let i = 0; i < count; i++) {
      const row = rowList[i]!;
      const target = targets[i]!;
      if (row >= 0) {
        const slot = slots[row]!;
        columns.addrs[i] = table.addr4[slot]!;
        columns.lengths[i] = table.length[slot]!;
      }
      if (target > 0) columns.nexthops[i] = target;
      else columns.flags[i] = -target;
    }
    return columns;
  }

  private specs(table: RouteTable, rowList: Int32Array, targets: Int32Array, count: number): RouteSpec[] {
    const out: RouteSpec[] = [];
    for (let i = 0; i < count; i++) out.push({ prefix: this.rowPrefix(table, rowList[i]!), target: targetOf(targets[i]!)! });
    return out;
  }

  /** Puts the map entries of a family's writes back to what the table says they were. */
  private restoreMaps(state: NetworkState, table: RouteTable, writes: FamilyWrites): void {
    const touched = [...writes.upserts.subarray(0, writes.upsertCount), ...writes.deletes.subarray(0, writes.deleteCount)];
    if (touched.length === 0) return;
    const netId = state.definition.id;
    const restore: number[] = [];
    const targets: number[] = [];
    const remove: Prefix[] = [];
    for (const row of touched) {
      let before = TARGET_NONE;
      if (row >= 0) {
        const slot = table.rows.slot[row]!;
        if (table.isLive(slot)) before = table.target[slot]!;
      } else {
        const slot = table.find(Buffer.alloc(table.width), 0, 0);
        if (slot >= 0 && table.isLive(slot) && table.target[slot] !== TARGET_NONE) before = table.target[slot]!;
        else if (state.syntheticDefaults.has(table.family)) before = TARGET_VIA_VM;
      }
      if (before !== TARGET_NONE) {
        restore.push(row);
        targets.push(before);
      } else {
        remove.push(this.rowPrefix(table, row));
      }
    }
    try {
      if (restore.length > 0) {
        const rowList = Int32Array.from(restore);
        const targetList = Int32Array.from(targets);
        if (table.family === 4) this.dp.addRoutes4(netId, this.columns4(table, rowList, targetList, rowList.length));
        else this.dp.addRoutes(netId, this.specs(table, rowList, targetList, rowList.length));
      }
      if (remove.length > 0) this.dp.deleteRoutes(netId, remove);
    } catch (error) {
      // The table still says what should be there: the next resync or sweep repairs the maps.
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 'rolling back a failed map write failed too');
    }
  }

  private holdNexthop(state: NetworkState, id: number): void {
    state.nexthopIds.add(id);
    this.nexthopOwner.set(id, state);
  }

  private nexthopDelta(id: number, delta: 1 | -1): void {
    if (id >= this.nexthopRefs.length) {
      let size = this.nexthopRefs.length;
      while (size <= id) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.nexthopRefs);
      this.nexthopRefs = grown;
    }
    const left = (this.nexthopRefs[id] = this.nexthopRefs[id]! + delta);
    if (left === 0 && delta < 0) this.droppedNexthops.push(id);
  }

  private releaseUnused(ids: readonly number[]): void {
    for (const id of new Set(ids)) {
      if ((this.nexthopRefs[id] ?? 0) > 0) continue;
      try {
        this.dp.releaseNexthop(id);
        const owner = this.nexthopOwner.get(id);
        owner?.nexthopIds.delete(id);
        this.nexthopOwner.delete(id);
      } catch (error) {
        this.logger.warn({ nexthop: id, err: errorText(error) }, 'releasing a next hop failed');
      }
    }
  }

  /** Installed entries, most specific first (then IPv4 before IPv6, then by address): memory control's order. */
  private evictionOrder(state: NetworkState): { families: Uint8Array; slots: Int32Array } {
    const t4 = state.tables[4];
    const t6 = state.tables[6];
    // IPv4 as one sortable number per route: host bits, then address.
    const keys4: number[] = [];
    for (let slot = 0; slot < t4.top; slot++) {
      if (t4.isLive(slot) && t4.target[slot] !== TARGET_NONE) keys4.push((32 - t4.length[slot]!) * 0x100000000 + t4.addr4[slot]!);
    }
    const sorted4 = Float64Array.from(keys4).sort();
    const slots6: number[] = [];
    for (let slot = 0; slot < t6.top; slot++) if (t6.isLive(slot) && t6.target[slot] !== TARGET_NONE) slots6.push(slot);
    const hex6 = new Map(slots6.map((s) => [s, hexOf(t6.addr6, s * 16, 16)]));
    slots6.sort((a, b) => (t6.length[b]! - t6.length[a]!) || (hex6.get(a)! < hex6.get(b)! ? -1 : 1));
    const families = new Uint8Array(sorted4.length + slots6.length);
    const slots = new Int32Array(families.length);
    let i4 = 0;
    let i6 = 0;
    for (let k = 0; k < families.length; k++) {
      const hostBits4 = i4 < sorted4.length ? Math.floor(sorted4[i4]! / 0x100000000) : Infinity;
      const hostBits6 = i6 < slots6.length ? 128 - t6.length[slots6[i6]!]! : Infinity;
      if (hostBits4 <= hostBits6) {
        const key = sorted4[i4++]!;
        const hostBits = Math.floor(key / 0x100000000);
        families[k] = 4;
        slots[k] = t4.find4(key - hostBits * 0x100000000, 32 - hostBits);
      } else {
        families[k] = 6;
        slots[k] = slots6[i6++]!;
      }
    }
    return { families, slots };
  }

  private evictedIndex(state: NetworkState): CoverIndex {
    const builder = new CoverIndexBuilder();
    const t4 = state.tables[4];
    const t6 = state.tables[6];
    for (let slot = 0; slot < t4.top; slot++) if (t4.isLive(slot) && t4.bits[slot]! & EVICTED) builder.add4(t4.addr4[slot]!, t4.length[slot]!);
    for (let slot = 0; slot < t6.top; slot++) if (t6.isLive(slot) && t6.bits[slot]! & EVICTED) builder.add6(t6.addr6, slot * 16, t6.length[slot]!);
    return builder.build();
  }

  /** After a configuration change: every interface placed again, every target and neighbour host route decided again. */
  private reresolve(state: NetworkState): void {
    const lost = state.interfaces.replace((iface) => this.placeInterface(state.definition, iface));
    for (const entry of lost) {
      this.logger.warn({ network: state.definition.name, iface: entry.iface.name, err: entry.problem }, 'routes out of this interface lost their segment: they go via the VM');
    }
    const op = new Operation((key) => state.neighbours.get(key));
    try {
      this.operate(state, op, () => {
        for (const table of [state.tables[4], state.tables[6]]) {
          for (let slot = 0; slot < table.top; slot++) {
            const origin = table.origin[slot]!;
            if (origin === ORIGIN_ROUTER || origin === ORIGIN_NEIGHBOUR) table.stage(slot);
          }
        }
        this.stageNeighbourRoutes(state, op, state.neighbours.values());
      });
    } catch (error) {
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 're-resolving routes after a configuration change failed');
    }
  }

  // ---- setup -----------------------------------------------------------------------------------------

  private newState(definition: NetworkDefinition): NetworkState {
    const interfaces = new InterfaceRegistry();
    const viasByNeighbour: Record<Family, Map<string, Set<number>>> = { 4: new Map(), 6: new Map() };
    const hooks = (family: Family): CommitHooks => ({
      nexthopDelta: (id, delta) => this.nexthopDelta(id, delta),
      ifaceDelta: (id, delta) => interfaces.ref(id, delta),
      viaReleased: (via) => {
        const set = viasByNeighbour[family].get(via.neighbourKey);
        set?.delete(via.id);
        if (set?.size === 0) viasByNeighbour[family].delete(via.neighbourKey);
        interfaces.ref(via.ifaceId, -1);
      },
    });
    return {
      definition, tables: { 4: new RouteTable(4), 6: new RouteTable(6) }, hooks: { 4: hooks(4), 6: hooks(6) }, interfaces,
      neighbours: new Map(), neighbourAddresses: null, viasByNeighbour, syntheticDefaults: new Set(), coverIndex: null,
      filterRules: null, session: null, clientName: null, helloSeen: false, resyncing: false, resyncFailed: false,
      connectedSince: null, disconnectedSince: null, lastUpdate: null, lastError: null, staleTimer: undefined,
      nexthopIds: new Set(), quotaRejections: { routes4: 0, routes6: 0, nexthops: 0, neighbours: 0, filterRules: 0 }, mapWriteFailures: 0,
    };
  }

  private indexRouterMacs(): void {
    this.routerMacs = new Map();
    for (const network of this.config.networks) for (const a of network.attachments) this.routerMacs.set(a.mac.toLowerCase(), network.name);
  }

  /** After a host daemon restart: the pinned maps are the replica; take them over as stale. */
  private adopt(state: NetworkState): void {
    let listed;
    try {
      listed = this.dp.listRoutes(state.definition.id);
    } catch (error) {
      this.logger.warn({ network: state.definition.name, err: errorText(error) }, 'cannot read installed routes');
      return;
    }
    const { 4: t4, 6: t6 } = state.tables;
    t4.begin();
    t6.begin();
    for (const route of listed) {
      const p = parsePrefixText(route.prefix, 'listRoutes');
      const table = state.tables[p.family];
      if (table.find(p.addr, 0, p.length) >= 0) continue;
      const row = table.create(p.addr, 0, p.length);
      table.rows.origin[row] = ORIGIN_ADOPTED;
      table.rows.bits[row] = STALE;
      table.rows.target[row] = codeOf(route.target);
      if (route.target.kind === 'nexthop') this.holdNexthop(state, route.target.nexthopId);
    }
    // Nothing to write: the maps already hold these (their next hops are re-used by identity).
    t4.commit(state.hooks[4]);
    t6.commit(state.hooks[6]);
    const adopted = t4.used + t6.used;
    if (adopted > 0) {
      this.logger.info({ network: state.definition.name, routes: adopted }, 'adopted installed routes as stale until the router resyncs');
      state.disconnectedSince = this.clock.now();
      if (this.config.host.staleRouteTimeoutS === 0) this.trySweep(state, 'graceful restart is off');
      else this.armStaleTimer(state);
    }
  }

  private state(network: number | string): NetworkState {
    const state = typeof network === 'number' ? this.networks.get(network) : [...this.networks.values()].find((s) => s.definition.name === network);
    if (!state) throw new XnetmonError('ERR_UNKNOWN_NETWORK', `unknown network ${network}`);
    return state;
  }

  private counts(state: NetworkState): RouteCounts {
    const { 4: t4, 6: t6 } = state.tables;
    return {
      netId: state.definition.id, network: state.definition.name,
      installed: t4.installed + t6.installed + state.syntheticDefaults.size,
      routes: t4.used + t6.used, stale: t4.stale + t6.stale, evicted: t4.evicted + t6.evicted, unresolved: t4.unresolved + t6.unresolved,
      neighbours: state.neighbours.size, neighbourRoutes: t4.neighbourRoutes + t6.neighbourRoutes,
    };
  }

  // ---- filters ---------------------------------------------------------------------------------------

  /** Paper IV-B: the router's filter goes to its own network's filter slots only, with the network's default rule last. */
  private applyFilter(state: NetworkState, message: FilterReplace): void {
    const rules: FilterRuleSpec[] = message.rules.map((rule, i) => {
      const path = `filterReplace.rules[${i}]${rule.handle ? ` (handle ${rule.handle})` : ''}`;
      const prefix = (text: string | null, field: string): string | undefined => {
        if (text === null) return undefined;
        const p = parsePrefixText(text, `${path}.${field}`);
        if (p.family !== rule.family) throw new ValidationError(`${path}.${field}`, `${text} is not IPv${rule.family}`);
        if (hostBitsSet(p.addr, p.length)) throw new ValidationError(`${path}.${field}`, `host bits are set in ${text}`);
        return text;
      };
      const ports = (range: readonly [number, number] | null, field: string): [number, number] | undefined => {
        if (range === null) return undefined;
        if (!(range[0] <= range[1])) throw new ValidationError(`${path}.${field}`, `port range ${range[0]}-${range[1]} is empty`);
        if (rule.proto !== 6 && rule.proto !== 17) throw new ValidationError(`${path}.${field}`, 'ports need protocol tcp (6) or udp (17)');
        return [range[0], range[1]];
      };
      const spec: FilterRuleSpec = { family: rule.family, action: rule.action };
      if (rule.proto !== 0) spec.proto = rule.proto;
      const src = prefix(rule.src, 'src');
      const dst = prefix(rule.dst, 'dst');
      const sport = ports(rule.sport, 'sport');
      const dport = ports(rule.dport, 'dport');
      if (src !== undefined) spec.src = src;
      if (dst !== undefined) spec.dst = dst;
      if (sport) spec.sport = sport;
      if (dport) spec.dport = dport;
      return spec;
    });
    // The filter slots per network are fixed by the map layout: reported as a quota like the others.
    const slots = rules.length + (state.definition.filterDefault === 'drop' ? 2 : 0);
    if (slots > LAYOUT_LIMITS.filterRules) {
      throw new QuotaExceededError(state.definition.name, 'filterRules', LAYOUT_LIMITS.filterRules, slots);
    }
    this.writeFilter(state, rules);
    state.filterRules = rules;
  }

  private writeFilter(state: NetworkState, rules: readonly FilterRuleSpec[]): void {
    // No rule matching means accept in the data plane: only a drop default needs rules.
    const defaults: FilterRuleSpec[] = state.definition.filterDefault === 'drop'
      ? [{ family: 4, action: 'drop' }, { family: 6, action: 'drop' }]
      : [];
    try {
      this.dp.setFilter(state.definition.id, [...rules, ...defaults]);
    } catch (error) {
      if (error instanceof ValidationError) throw new ValidationError(`filterReplace.${error.path}`, error.message.slice(error.path.length + 2));
      throw error;
    }
  }
}
