// What the manager's users see: its options, the figures it reports (route counts, quota use,
// sessions, the table) and the errors a refused batch carries into its Ack (docs/manager.md).
import type { DataPlane, RouteTarget } from '../dataplane/index.js';
import { QUOTA_TABLE_NAMES, type QuotaTable, type TableCapacities, type XnetmonConfig } from '../config/index.js';
import { XnetmonError } from '../errors/index.js';
import type { Clock, UpdateLogger } from '../wire/index.js';
import type { SegmentMap } from './segments.js';

/** The part of DataPlane the manager writes through (tests may pass a fake with the same behaviour). */
export type RouteWriter = Pick<
  DataPlane,
  'nexthop' | 'releaseNexthop' | 'addRoutes' | 'addRoutes4' | 'deleteRoutes' | 'listRoutes' | 'setFilter'
>;

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
  /** The router's vif in the configuration: a network has a line per router (docs/manager.md, "Several routers"). */
  readonly router: string;
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
  constructor(
    readonly network: string,
    readonly table: QuotaTableName,
    readonly quota: number,
    readonly wanted: number,
  ) {
    const where = table === 'filterRules' ? 'xnm_filters' : QUOTA_TABLE_NAMES[table];
    super(
      'ERR_QUOTA',
      `network ${network} is over its quota of ${table} (${where}): the batch would hold ${wanted}, the quota is ${quota}; nothing of it was applied`,
    );
  }
}

export const QUOTA_TABLE_LIST: readonly QuotaTableName[] = [
  'routes4',
  'routes6',
  'nexthops',
  'neighbours',
  'filterRules',
];
