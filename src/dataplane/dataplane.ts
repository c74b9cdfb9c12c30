// The data plane API's facade: opens (or re-adopts) the pinned maps of bpf/xnetmon.bpf.o and
// hands each job to its module: networks and attachments (networks.ts), programs on interfaces
// (attach.ts), next hops, routes, filters, drops, counters and settings. Reconciliation (what is
// in the maps against what is declared) composes them here.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../errors/index.js';
import { BpfObject, FLOW_CACHE_SLOTS, type Attachment, type LookupMode } from '../loader/index.js';
import { ProgramAttachments, type AttachModes } from './attach.js';
import { readCountersFrom, readUsageFrom, type NetCounters, type UsageColumns } from './counters.js';
import { Drops, type DropProbabilities } from './drops.js';
import { Filters, type FilterRuleSpec } from './filters.js';
import {
  Attachments,
  NetworkRegistry,
  type AttachmentSpec,
  type Mac,
  type NetworkSpec,
  type VifSpec,
} from './networks.js';
import { Nexthops, type NexthopSpec } from './nexthops.js';
import type { Prefix } from './prefix.js';
import { Route4Index } from './route-index.js';
import {
  Routes,
  type InstalledRoute,
  type ListRoutesOptions,
  type Route4Columns,
  type RouteSpec,
  type RouteWriteOptions,
} from './routes.js';
import { readSettings, writeSettings, type DataPlaneSettings } from './settings.js';
import { readFairFrom, type FairColumns } from './fair.js';
import { readPathTotalsFrom, type PathTotals } from './paths.js';
import { FlowCacheGeneration, checkNetId } from './shared.js';

/** Where the compiled object lives: build/ at the repository root. */
export function defaultObjectPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return resolve(dir, 'build', 'xnetmon.bpf.o');
}

export interface DataPlaneOptions {
  objectPath?: string;
  /** bpffs directory for pins; nothing is pinned when absent (tests, benchmarks). */
  pinDir?: string;
  maxRoutes4?: number;
  maxRoutes6?: number;
  /** Slots per CPU of the IPv4 flow cache (32 bytes each), a power of two; default FLOW_CACHE_SLOTS (256). */
  flowCacheSlots?: number;
  onLog?: (level: 'warn' | 'info' | 'debug', message: string) => void;
}

export class DataPlane {
  readonly object: BpfObject;
  readonly pinDir: string | undefined;
  private readonly networks = new NetworkRegistry();
  private readonly attachments: Attachments;
  private readonly programs: ProgramAttachments;
  private readonly nexthops: Nexthops;
  private readonly routes: Routes;
  private readonly filters: Filters;
  private readonly drops: Drops;
  private readonly generation: FlowCacheGeneration;

  private constructor(
    object: BpfObject,
    pinDir: string | undefined,
    private readonly flowCacheSlots: number,
  ) {
    this.object = object;
    this.pinDir = pinDir;
    this.generation = new FlowCacheGeneration(object.map('xnm_route_gen'), object.map('xnm_flow_cache_state'));
    this.attachments = new Attachments(
      {
        ifaces: object.map('xnm_ifaces'),
        classify: object.map('xnm_classify'),
        txPorts: object.map('xnm_tx_ports'),
        vifMacs: object.map('xnm_vif_macs'),
        segAddrs: object.map('xnm_seg_addrs'),
      },
      this.networks,
      this.generation,
    );
    this.programs = new ProgramAttachments(object, pinDir);
    this.nexthops = new Nexthops(object.map('xnm_nexthops'));
    const index4 = new Route4Index(object.map('xnm_routes4_exact'), object.map('xnm_route4_lengths'));
    this.routes = new Routes(
      object.map('xnm_routes4'),
      object.map('xnm_routes6'),
      this.nexthops,
      this.generation,
      index4,
    );
    this.filters = new Filters(object.map('xnm_filters'), this.generation);
    this.drops = new Drops(object.map('xnm_drops'));
  }

