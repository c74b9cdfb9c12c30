// The data plane manager (host side). Paper IV-B: the XNetMon server maps the forwarding
// table and packet filter built in each DomU to Dom0, into the tables of that DomU's
// network only, and adapts filter rules so that they cannot touch other networks' traffic.
//
// One UpdateManager serves every network. For each it keeps the authoritative route table
// (what the router said, and what the maps hold for it), so that a failed kernel write is
// rolled back, evicted routes can be restored, and a restart of either side needs no flush:
// routes go stale and are swept after the router's full resync (RFC 4724 style).
//
// Imports from the data plane are types only: the client imports this module's index for
// the protocol and must not load the BPF loader inside a virtual router.
import type { FilterRuleSpec, RouteSpec, RouteTarget, DataPlane } from '../dataplane/index.js';
import type { NetworkDefinition, XnetmonConfig } from '../config/index.js';
import { ValidationError, XnetmonError } from '../errors/index.js';
import { CoverIndex } from './cover.js';
import {
  addressBytesLength, formatAddress, formatPrefixBytes, hostBitsSet, isUnicastAddress, isUnicastMac, macFromBytes, maskedAddress,
  maxPrefixLength, parsePrefixText, prefixKey, type Family,
} from './ip.js';
import {
  encodeAck, decodeMessage, KIND_GATEWAY_BIT, NO_INTERFACE, PROTOCOL_VERSION, ProtocolError, ROUTE_KINDS,
  type FilterReplace, type NeighbourBatch, type RouteBatch, type RouteColumns, type PrefixColumns, type RouteKind, type RouterInterface,
  type NeighbourColumns, type NeighbourKeyColumns, type UpdateMessage,
} from './protocol.js';
import type { SegmentBinding, SegmentMap } from './segments.js';
import { silentLogger, systemClock, type Clock, type UpdateLogger, type UpdateSession } from './transport.js';

/** The part of DataPlane the manager writes through (tests may pass a fake with the same behaviour). */
export type RouteWriter = Pick<DataPlane, 'nexthop' | 'releaseNexthop' | 'addRoutes' | 'deleteRoutes' | 'listRoutes' | 'setFilter'>;

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
}

/** Per-network route counts: `installed` is the network's use of the memory resource. */
export interface RouteCounts {
  readonly netId: number;
  readonly network: string;
  /** Entries in the data plane maps, including defaults added by memory control. */
  readonly installed: number;
  /** Routes the router announced (installed or evicted). */
  readonly routes: number;
  readonly stale: number;
  readonly evicted: number;
  /** Unicast routes sent to the VM because their next hop's MAC is not known yet. */
  readonly unresolved: number;
  readonly neighbours: number;
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

// ---- internal state ---------------------------------------------------------------------

/** What the router said about one prefix. */
interface AnnouncedRoute {
  readonly kind: RouteKind;
  readonly gateway: Buffer | null;
  readonly iface: RouterInterface | null;
  /** Where unicast routes leave; null for other kinds and connected routes. */
  readonly segment: SegmentBinding | null;
  /** Key of the neighbour (gateway on the interface) whose MAC a unicast route needs; null if none. */
  readonly dependency: string | null;
}

interface RouteEntry {
  readonly key: string;
  readonly family: Family;
  readonly addr: Buffer;
  readonly length: number;
  /** Null for a route adopted from the maps after a host restart (its origin is unknown). */
  readonly announced: AnnouncedRoute | null;
  /** What the maps hold for this prefix; null when it is not in the maps (evicted). */
  readonly installed: RouteTarget | null;
  readonly evicted: boolean;
  /** A unicast route waiting, via the VM, for its next hop's MAC. */
  readonly unresolved: boolean;
  stale: boolean;
}

interface NeighbourEntry {
  readonly mac: string;
  stale: boolean;
}

interface NetworkState {
  definition: NetworkDefinition;
  readonly routes: Map<string, RouteEntry>;
  /** key "ifindex|hex address" -> MAC. */
  readonly neighbours: Map<string, NeighbourEntry>;
  /** neighbour key -> keys of routes whose gateway it is. */
  readonly dependents: Map<string, Set<string>>;
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
}

const VIA_VM: RouteTarget = { kind: 'via-vm' };
const LOCAL: RouteTarget = { kind: 'local' };
const BLACKHOLE: RouteTarget = { kind: 'blackhole' };

function sameTarget(a: RouteTarget | null, b: RouteTarget | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind !== b.kind) return false;
  return a.kind !== 'nexthop' || a.nexthopId === (b as { nexthopId: number }).nexthopId;
}

