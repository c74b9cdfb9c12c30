// What every room of the manager shares: the per-network state (its tables, interfaces,
// neighbours, session and timers), the host-wide context (data plane, configuration, quotas,
// next hop reference counts) and the Operation that one change of one network goes through.
import type { FilterRuleSpec } from '../dataplane/index.js';
import {
  CONFIG_LIMITS,
  networkQuotas,
  tableCapacities,
  type NetworkDefinition,
  type QuotaTable,
  type TableCapacities,
  type XnetmonConfig,
} from '../config/index.js';
import { FailureLog, XnetmonError } from '../errors/index.js';
import type { Family } from '../net/index.js';
import { silentLogger, systemClock, type Clock, type UpdateLogger, type UpdateSession } from '../wire/index.js';
import type { CoverIndex } from './cover.js';
import { InterfaceRegistry, type NeighbourAddresses } from './registry.js';
import type { SegmentMap } from './segments.js';
import { RouteTable, type CommitHooks } from './table.js';
import type { QuotaTableName, RouteWriter, UpdateManagerOptions } from './types.js';

export const FAMILIES = [4, 6] as const;

export interface NeighbourEntry {
  /** "router ifindex|address hex". */
  readonly key: string;
  readonly family: Family;
  readonly addr: Buffer;
  /** The router interface it was reported on (interface registry id). */
  readonly ifaceId: number;
  readonly mac: string;
  /** Routers (bits, see RouterState) that report this neighbour, and those of them whose report is stale. */
  readonly owners: number;
  readonly staleOwners: number;
  /** Every router that reports it is stale. */
  stale: boolean;
}

/**
 * One virtual router of a network (docs/manager.md, "Several routers"): its own session
 * identity (the client key the channel authenticated), Hello, resync and stale timer.
 */
export interface RouterState {
  /** The router's client public key (base64): its identity. */
  readonly key: string;
  /** The router's vif in the configuration: its name in `xnetmon clients`. */
  vif: string;
  /** Bit index in the tables' owner masks (0..31), stable while the router stays configured. */
  readonly index: number;
  readonly bit: number;
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

export interface NetworkState {
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
  /** The network's routers by client key. */
  readonly routers: Map<string, RouterState>;
  /** Routers that have not completed a resync since routes were adopted at start-up. */
  readonly adoptedPending: Set<string>;
  /** Hold time of adopted routes: when it ends they go, whichever routers came back. */
  adoptionTimer: unknown;
  /** Next hop ids the data plane gave this network (its use of xnm_nexthops). */
  readonly nexthopIds: Set<number>;
  /** Batches refused per table for the quota. */
  readonly quotaRejections: Record<QuotaTableName, number>;
  mapWriteFailures: number;
}

/** One change of one network's table, from staging to commit. */
export class Operation {
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

/** An Operation that sees the network's neighbours as they are. */
export function operationOn(state: NetworkState): Operation {
  return new Operation((key) => state.neighbours.get(key));
}

/** What the manager holds for the whole host: one per UpdateManager, shared by its rooms. */
export class ManagerContext {
  readonly dp: RouteWriter;
  readonly logger: UpdateLogger;
  readonly clock: Clock;
  config: XnetmonConfig;
  segments: SegmentMap;
  readonly networks = new Map<number, NetworkState>();
  /** How many installed routes use each next hop (by id): released at zero. */
  private nexthopRefs = new Int32Array(1024);
  /** Next hops whose count fell to zero in the operation being committed. */
  readonly droppedNexthops: number[] = [];
  /** Every virtual router MAC on this host: never a next hop of the fast path. */
  routerMacs = new Map<string, string>();
  closed = false;
  readonly capacities: TableCapacities;
  /** Every network's effective quota per shared table (config/quota.ts). */
  quotas = new Map<number, Record<QuotaTable, number>>();
  /** Which network holds each next hop id. */
  private readonly nexthopOwner = new Map<number, NetworkState>();
  /** Refused batches and failed map writes, logged at most once per interval per network and code. */
  readonly failures: FailureLog;

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
  }

  indexRouterMacs(): void {
    this.routerMacs = new Map();
    for (const network of this.config.networks)
      for (const a of network.attachments) this.routerMacs.set(a.mac.toLowerCase(), network.name);
  }