  static open(options: DataPlaneOptions = {}): DataPlane {
    const maxEntries: Record<string, number> = {};
    if (options.maxRoutes4) maxEntries.xnm_routes4 = maxEntries.xnm_routes4_exact = options.maxRoutes4;
    if (options.maxRoutes6) maxEntries.xnm_routes6 = options.maxRoutes6;
    const flowCacheSlots = options.flowCacheSlots ?? FLOW_CACHE_SLOTS;
    const powerOfTwo = (flowCacheSlots & (flowCacheSlots - 1)) === 0;
    if (!Number.isInteger(flowCacheSlots) || flowCacheSlots < 1 || flowCacheSlots > 1 << 24 || !powerOfTwo) {
      throw new ValidationError('flowCacheSlots', `${flowCacheSlots} must be a power of two, 1..${1 << 24}`);
    }
    maxEntries.xnm_flow_cache = flowCacheSlots;
    // The flow cache, its hit-rate window, the flow rates and the filter's scratch value are not pinned:
    // a restart starts them empty, the cache at whatever size it is given.
    const object = BpfObject.load(options.objectPath ?? defaultObjectPath(), {
      pinDir: options.pinDir,
      maxEntries,
      onLog: options.onLog,
      transientMaps: ['xnm_flow_cache', 'xnm_flow_cache_state', 'xnm_flow_rates', 'xnm_filter_scratch'],
    });
    const dp = new DataPlane(object, options.pinDir, flowCacheSlots);
    // Maps pinned by a data plane without the index: index what the trie holds.
    const reused = object.reusedMaps;
    if (reused.includes('xnm_routes4') && !reused.includes('xnm_routes4_exact')) dp.routes.rebuildIndex();
    return dp;
  }

  /** True when the maps were found pinned and re-used (a restart). */
  get adopted(): boolean {
    return this.object.reusedMaps.includes('xnm_routes4');
  }

  close(): void {
    this.object.close();
  }

  // ---- networks and attachments (networks.ts) -----------------------------------------------

  defineNetwork(spec: NetworkSpec): void {
    this.networks.define(spec);
  }

  network(idOrName: number | string): NetworkSpec {
    return this.networks.get(idOrName);
  }

  networkList(): NetworkSpec[] {
    return this.networks.list();
  }

  /** A physical link: its counters and drop probabilities live at `linkSlot`. */
  setPhysical(ifindex: number, linkSlot: number): void {
    this.attachments.setPhysical(ifindex, linkSlot);
  }

  /** A virtual router's host-side interface, on the segment of physical `segIfindex`. */
  setVif(ifindex: number, spec: VifSpec): void {
    this.attachments.setVif(ifindex, spec);
  }

  removeInterface(ifindex: number): void {
    this.attachments.removeInterface(ifindex);
  }

  /** The IP addresses a network's routers own on a segment (anti-spoofing of ARP and ND; Attachments.setSegmentAddresses). */
  setSegmentAddresses(netId: number, ifindex: number, vlan: number, addresses: readonly string[]): void {
    this.attachments.setSegmentAddresses(netId, ifindex, vlan, addresses);
  }

  segmentAddresses(netId: number, ifindex: number, vlan: number): string[] {
    return this.attachments.segmentAddresses(netId, ifindex, vlan);
  }

  /** Paper IV: a segment's frames to the router's MAC belong to its network (see Attachments.setAttachment). */
  setAttachment(spec: AttachmentSpec): void {
    this.attachments.setAttachment(spec);
  }

  removeAttachment(ifindex: number, vlan: number, mac: Mac): boolean {
    return this.attachments.removeAttachment(ifindex, vlan, mac);
  }

  /** The host's own MAC on a segment (its bridge): frames to it are the host's. */
  setHostMac(ifindex: number, vlan: number, mac: Mac): void {
    this.attachments.setHostMac(ifindex, vlan, mac);
  }

  // ---- programs on interfaces (attach.ts) -----------------------------------------------------

  /** XDP (fast path) and TC egress (link accounting) on a physical interface. */
  attachPhysical(ifname: string, modes: AttachModes = {}): Attachment[] {
    return this.programs.attachPhysical(ifname, modes);
  }

  attachVif(ifname: string, modes: AttachModes = {}): Attachment[] {
    return this.programs.attachVif(ifname, modes);
  }

  /** Removes our programs from an interface (pinned links, and a cls_bpf filter on older kernels). */
  detach(ifname: string): void {
    this.programs.detach(ifname);
  }

  /** What runs on an interface, as the kernel reports it: XDP mode and TC mode. */
  attachedModes(ifname: string): { xdp: string; tc: string } {
    return this.programs.attachedModes(ifname);
  }

  // ---- settings (settings.ts) -------------------------------------------------------------------

  configure(settings: DataPlaneSettings): void {
    writeSettings(this.object.map('xnm_settings'), settings, this.flowCacheSlots);
  }

  readSettings(): DataPlaneSettings {
    return readSettings(this.object.map('xnm_settings'));
  }

  // ---- next hops (nexthops.ts) ------------------------------------------------------------------

  /** The id of a next hop with these fields, created when new. */
  nexthop(spec: NexthopSpec): number {
    return this.nexthops.idFor(spec);
  }