function nexthopOf(target: RouteTarget | null): number | undefined {
  return target?.kind === 'nexthop' ? target.nexthopId : undefined;
}

/** The prefix back from a prefixKey ("0a090000/16"). */
function prefixOfKey(key: string): { family: Family; addr: Buffer; length: number } {
  const slash = key.indexOf('/');
  return { family: slash === 8 ? 4 : 6, addr: Buffer.from(key.slice(0, slash), 'hex'), length: Number(key.slice(slash + 1)) };
}

function neighbourKey(ifindex: number, addr: Uint8Array): string {
  return `${ifindex}|${Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString('hex')}`;
}

/** The neighbour a route's target depends on (its gateway on its interface), if any. */
function dependencyOf(entry: RouteEntry): string | undefined {
  const a = entry.announced;
  return a?.segment && a.dependency !== null ? a.dependency : undefined;
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

/** Map writes of one change, prepared before anything is written. */
interface WritePlan {
  readonly upserts: Map<string, RouteSpec>;
  readonly deletes: Map<string, { family: Family; addr: Buffer; length: number }>;
}

// ---- the manager --------------------------------------------------------------------------

export class UpdateManager {
  private readonly dp: RouteWriter;
  private readonly logger: UpdateLogger;
  private readonly clock: Clock;
  private config: XnetmonConfig;
  private segments: SegmentMap;
  private readonly networks = new Map<number, NetworkState>();
  /** How many installed routes use each next hop: released at zero. */
  private readonly nexthopRefs = new Map<number, number>();
  /** Every virtual router MAC on this host: never a next hop of the fast path. */
  private routerMacs = new Map<string, string>();
  private closed = false;

  constructor(options: UpdateManagerOptions) {
    this.dp = options.dataPlane;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.config = options.config;
    this.segments = options.segments;
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

  /** Entries a network has in the maps: the controller's memory resource (paper IV-A). */
  routeCount(network: number | string): number {
    return this.counts(this.state(network)).installed;
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
  routes(network: number | string): { prefix: string; target: RouteTarget | null; stale: boolean; evicted: boolean }[] {
    const state = this.state(network);
    return [...state.routes.values()].map((e) => ({ prefix: formatPrefixBytes(e.addr, e.length, 0, e.family), target: e.installed, stale: e.stale, evicted: e.evicted }));
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
    const candidates = [...state.routes.values()].filter((e) => e.installed !== null);
    const wanted = Math.ceil(fraction * candidates.length);
    if (wanted === 0) return 0;
    const hostBits = (e: RouteEntry): number => maxPrefixLength(e.family) - e.length;
    candidates.sort((a, b) => hostBits(a) - hostBits(b) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const lengths: Record<Family, number[]> = { 4: [], 6: [] };
    for (const family of [4, 6] as const) {
      lengths[family] = [...new Set(candidates.filter((e) => e.family === family).map((e) => e.length))].sort((a, b) => b - a);
    }
    const chosen = new Map<string, RouteEntry>();
    for (const entry of candidates) {
      if (chosen.size >= wanted) break;
      if (chosen.has(entry.key)) continue;
      chosen.set(entry.key, entry);
      // Every installed route that covers this one goes too.
      for (const length of lengths[entry.family]) {
        if (length >= entry.length) continue;
        const key = prefixKey(maskedAddress(entry.addr, length), length);
        const cover = state.routes.get(key);
        if (cover && cover.installed !== null) chosen.set(key, cover);
      }
    }
    const staged = new Map<string, RouteEntry | null>();
    for (const entry of chosen.values()) {
      // A route adopted after a host restart has no announcement to restore from: it is dropped,
      // and comes back (evicted or not) with the router's resync.
      staged.set(entry.key, entry.announced ? { ...entry, installed: null, evicted: true, unresolved: false } : null);
    }
    const families = new Set([...chosen.values()].map((e) => e.family));
    const addDefaults = [...families].filter((f) => !state.syntheticDefaults.has(f));
    this.commit(state, staged, [], { addDefaults, removeDefaults: [] });
    for (const family of addDefaults) state.syntheticDefaults.add(family);
    state.coverIndex = new CoverIndex([...state.routes.values()].filter((e) => e.evicted));
    this.logger.info({ network: state.definition.name, evicted: chosen.size, fraction }, 'routes evicted for memory control; a default route now goes to the VM');
    return chosen.size;
  }

  /** Puts a network's evicted routes back into the maps and removes memory control's default routes. */
  restoreRoutes(network: number | string): number {
    const state = this.state(network);
    const evicted = [...state.routes.values()].filter((e) => e.evicted);
    const staged = new Map<string, RouteEntry | null>();
    const acquired: number[] = [];
    const resolve = this.resolver(state, acquired);
    for (const entry of evicted) staged.set(entry.key, this.withTarget({ ...entry, evicted: false }, resolve, null));
    const removeDefaults = [...state.syntheticDefaults];
    this.commit(state, staged, acquired, { addDefaults: [], removeDefaults });
    state.syntheticDefaults.clear();
    state.coverIndex = null;
    this.logger.info({ network: state.definition.name, restored: evicted.length }, 'evicted routes restored');
    return evicted.length;
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
      if (state.filterRules) this.writeFilter(state, state.filterRules);
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
      this.logger.warn({ network: state.definition.name, sequence: message.sequence, code, err: text }, `${message.type} refused`);
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
    this.logger.info({ network: state.definition.name, stale: state.routes.size, holdS: this.config.host.staleRouteTimeoutS }, 'update session closed; routes kept as stale');
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
    for (const entry of state.routes.values()) entry.stale = true;
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

  /** Deletes every stale route and neighbour (routes that used the neighbours go to the VM). */
  private sweepStale(state: NetworkState, reason: string): void {
    this.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
    const neighbours = new Map([...state.neighbours].filter(([, n]) => !n.stale));
    const staged = new Map<string, RouteEntry | null>();
    for (const entry of state.routes.values()) if (entry.stale) staged.set(entry.key, null);
    const acquired: number[] = [];
    const resolve = this.resolver(state, acquired, neighbours);
    for (const [key, n] of state.neighbours) {
      if (!n.stale) continue;
      for (const routeKey of state.dependents.get(key) ?? []) {
        const entry = state.routes.get(routeKey);
        if (entry && !staged.has(routeKey)) staged.set(routeKey, this.withTarget({ ...entry }, resolve, state.coverIndex));
      }
    }
    const withdrawn = [...staged.values()].filter((e) => e === null).length;
    const removeDefaults = state.routes.size === withdrawn ? [...state.syntheticDefaults] : [];
    try {
      this.commit(state, staged, acquired, { addDefaults: [], removeDefaults });
    } catch (error) {
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 'sweeping stale routes failed; retrying after the hold time');
      this.armStaleTimer(state);
      throw error;
    }
    for (const family of removeDefaults) state.syntheticDefaults.delete(family);
    if (state.routes.size === 0) state.coverIndex = null;
    state.neighbours.clear();
    for (const [key, n] of neighbours) state.neighbours.set(key, n);
    if (withdrawn > 0) this.logger.info({ network: state.definition.name, withdrawn, reason }, 'stale routes withdrawn');
  }

  private withdrawAll(state: NetworkState, reason: string): void {
    this.markAllStale(state);
    this.trySweep(state, reason);
    this.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
  }

  // ---- validation -------------------------------------------------------------------------------

  private network(state: NetworkState): NetworkDefinition {
    return state.definition;
  }

  /** The segment of a unicast route's interface; refuses anything not one of this network's attachments. */
  private segmentOf(state: NetworkState, iface: RouterInterface, path: string): SegmentBinding {
    const network = this.network(state);
    const segment = this.segments.segmentFor(network, iface);
    if (!segment) {
      throw new ValidationError(path, `interface ${describeInterface(iface)} is not on any of network ${network.name}'s segments`
        + ' (list the router\'s data interfaces under `interfaces` in client.yaml)');
    }
    const own = network.attachments.some((a) => a.interface === segment.link && a.vlan === segment.vlan && a.mac.toLowerCase() === segment.routerMac.toLowerCase());
    if (!own) {
      throw new ValidationError(path, `interface ${describeInterface(iface)} maps to link ${segment.link} VLAN ${segment.vlan} MAC ${segment.routerMac},`
        + ` which is not an attachment of network ${network.name}`);
    }
    if (!Number.isInteger(segment.ifindex) || segment.ifindex <= 0 || !Number.isInteger(segment.linkSlot) || segment.linkSlot < 0) {
      throw new ValidationError(path, `segment ${segment.link} has no usable ifindex/link slot`);
    }
    return segment;
  }

  private parseRoutes(state: NetworkState, batch: RouteBatch, c: RouteColumns, list: string, seen: Set<string>): RouteEntry[] {
    const size = addressBytesLength(c.family);
    const out: RouteEntry[] = [];
    const segmentCache = new Map<number, SegmentBinding>();
    for (let i = 0; i < c.count; i++) {
      const length = c.lengths[i]!;
      // Error paths are built only on error: a resync batch holds ~87,000 routes.
      const prefixText = (): string => formatPrefixBytes(c.addrs, length, i * size, c.family);
      const fail = (message: string): never => {
        throw new ValidationError(`routeBatch.${list}[${i}] (${prefixText()})`, message);
      };
      if (length > maxPrefixLength(c.family)) fail(`prefix length ${length} must be 0..${maxPrefixLength(c.family)}`);
      if (hostBitsSet(c.addrs, length, i * size, size)) fail(`host bits are set: ${prefixText()} is not a prefix`);
      const addr = Buffer.from(c.addrs.subarray(i * size, (i + 1) * size));
      const key = prefixKey(addr, length);
      if (seen.has(key)) fail(`${prefixText()} appears twice in the batch`);
      seen.add(key);
      const kindByte = c.kinds[i]!;
      const kind = ROUTE_KINDS[kindByte & ~KIND_GATEWAY_BIT];
      if (!kind) return fail(`unknown route kind ${kindByte}`);
      let gateway: Buffer | null = null;
      if (kindByte & KIND_GATEWAY_BIT) {
        gateway = Buffer.from(c.gateways.subarray(i * size, (i + 1) * size));
        if (kind !== 'unicast') fail(`a ${kind} route has no gateway`);
        if (!isUnicastAddress(gateway)) fail(`gateway ${formatAddress(gateway)} is not a unicast address`);
      }
      const ref = c.interfaces[i]!;
      const iface = ref === NO_INTERFACE ? null : batch.interfaces[ref] ?? null;
      if (ref !== NO_INTERFACE && !iface) fail(`interface reference ${ref} is not in the table`);
      let segment: SegmentBinding | null = null;
      if (kind === 'unicast') {
        if (!iface) return fail('a unicast route needs an out-interface');
        // Paper IV-B: a route may only leave through a segment of its own network.
        segment = segmentCache.get(ref) ?? this.segmentOf(state, iface, `routeBatch.${list}[${i}] (${prefixText()})`);
        segmentCache.set(ref, segment);
      }
      out.push({
        key, family: c.family, addr, length,
        announced: { kind, gateway, iface, segment, dependency: kind === 'unicast' && gateway && iface ? neighbourKey(iface.index, gateway) : null },
        installed: null, evicted: false, unresolved: false, stale: false,
      });
    }
    return out;
  }

  private parseDeletes(c: PrefixColumns, list: string, seen: Set<string>): { key: string; text: string }[] {
    const size = addressBytesLength(c.family);
    const out: { key: string; text: string }[] = [];
    for (let i = 0; i < c.count; i++) {
      const length = c.lengths[i]!;
      const text = formatPrefixBytes(c.addrs, length, i * size, c.family);
      const path = `routeBatch.${list}[${i}] (${text})`;
      if (hostBitsSet(c.addrs, length, i * size, size)) throw new ValidationError(path, `host bits are set: ${text} is not a prefix`);
      const key = prefixKey(c.addrs.subarray(i * size, (i + 1) * size), length);
      if (seen.has(key)) throw new ValidationError(path, `${text} is both added and deleted, or deleted twice`);
      seen.add(key);
      out.push({ key, text });
    }
    return out;
  }

  // ---- applying -----------------------------------------------------------------------------------

  /** Paper IV-B: one batch, validated whole, then written to this network's maps only; all or nothing. */
  private applyRouteBatch(state: NetworkState, batch: RouteBatch): void {
    const seen = new Set<string>();
    const adds = [...this.parseRoutes(state, batch, batch.adds4, 'adds4', seen), ...this.parseRoutes(state, batch, batch.adds6, 'adds6', seen)];
    const deletes = [...this.parseDeletes(batch.deletes4, 'deletes4', seen), ...this.parseDeletes(batch.deletes6, 'deletes6', seen)];
    const staged = new Map<string, RouteEntry | null>();
    const acquired: number[] = [];
    const resolve = this.resolver(state, acquired);
    try {
      for (const entry of adds) {
        const before = state.routes.get(entry.key);
        // A replaced evicted route stays evicted; a new route that covers an evicted one is evicted too.
        const evicted = before?.evicted === true || (state.coverIndex?.coversAny(entry.family, entry.addr, entry.length) ?? false);
        staged.set(entry.key, this.withTarget({ ...entry, evicted }, resolve, null));
      }
    } catch (error) {
      this.releaseUnused(acquired);
      throw error;
    }
    for (const d of deletes) if (state.routes.has(d.key)) staged.set(d.key, null);
    this.commit(state, staged, acquired, { addDefaults: [], removeDefaults: [] });
  }

  private applyNeighbourBatch(state: NetworkState, batch: NeighbourBatch): void {
    const next = new Map(state.neighbours);
    const touched = new Set<string>();
    const readAdds = (c: NeighbourColumns, list: string): void => {
      const size = addressBytesLength(c.family);
      for (let i = 0; i < c.count; i++) {
        const addr = c.addrs.subarray(i * size, (i + 1) * size);
        const iface = batch.interfaces[c.interfaces[i]!];
        const path = `neighbourBatch.${list}[${i}] (${formatAddress(addr, 0, c.family)})`;
        if (!iface) throw new ValidationError(path, 'interface reference is not in the table');
        if (!isUnicastAddress(addr)) throw new ValidationError(path, 'is not a unicast address');
        const mac = macFromBytes(c.macs, i * 6);
        if (!isUnicastMac(mac)) throw new ValidationError(path, `MAC ${mac} is not a unicast MAC`);
        const key = neighbourKey(iface.index, addr);
        if (touched.has(key)) throw new ValidationError(path, 'appears twice in the batch');
        touched.add(key);
        next.set(key, { mac, stale: false });
      }
    };
    const readDeletes = (c: NeighbourKeyColumns, list: string): void => {
      const size = addressBytesLength(c.family);
      for (let i = 0; i < c.count; i++) {
        const addr = c.addrs.subarray(i * size, (i + 1) * size);
        const iface = batch.interfaces[c.interfaces[i]!];
        const path = `neighbourBatch.${list}[${i}] (${formatAddress(addr, 0, c.family)})`;
        if (!iface) throw new ValidationError(path, 'interface reference is not in the table');
        const key = neighbourKey(iface.index, addr);
        if (touched.has(key)) throw new ValidationError(path, 'is both added and deleted, or deleted twice');
        touched.add(key);
        next.delete(key);
      }
    };
    readAdds(batch.adds4, 'adds4');
    readAdds(batch.adds6, 'adds6');
    readDeletes(batch.deletes4, 'deletes4');
    readDeletes(batch.deletes6, 'deletes6');

    const staged = new Map<string, RouteEntry | null>();
    const acquired: number[] = [];
    const resolve = this.resolver(state, acquired, next);
    try {
      for (const key of touched) {
        const before = state.neighbours.get(key);
        const after = next.get(key);
        if (before?.mac === after?.mac) continue;
        for (const routeKey of state.dependents.get(key) ?? []) {
          const entry = state.routes.get(routeKey);
          if (entry) staged.set(routeKey, this.withTarget({ ...entry }, resolve, null));
        }
      }
    } catch (error) {
      this.releaseUnused(acquired);
      throw error;
    }
    this.commit(state, staged, acquired, { addDefaults: [], removeDefaults: [] });
    state.neighbours.clear();
    for (const [key, n] of next) state.neighbours.set(key, n);
  }

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

  // ---- targets, map writes, rollback ---------------------------------------------------------------

  /** Resolves route targets against a neighbour table, creating next hops (recorded in `acquired`). */
  private resolver(state: NetworkState, acquired: number[], neighbours: Map<string, NeighbourEntry> = state.neighbours) {
    const cache = new Map<string, RouteTarget>();
    return (announced: AnnouncedRoute): { target: RouteTarget; unresolved: boolean } => {
      switch (announced.kind) {
        case 'local': return { target: LOCAL, unresolved: false };
        case 'blackhole': return { target: BLACKHOLE, unresolved: false };
        case 'via-vm': return { target: VIA_VM, unresolved: false };
        case 'unicast': break;
      }
      // Paper II: what the host cannot forward itself goes to the VM, as a route to the VM.
      // A connected route (no gateway) needs a MAC per destination: the router resolves those.
      const { dependency, segment } = announced;
      if (dependency === null || !segment) return { target: VIA_VM, unresolved: false };
      const mac = neighbours.get(dependency)?.mac;
      // Paper IV-B: until the next hop's MAC is known, the VM forwards.
      if (!mac) return { target: VIA_VM, unresolved: true };
      const owner = this.routerMacs.get(mac);
      if (owner !== undefined) {
        // A virtual router's MAC is never a fast-path next hop: that traffic is the VM's to send (and pay for).
        this.logger.debug({ network: state.definition.name, mac, owner }, 'next hop is a virtual router: route goes via the VM');
        return { target: VIA_VM, unresolved: false };
      }
      const cacheKey = `${segment.ifindex}|${segment.vlan}|${segment.routerMac}|${segment.linkSlot}|${mac}`;
      let target = cache.get(cacheKey);
      if (!target) {
        const nexthopId = this.dp.nexthop({
          netId: state.definition.id, ifindex: segment.ifindex, linkSlot: segment.linkSlot, vlan: segment.vlan, smac: segment.routerMac, dmac: mac,
        });
        acquired.push(nexthopId);
        target = { kind: 'nexthop', nexthopId };
        cache.set(cacheKey, target);
      }
      return { target, unresolved: false };
    };
  }

  /** The entry with its target decided (null when evicted or covering an evicted route). */
  private withTarget(
    entry: RouteEntry,
    resolve: (announced: AnnouncedRoute) => { target: RouteTarget; unresolved: boolean },
    cover: CoverIndex | null,
  ): RouteEntry {
    const evicted = entry.evicted || (cover?.coversAny(entry.family, entry.addr, entry.length) ?? false);
    if (!entry.announced) return { ...entry, evicted, installed: evicted ? null : entry.installed };
    if (evicted) return { ...entry, evicted, installed: null, unresolved: false };
    const { target, unresolved } = resolve(entry.announced);
    return { ...entry, evicted, installed: target, unresolved };
  }

  /**
   * Writes staged changes (key -> new entry, or null to delete) to the maps, then to the
   * table. A kernel failure puts every touched map entry back as it was, releases next
   * hops made for the change, and leaves the table untouched; then it throws.
   */
  private commit(
    state: NetworkState,
    staged: Map<string, RouteEntry | null>,
    acquired: number[],
    defaults: { addDefaults: Family[]; removeDefaults: Family[] },
  ): void {
    const netId = state.definition.id;
    const plan: WritePlan = { upserts: new Map(), deletes: new Map() };
    for (const family of defaults.addDefaults) {
      const addr = Buffer.alloc(addressBytesLength(family));
      plan.upserts.set(prefixKey(addr, 0), { prefix: { family, addr, length: 0 }, target: VIA_VM });
    }
    for (const [key, after] of staged) {
      const before = state.routes.get(key);
      const target = after?.installed ?? null;
      if (target !== null && !sameTarget(before?.installed ?? null, target)) {
        plan.upserts.set(key, { prefix: { family: after!.family, addr: after!.addr, length: after!.length }, target });
      } else if (target === null && before?.installed) {
        plan.deletes.set(key, { family: before.family, addr: before.addr, length: before.length });
      }
    }
    for (const family of defaults.removeDefaults) {
      const addr = Buffer.alloc(addressBytesLength(family));
      const key = prefixKey(addr, 0);
      if (!plan.upserts.has(key) && !(state.routes.get(key)?.installed && !staged.has(key))) plan.deletes.set(key, { family, addr, length: 0 });
    }
    // A synthetic default replaces an evicted router default in place: never delete it after writing it.
    for (const key of plan.upserts.keys()) plan.deletes.delete(key);

    try {
      // Adds before deletes: a more specific route replacing a wider one never leaves a gap.
      if (plan.upserts.size > 0) this.dp.addRoutes(netId, [...plan.upserts.values()]);
      if (plan.deletes.size > 0) this.dp.deleteRoutes(netId, [...plan.deletes.values()]);
    } catch (error) {
      // The table is not updated yet: it still says what the maps held before this change.
      this.rollback(state, [...plan.upserts.keys(), ...plan.deletes.keys()]);
      this.releaseUnused(acquired);
      if (error instanceof ValidationError) throw error;
      throw new BatchRejectedError(errorCode(error), `writing network ${state.definition.name}'s maps failed, nothing changed: ${errorText(error)}`, { cause: error });
    }

    const released: number[] = [];
    for (const [key, after] of staged) {
      const before = state.routes.get(key);
      const oldNexthop = nexthopOf(before?.installed ?? null);
      const newNexthop = nexthopOf(after?.installed ?? null);
      if (oldNexthop !== newNexthop) {
        if (newNexthop !== undefined) this.nexthopRefs.set(newNexthop, (this.nexthopRefs.get(newNexthop) ?? 0) + 1);
        if (oldNexthop !== undefined) {
          const left = (this.nexthopRefs.get(oldNexthop) ?? 1) - 1;
          if (left > 0) this.nexthopRefs.set(oldNexthop, left);
          else {
            this.nexthopRefs.delete(oldNexthop);
            released.push(oldNexthop);
          }
        }
      }
      // A resync re-sends mostly the same routes: keep their neighbour links as they are.
      const sameGateway = before !== undefined && after !== null && dependencyOf(before) === dependencyOf(after);
      if (before && !sameGateway) this.unlinkDependent(state, before);
      if (after) {
        state.routes.set(key, after);
        if (!sameGateway) this.linkDependent(state, after);
      } else {
        state.routes.delete(key);
      }
    }
    // Next hops are freed only once no map entry points at them any more.
    this.releaseUnused([...released, ...acquired]);
  }

  /** Puts the map entries of `keys` back to what the table says they were. */
  private rollback(state: NetworkState, keys: readonly string[]): void {
    const netId = state.definition.id;
    const restore: RouteSpec[] = [];
    const remove: { family: Family; addr: Buffer; length: number }[] = [];
    for (const key of keys) {
      const before = state.routes.get(key);
      const prefix = prefixOfKey(key);
      if (before?.installed) restore.push({ prefix, target: before.installed });
      else if (prefix.length === 0 && state.syntheticDefaults.has(prefix.family)) restore.push({ prefix, target: VIA_VM });
      else remove.push(prefix);
    }
    try {
      for (let i = 0; i < restore.length; i += 4096) this.dp.addRoutes(netId, restore.slice(i, i + 4096));
      if (remove.length > 0) this.dp.deleteRoutes(netId, remove);
    } catch (error) {
      // The table still says what should be there: the next resync or sweep repairs the maps.
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 'rolling back a failed map write failed too');
    }
  }

  private releaseUnused(ids: readonly number[]): void {
    for (const id of new Set(ids)) {
      if ((this.nexthopRefs.get(id) ?? 0) > 0) continue;
      try {
        this.dp.releaseNexthop(id);
      } catch (error) {
        this.logger.warn({ nexthop: id, err: errorText(error) }, 'releasing a next hop failed');
      }
    }
  }

  private linkDependent(state: NetworkState, entry: RouteEntry): void {
    const key = dependencyOf(entry);
    if (key === undefined) return;
    let set = state.dependents.get(key);
    if (!set) state.dependents.set(key, (set = new Set()));
    set.add(entry.key);
  }

  private unlinkDependent(state: NetworkState, entry: RouteEntry): void {
    const key = dependencyOf(entry);
    if (key === undefined) return;
    const set = state.dependents.get(key);
    if (!set) return;
    set.delete(entry.key);
    if (set.size === 0) state.dependents.delete(key);
  }

  /** After a configuration change: every route's segment and target decided again. */
  private reresolve(state: NetworkState): void {
    const staged = new Map<string, RouteEntry | null>();
    const acquired: number[] = [];
    const resolve = this.resolver(state, acquired);
    for (const entry of state.routes.values()) {
      const a = entry.announced;
      if (!a) continue;
      let segment: SegmentBinding | null = null;
      if (a.kind === 'unicast' && a.iface) {
        try {
          segment = this.segmentOf(state, a.iface, formatPrefixBytes(entry.addr, entry.length, 0, entry.family));
        } catch (error) {
          this.logger.warn({ network: state.definition.name, err: errorText(error) }, 'route lost its segment: it goes via the VM');
        }
      }
      staged.set(entry.key, this.withTarget({ ...entry, announced: { ...a, segment } }, resolve, null));
    }
    try {
      this.commit(state, staged, acquired, { addDefaults: [], removeDefaults: [] });
    } catch (error) {
      this.logger.error({ network: state.definition.name, err: errorText(error) }, 're-resolving routes after a configuration change failed');
    }
  }

  // ---- setup -----------------------------------------------------------------------------------------

  private newState(definition: NetworkDefinition): NetworkState {
    return {
      definition, routes: new Map(), neighbours: new Map(), dependents: new Map(), syntheticDefaults: new Set(), coverIndex: null,
      filterRules: null, session: null, clientName: null, helloSeen: false, resyncing: false, resyncFailed: false,
      connectedSince: null, disconnectedSince: null, lastUpdate: null, lastError: null, staleTimer: undefined,
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
    for (const route of listed) {
      const p = parsePrefixText(route.prefix, 'listRoutes');
      const key = prefixKey(p.addr, p.length);
      state.routes.set(key, {
        key, family: p.family, addr: p.addr, length: p.length, announced: null, installed: route.target, evicted: false, unresolved: false, stale: true,
      });
      const id = nexthopOf(route.target);
      if (id !== undefined) this.nexthopRefs.set(id, (this.nexthopRefs.get(id) ?? 0) + 1);
    }
    if (state.routes.size > 0) {
      this.logger.info({ network: state.definition.name, routes: state.routes.size }, 'adopted installed routes as stale until the router resyncs');
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
    let installed = state.syntheticDefaults.size;
    let stale = 0;
    let evicted = 0;
    let unresolved = 0;
    for (const entry of state.routes.values()) {
      if (entry.installed !== null) installed++;
      if (entry.stale) stale++;
      if (entry.evicted) evicted++;
      if (entry.unresolved) unresolved++;
    }
    return { netId: state.definition.id, network: state.definition.name, installed, routes: state.routes.size, stale, evicted, unresolved, neighbours: state.neighbours.size };
  }
}