  /** A network by id or name. */
  state(network: number | string): NetworkState {
    const state =
      typeof network === 'number'
        ? this.networks.get(network)
        : [...this.networks.values()].find((s) => s.definition.name === network);
    if (!state) throw new XnetmonError('ERR_UNKNOWN_NETWORK', `unknown network ${network}`);
    return state;
  }

  quota(state: NetworkState, table: QuotaTable): number {
    return this.quotas.get(state.definition.id)?.[table] ?? 0;
  }

  // ---- next hops: shared by every network's routes, released when no entry uses them --------------

  holdNexthop(state: NetworkState, id: number): void {
    state.nexthopIds.add(id);
    this.nexthopOwner.set(id, state);
  }

  nexthopDelta(id: number, delta: 1 | -1): void {
    if (id >= this.nexthopRefs.length) {
      let size = this.nexthopRefs.length;
      while (size <= id) size *= 2;
      const grown = new Int32Array(size);
      grown.set(this.nexthopRefs);
      this.nexthopRefs = grown;
    }
    const left = this.nexthopRefs[id]! + delta;
    this.nexthopRefs[id] = left;
    if (left === 0 && delta < 0) this.droppedNexthops.push(id);
  }

  releaseUnused(ids: readonly number[]): void {
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

  newState(definition: NetworkDefinition): NetworkState {
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
      definition,
      tables: { 4: new RouteTable(4), 6: new RouteTable(6) },
      hooks: { 4: hooks(4), 6: hooks(6) },
      interfaces,
      neighbours: new Map(),
      neighbourAddresses: null,
      viasByNeighbour,
      syntheticDefaults: new Set(),
      coverIndex: null,
      filterRules: null,
      routers: routersOf(definition, new Map()),
      adoptedPending: new Set(),
      adoptionTimer: undefined,
      nexthopIds: new Set(),
      quotaRejections: { routes4: 0, routes6: 0, nexthops: 0, neighbours: 0, filterRules: 0 },
      mapWriteFailures: 0,
    };
  }
}

// ---- small helpers the rooms share ---------------------------------------------------------------

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The Ack code of an error: its own when it has a valid one, else ERR_APPLY. */
export function errorCode(error: unknown): string {
  if (error instanceof XnetmonError && /^[A-Z][A-Z0-9_]{0,31}$/.test(error.code)) return error.code;
  return 'ERR_APPLY';
}

export function hexOf(bytes: Uint8Array, offset: number, length: number): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + offset, length).toString('hex');
}

/** Host-order value of four network-order bytes. */
export function u32At(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

/** Most routers a network may list: a router is a bit in the tables' owner masks. */
export const MAX_ROUTERS_PER_NETWORK = CONFIG_LIMITS.routersPerNetwork;

/**
 * The routers of a definition, keeping the state (and bit) of those already known; the
 * caller sweeps and closes the ones left out (`known` minus the result).
 */
export function routersOf(
  definition: NetworkDefinition,
  known: ReadonlyMap<string, RouterState>,
): Map<string, RouterState> {
  const out = new Map<string, RouterState>();
  const taken = new Set<number>();
  for (const router of definition.routers) {
    const state = known.get(router.clientPublicKey);
    if (!state) continue;
    state.vif = router.vif;
    out.set(state.key, state);
    taken.add(state.index);
  }
  let next = 0;
  for (const router of definition.routers) {
    if (out.has(router.clientPublicKey)) continue;
    while (taken.has(next)) next++;
    if (next >= MAX_ROUTERS_PER_NETWORK) {
      throw new XnetmonError(
        'ERR_CONFIG',
        `network ${definition.name} lists more than ${MAX_ROUTERS_PER_NETWORK} routers`,
      );
    }
    taken.add(next);
    out.set(router.clientPublicKey, {
      key: router.clientPublicKey,
      vif: router.vif,
      index: next,
      bit: (1 << next) >>> 0,
      session: null,
      clientName: null,
      helloSeen: false,
      resyncing: false,
      resyncFailed: false,
      connectedSince: null,
      disconnectedSince: null,
      lastUpdate: null,
      lastError: null,
      staleTimer: undefined,
    });
  }
  return out;
}