  releaseNexthop(id: number): void {
    this.nexthops.release(id);
  }

  // ---- routes (routes.ts) -------------------------------------------------------------------------

  /** Adds or replaces routes of one network: all validated first, then written all or nothing
   *  (options.undo 'caller': the caller undoes a refused write, routes.ts). */
  addRoutes(netId: number, routes: readonly RouteSpec[], options?: RouteWriteOptions): void {
    this.networks.get(netId);
    this.routes.add(netId, routes, options);
  }

  /** Full IPv4 tables: columns in, one batch syscall per 256k routes, all or nothing (or undone by the
   *  caller: options.undo). */
  addRoutes4(netId: number, columns: Route4Columns, options?: RouteWriteOptions): void {
    this.networks.get(netId);
    this.routes.add4(netId, columns, options);
  }

  /** Removes routes; absent ones are ignored. Returns how many were removed. */
  deleteRoutes(netId: number, prefixes: readonly (string | Prefix)[]): number {
    this.networks.get(netId);
    return this.routes.delete(netId, prefixes);
  }

  /** The routes of one network (or all), read from the maps in batches where the kernel allows. */
  listRoutes(netId?: number, options?: ListRoutesOptions): InstalledRoute[] {
    return this.routes.list(netId, options);
  }

  /** How whole-table reads of the route maps went on this kernel ('batch' or 'per-key'; undefined before the first). */
  routeLookupModes(): { routes4: LookupMode | undefined; routes6: LookupMode | undefined } {
    return this.routes.lookupModes();
  }

  /** Removes every route of a network (or of all networks). */
  flushRoutes(netId?: number): number {
    return this.routes.flush(netId);
  }

  // ---- filters, drops, counters ---------------------------------------------------------------------

  /** Paper IV-B: replaces a network's replicated filter (first match wins). */
  setFilter(netId: number, rules: readonly FilterRuleSpec[]): void {
    this.networks.get(netId);
    this.filters.set(netId, rules);
  }

  setDrops(netId: number, drops: DropProbabilities): void {
    this.drops.set(netId, drops);
  }

  /** Many networks at once: one syscall (the controller's write each period). */
  setDropsBatch(entries: readonly { netId: number; drops: DropProbabilities }[]): void {
    this.drops.setBatch(entries);
  }

  readDrops(netId: number): DropProbabilities {
    return this.drops.read(netId);
  }

  /** Counters of the given networks (all defined ones, plus 0, by default), summed over CPUs. */
  readCounters(netIds?: readonly number[]): NetCounters[] {
    return readCountersFrom(this.object.map('xnm_stats'), netIds ?? [0, ...this.networks.ids()]);
  }

  readUsage(netIds: readonly number[]): UsageColumns {
    return readUsageFrom(this.object.map('xnm_stats'), netIds);
  }

  /** Packets and bytes per path over every network (ids 0..maxId), for the CPU model. */
  readPathTotals(maxId: number = Math.max(0, ...this.networkList().map((n) => n.id))): PathTotals {
    return readPathTotalsFrom(this.object.map('xnm_stats'), maxId);
  }

  /** Per network: offered packets by flow rate bucket, and the packets exempt from punishment (fair.ts). */
  readFair(netIds: readonly number[]): FairColumns {
    return readFairFrom(this.object.map('xnm_fair'), netIds);
  }

  // ---- reconciliation ---------------------------------------------------------------------------------

  /**
   * The network ids that hold anything in the maps (classification, vifs, next hops, routes),
   * whether defined in this process or left by an earlier daemon: what start-up compares with
   * the configuration.
   */
  networkIdsInMaps(): Set<number> {
    const ids = new Set<number>([
      ...this.attachments.networkIds(),
      ...this.nexthops.networkIds(),
      ...this.routes.networkIds(),
    ]);
    ids.delete(0);
    return ids;
  }

  /**
   * Removes everything of a network from every map, whether or not it is defined here: its
   * classification entries and the MACs its vifs may send from, its vifs, routes, next hops,
   * filter and drop probabilities. Returns the vifs it had (the caller detaches their programs)
   * and how many entries went.
   */
  purgeNetwork(netId: number): { vifs: number[]; entries: number } {
    checkNetId(netId);
    const { vifs, entries } = this.attachments.purge(netId);
    const routes = this.routes.purge(netId);
    const nexthops = this.nexthops.purge(netId);
    this.filters.clear(netId);
    this.drops.clear(netId);
    this.networks.forget(netId);
    this.generation.bump();
    return { vifs, entries: entries + routes + nexthops };
  }
}
