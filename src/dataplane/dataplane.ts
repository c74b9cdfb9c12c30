// The data plane API: virtual networks, interfaces, next hops, routes, drop
// probabilities and counters, on top of the pinned maps of bpf/xnetmon.bpf.o.
// Size: seven jobs in one class (networks and attachments, routes, next hops, filters, drops,
// counters, reconciliation); the split by job is the open layout issue's restructuring.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XnetmonError, ValidationError } from '../errors/index.js';
import {
  BpfObject, BpfMap, MapFullError, attachXdp, attachTc, detachPinned, detachTc, ifindexOf, ifnameOf, xdpModeOf, tcModeOf, type Attachment,
  IfaceFlags, vifMacKeyLayout,
  IfaceKind, FLOW_CACHE_SLOTS, MAX_LINKS, MAX_NETS, MAX_NEXTHOPS, MAX_FILTER_RULES, NEXTHOP_VALID, PATHS, REASONS, RouteFlags, SettingsFlags,
  ifaceLayout, classifyKeyLayout, classifyValLayout, route4KeyLayout, route6KeyLayout, routeValLayout,
  nexthopLayout, dropLayout, netStatsLayout, settingsLayout, filterRuleLayout,
  type PathName, type ReasonName,
} from '../loader/index.js';
import { macBytes, macString, type Mac } from '../packet/index.js';
import { parsePrefix, formatPrefix, type Prefix } from './prefix.js';
import { linkPinName, type LinkPinKind } from './pins.js';

export class UnknownNetworkError extends XnetmonError {
  constructor(readonly netId: number | string) {
    super('ERR_UNKNOWN_NETWORK', `unknown network ${netId}`);
  }
}

export class DuplicateAttachmentError extends XnetmonError {
  constructor(what: string, owner: number) {
    super('ERR_DUPLICATE_ATTACHMENT', `${what} already belongs to network ${owner}`);
  }
}

/** Where the compiled object lives: build/ at the repository root. */
export function defaultObjectPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return resolve(dir, 'build', 'xnetmon.bpf.o');
}

export interface NetworkSpec {
  id: number;
  name: string;
}

export interface AttachmentSpec {
  /** Physical interface and VLAN (0 = untagged) of the segment. */
  ifindex: number;
  vlan: number;
  /** The virtual router's MAC on that segment. */
  mac: Mac;
  netId: number;
  /** The virtual router's host-side interface on that segment, 0 to deliver through the host bridge. */
  vifIfindex: number;
}

export interface NexthopSpec {
  netId: number;
  ifindex: number;
  linkSlot: number;
  vlan: number;
  smac: Mac;
  dmac: Mac;
}

export type RouteTarget =
  | { kind: 'nexthop'; nexthopId: number }
  | { kind: 'via-vm' }
  | { kind: 'local' }
  | { kind: 'blackhole' };

export interface RouteSpec {
  prefix: string | Prefix;
  target: RouteTarget;
}

/** IPv4 routes of one network as columns: the path for full tables. */
export interface Route4Columns {
  /** Host-order 32-bit addresses. */
  addrs: Uint32Array;
  lengths: Uint8Array;
  /** Next hop id per route; ignored where flags is non-zero. */
  nexthops: Uint32Array;
  flags?: Uint32Array;
  count: number;
}

export interface DropProbabilities {
  cpu: number;
  residual: number;
  /** Indexed by link slot. */
  links: readonly number[];
}

export interface NetCounters {
  netId: number;
  verdicts: Record<ReasonName, bigint>;
  pathPackets: Record<PathName, bigint>;
  pathBytes: Record<PathName, bigint>;
  cpuOffered: bigint;
  cpuCarried: bigint;
  linkOffered: bigint[];
  linkCarried: bigint[];
}

export interface DataPlaneSettings {
  accounting: boolean;
  punish: boolean;
  filter: boolean;
  /** Serve IPv4 flows from the flow cache: classification + LPM result per flow (default on). */
  flowCache?: boolean;
  pathCost: Record<PathName, number>;
  costPerKib: number;
}

export interface FilterRuleSpec {
  family: 4 | 6;
  proto?: number;
  src?: string;
  dst?: string;
  sport?: [number, number];
  dport?: [number, number];
  action: 'accept' | 'drop';
}

/** How programs are attached: 'auto' picks the best mode the kernel and driver offer. */
export interface AttachModes {
  xdp?: 'auto' | 'native' | 'generic';
  tc?: 'auto' | 'tcx' | 'cls_bpf';
}

/** An interface's MTU, for the data plane's too-big check; 0 (unchecked) when unknown. */
function linkMtu(ifindex: number): number {
  const name = ifnameOf(ifindex);
  if (!name) return 0;
  try {
    return Math.min(0xffff, Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8')) || 0);
  } catch {
    return 0;
  }
}

/** An interface's index, or 0 when it does not exist (any more). */
function interfaceIndex(ifname: string): number {
  try {
    return ifindexOf(ifname);
  } catch {
    return 0;
  }
}

export interface DataPlaneOptions {
  objectPath?: string;
  /** bpffs directory for pins; nothing is pinned when absent (tests, benchmarks). */
  pinDir?: string;
  maxRoutes4?: number;
  maxRoutes6?: number;
  /** Slots per CPU of the IPv4 flow cache (48 bytes each), a power of two; default 65536. */
  flowCacheSlots?: number;
  onLog?: (level: 'warn' | 'info' | 'debug', message: string) => void;
}

/** Drop probability in [0,1] -> threshold on bpf_get_prandom_u32(). */
export function probabilityToThreshold(p: number): number {
  if (!(p > 0)) return 0;
  if (p >= 1) return 0xffffffff;
  return Math.min(0xffffffff, Math.round(p * 4294967296));
}

export function thresholdToProbability(t: number): number {
  return t >= 0xffffffff ? 1 : t / 4294967296;
}

function checkNetId(netId: number, path = 'netId'): void {
  if (!Number.isInteger(netId) || netId < 1 || netId >= MAX_NETS) throw new ValidationError(path, `network id ${netId} must be an integer 1..${MAX_NETS - 1}`);
}

function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class DataPlane {
  readonly object: BpfObject;
  readonly pinDir: string | undefined;
  private readonly ifaces: BpfMap;
  private readonly classify: BpfMap;
  private readonly routes4: BpfMap;
  private readonly routes6: BpfMap;
  private readonly nexthopMap: BpfMap;
  private readonly txPorts: BpfMap;
  /** The MACs each vif's router may send from (anti-spoofing). */
  private readonly vifMacs: BpfMap;
  private readonly drops: BpfMap;
  private readonly stats: BpfMap;
  private readonly filters: BpfMap;
  private readonly settingsMap: BpfMap;
  /** xnm_route_gen: bumped after every change of a route or an attachment (it empties the flow cache). */
  private readonly generation: BpfMap;
  private readonly networks = new Map<number, NetworkSpec>();
  /** Next hops by identity, so that routes share them. */
  private readonly nexthopIds = new Map<string, number>();
  /** The reverse of nexthopIds: releasing is constant time (a refused batch may release thousands). */
  private readonly nexthopIdentities = new Map<number, string>();
  private readonly freeNexthops: number[] = [];
  private nextNexthop = 1;

  private constructor(object: BpfObject, pinDir: string | undefined, private readonly flowCacheSlots: number) {
    this.object = object;
    this.pinDir = pinDir;
    this.ifaces = object.map('xnm_ifaces');
    this.classify = object.map('xnm_classify');
    this.routes4 = object.map('xnm_routes4');
    this.routes6 = object.map('xnm_routes6');
    this.nexthopMap = object.map('xnm_nexthops');
    this.txPorts = object.map('xnm_tx_ports');
    this.vifMacs = object.map('xnm_vif_macs');
    this.drops = object.map('xnm_drops');
    this.stats = object.map('xnm_stats');
    this.filters = object.map('xnm_filters');
    this.settingsMap = object.map('xnm_settings');
    this.generation = object.map('xnm_route_gen');
    this.adoptNexthops();
  }

  static open(options: DataPlaneOptions = {}): DataPlane {
    const maxEntries: Record<string, number> = {};
    if (options.maxRoutes4) maxEntries.xnm_routes4 = options.maxRoutes4;
    if (options.maxRoutes6) maxEntries.xnm_routes6 = options.maxRoutes6;
    const flowCacheSlots = options.flowCacheSlots ?? FLOW_CACHE_SLOTS;
    if (!Number.isInteger(flowCacheSlots) || flowCacheSlots < 1 || flowCacheSlots > 1 << 24 || (flowCacheSlots & (flowCacheSlots - 1)) !== 0) {
      throw new ValidationError('flowCacheSlots', `${flowCacheSlots} must be a power of two, 1..${1 << 24}`);
    }
    maxEntries.xnm_flow_cache = flowCacheSlots;
    // The flow cache is not pinned: a restart starts it empty, at whatever size it is given.
    const object = BpfObject.load(options.objectPath ?? defaultObjectPath(), { pinDir: options.pinDir, maxEntries, transientMaps: ['xnm_flow_cache'], onLog: options.onLog });
    return new DataPlane(object, options.pinDir, flowCacheSlots);
  }

  /** True when the maps were found pinned and re-used (a restart). */
  get adopted(): boolean {
    return this.object.reusedMaps.includes('xnm_routes4');
  }

  close(): void {
    this.object.close();
  }

  // ---- networks ---------------------------------------------------------------

  defineNetwork(spec: NetworkSpec): void {
    checkNetId(spec.id, `networks.${spec.name}.id`);
    const existing = [...this.networks.values()].find((n) => n.name === spec.name && n.id !== spec.id);
    if (existing) throw new ValidationError(`networks.${spec.name}`, `name already used by network ${existing.id}`);
    this.networks.set(spec.id, { ...spec });
  }

  network(idOrName: number | string): NetworkSpec {
    const net = typeof idOrName === 'number' ? this.networks.get(idOrName) : [...this.networks.values()].find((n) => n.name === idOrName);
    if (!net) throw new UnknownNetworkError(idOrName);
    return net;
  }

  networkList(): NetworkSpec[] {
    return [...this.networks.values()].sort((a, b) => a.id - b.id);
  }

  // ---- settings -----------------------------------------------------------------

  configure(settings: DataPlaneSettings): void {
    const flags = (settings.accounting ? SettingsFlags.ACCOUNTING : 0) | (settings.punish ? SettingsFlags.PUNISH : 0) |
      (settings.filter ? SettingsFlags.FILTER : 0) | (settings.flowCache ?? true ? SettingsFlags.FLOW_CACHE : 0);
    const value = settingsLayout.encode({
      flags, cost_per_kib: settings.costPerKib, path_cost: PATHS.map((p) => settings.pathCost[p]), flow_cache_mask: this.flowCacheSlots - 1,
    });
    this.settingsMap.update(u32Key(0), value);
  }

  readSettings(): DataPlaneSettings {
    const v = settingsLayout.decode(this.settingsMap.lookup(u32Key(0)) ?? Buffer.alloc(settingsLayout.size));
    const flags = v.flags as number;
    const costs = v.path_cost as number[];
    return {
      accounting: (flags & SettingsFlags.ACCOUNTING) !== 0,
      punish: (flags & SettingsFlags.PUNISH) !== 0,
      filter: (flags & SettingsFlags.FILTER) !== 0,
      flowCache: (flags & SettingsFlags.FLOW_CACHE) !== 0,
      pathCost: Object.fromEntries(PATHS.map((p, i) => [p, costs[i]])) as Record<PathName, number>,
      costPerKib: v.cost_per_kib as number,
    };
  }

  // ---- interfaces -------------------------------------------------------------------

  /** A physical link: its counters and drop probabilities live at `linkSlot`. */
  setPhysical(ifindex: number, linkSlot: number): void {
    if (!Number.isInteger(linkSlot) || linkSlot < 0 || linkSlot >= MAX_LINKS) throw new ValidationError('linkSlot', `link slot ${linkSlot} must be 0..${MAX_LINKS - 1}`);
    this.ifaces.update(u32Key(ifindex), ifaceLayout.encode({ kind: IfaceKind.PHYS, link_slot: linkSlot }));
    this.txPorts.update(u32Key(ifindex), u32Key(ifindex));
  }

  /** A virtual router's host-side interface, on the segment of physical `segIfindex`. */
  setVif(ifindex: number, spec: { netId: number; segIfindex: number; segVlan: number; linkSlot: number }): void {
    this.network(spec.netId);
    const current = this.ifaces.lookup(u32Key(ifindex));
    let flags = 0;
    if (current) {
      const d = ifaceLayout.decode(current);
      if (d.kind === IfaceKind.VIF && d.net_id !== spec.netId) throw new DuplicateAttachmentError(`vif ifindex ${ifindex}`, d.net_id as number);
      if (d.kind === IfaceKind.PHYS) throw new DuplicateAttachmentError(`ifindex ${ifindex} (a physical link)`, 0);
      flags = d.flags as number; // a re-applied vif stays MAC-locked: no window without anti-spoofing
    }
    this.ifaces.update(u32Key(ifindex), ifaceLayout.encode({ kind: IfaceKind.VIF, net_id: spec.netId, link_slot: spec.linkSlot, seg_ifindex: spec.segIfindex, seg_vlan: spec.segVlan, flags }));
    this.txPorts.update(u32Key(ifindex), u32Key(ifindex));
  }

  removeInterface(ifindex: number): void {
    this.ifaces.delete(u32Key(ifindex));
    this.txPorts.delete(u32Key(ifindex));
  }

  private classifyKey(ifindex: number, vlan: number, mac: Mac): Buffer {
    if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094) throw new ValidationError('vlan', `VLAN ${vlan} must be 0..4094`);
    return classifyKeyLayout.encode({ ifindex, vlan, mac: [...macBytes(mac)] });
  }

  /**
   * Paper IV: classification of a physical segment's frames to a network, by the router's MAC.
   * With a vif, the MAC also becomes one its router may send from (anti-spoofing), and on a
   * VLAN the network receives the VLAN's broadcasts and multicasts unless another network
   * shares the VLAN (then nobody does: a frame never reaches another network's router).
   */
  setAttachment(spec: AttachmentSpec): void {
    this.network(spec.netId);
    const key = this.classifyKey(spec.ifindex, spec.vlan, spec.mac);
    const current = this.classify.lookup(key);
    if (current) {
      const owner = classifyValLayout.decode(current).net_id as number;
      if (owner !== spec.netId) throw new DuplicateAttachmentError(`attachment ifindex ${spec.ifindex} vlan ${spec.vlan} mac ${spec.mac}`, owner);
    }
    const value = classifyValLayout.encode({ net_id: spec.netId, vif_ifindex: spec.vifIfindex });
    if (spec.vifIfindex) this.lockVifMac(spec.vifIfindex, spec.mac, spec.netId);
    this.classify.update(key, value);
    if (spec.vlan) this.setVlanGroup(spec.ifindex, spec.vlan);
    this.bumpGeneration();
  }

  removeAttachment(ifindex: number, vlan: number, mac: Mac): boolean {
    const key = this.classifyKey(ifindex, vlan, mac);
    const current = this.classify.lookup(key);
    const removed = this.classify.delete(key);
    if (current) {
      const vif = classifyValLayout.decode(current).vif_ifindex as number;
      if (vif) this.vifMacs.delete(vifMacKeyLayout.encode({ ifindex: vif, mac: [...macBytes(mac)] }));
    }
    if (vlan) this.setVlanGroup(ifindex, vlan);
    this.bumpGeneration();
    return removed;
  }

  private lockVifMac(vif: number, mac: Mac, netId: number): void {
    this.vifMacs.update(vifMacKeyLayout.encode({ ifindex: vif, mac: [...macBytes(mac)] }), u32Key(netId));
    const iface = this.ifaces.lookup(u32Key(vif));
    if (!iface) return;
    const d = ifaceLayout.decode(iface);
    this.ifaces.update(u32Key(vif), ifaceLayout.encode({ ...d, flags: (d.flags as number) | IfaceFlags.MAC_LOCKED }));
  }

  /** The VLAN's group entry (all-zero MAC): its one network's vif, or none when networks share the VLAN. */
  private setVlanGroup(ifindex: number, vlan: number): void {
    const owners = new Map<number, number>();
    for (const k of this.classify.keys()) {
      const key = classifyKeyLayout.decode(k);
      const mac = key.mac as number[];
      if (key.ifindex !== ifindex || key.vlan !== vlan || mac.every((b) => b === 0)) continue;
      const v = this.classify.lookup(k);
      if (!v) continue;
      const d = classifyValLayout.decode(v);
      if (d.vif_ifindex) owners.set(d.net_id as number, d.vif_ifindex as number);
    }
    const group = this.classifyKey(ifindex, vlan, '00:00:00:00:00:00');
    const [only] = owners;
    if (owners.size === 1) this.classify.update(group, classifyValLayout.encode({ net_id: only[0], vif_ifindex: only[1] }));
    else this.classify.delete(group);
  }

  /** The host's own MAC on a segment (its bridge): frames to it are the host's. */
  setHostMac(ifindex: number, vlan: number, mac: Mac): void {
    this.classify.update(this.classifyKey(ifindex, vlan, mac), classifyValLayout.encode({ net_id: 0, vif_ifindex: 0 }));
    this.bumpGeneration();
  }

  // ---- attach ------------------------------------------------------------------------

  private linkPin(kind: LinkPinKind, ifname: string): string | undefined {
    return this.pinDir ? join(this.pinDir, 'links', linkPinName(kind, ifname)) : undefined;
  }

  /** XDP (fast path) and TC egress (link accounting) on a physical interface. */
  attachPhysical(ifname: string, modes: AttachModes = {}): Attachment[] {
    const ifindex = ifindexOf(ifname);
    return [
      attachXdp(this.object.program('xnm_phys_in'), ifindex, { mode: modes.xdp ?? 'auto', pinPath: this.linkPin('xdp', ifname) }),
      attachTc(this.object.program('xnm_link_out'), ifindex, 'tc-egress', { mode: modes.tc ?? 'auto', pinPath: this.linkPin('tc', ifname) }),
    ];
  }

  attachVif(ifname: string, modes: AttachModes = {}): Attachment {
    return attachXdp(this.object.program('xnm_vif_in'), ifindexOf(ifname), { mode: modes.xdp ?? 'auto', pinPath: this.linkPin('xdp', ifname) });
  }

  /** Removes our programs from an interface (pinned links, and a cls_bpf filter on older kernels). */
  detach(ifname: string): void {
    const xdp = this.linkPin('xdp', ifname);
    if (xdp) detachPinned(xdp);
    const ifindex = interfaceIndex(ifname);
    detachTc(ifindex, 'tc-egress', this.linkPin('tc', ifname));
  }

  /** What runs on an interface, as the kernel reports it: XDP mode and TC mode. */
  attachedModes(ifname: string): { xdp: string; tc: string } {
    const ifindex = interfaceIndex(ifname);
    if (!ifindex) return { xdp: 'none', tc: 'none' };
    return { xdp: xdpModeOf(ifindex), tc: tcModeOf(ifindex, 'tc-egress', this.linkPin('tc', ifname)) };
  }

  // ---- next hops -------------------------------------------------------------------------

  private adoptNexthops(): void {
    // After a restart the pinned next hops are authoritative: rebuild the index.
    const { keys, values, count } = this.nexthopMap.lookupAll(8192);
    let highest = 0;
    for (let i = 0; i < count; i++) {
      const id = keys.readUInt32LE(i * 4);
      const nh = nexthopLayout.decode(values, i * this.nexthopMap.valueBufferSize);
      if (!((nh.flags as number) & NEXTHOP_VALID)) continue;
      const identity = this.nexthopIdentity({
        netId: nh.net_id as number, ifindex: nh.ifindex as number, linkSlot: nh.link_slot as number, vlan: nh.vlan as number,
        smac: macString(nh.smac as number[]), dmac: macString(nh.dmac as number[]),
      });
      this.nexthopIds.set(identity, id);
      this.nexthopIdentities.set(id, identity);
      highest = Math.max(highest, id);
    }
    this.nextNexthop = highest + 1;
  }

  private nexthopIdentity(spec: NexthopSpec): string {
    return `${spec.netId}|${spec.ifindex}|${spec.vlan}|${spec.smac}|${spec.dmac}|${spec.linkSlot}`;
  }

  /** The id of a next hop with these fields, created when new. */
  nexthop(spec: NexthopSpec): number {
    checkNetId(spec.netId);
    const identity = this.nexthopIdentity(spec);
    const existing = this.nexthopIds.get(identity);
    if (existing !== undefined) return existing;
    // A full table or a failed write uses up no id: the next call finds the same one free.
    const recycled = this.freeNexthops.pop();
    const id = recycled ?? this.nextNexthop;
    if (id >= MAX_NEXTHOPS) throw new MapFullError('xnm_nexthops', 28);
    try {
      this.nexthopMap.update(u32Key(id), nexthopLayout.encode({
        ifindex: spec.ifindex, net_id: spec.netId, link_slot: spec.linkSlot, vlan: spec.vlan, flags: NEXTHOP_VALID,
        smac: [...macBytes(spec.smac)], dmac: [...macBytes(spec.dmac)], mtu: linkMtu(spec.ifindex),
      }));
    } catch (error) {
      if (recycled !== undefined) this.freeNexthops.push(recycled);
      throw error;
    }
    if (recycled === undefined) this.nextNexthop++;
    this.nexthopIds.set(identity, id);
    this.nexthopIdentities.set(id, identity);
    return id;
  }

  releaseNexthop(id: number): void {
    const identity = this.nexthopIdentities.get(id);
    if (identity === undefined) return;
    this.nexthopMap.update(u32Key(id), Buffer.alloc(nexthopLayout.size));
    this.nexthopIds.delete(identity);
    this.nexthopIdentities.delete(id);
    this.freeNexthops.push(id);
  }

  private checkNexthop(netId: number, id: number, path: string): void {
    const value = this.nexthopMap.lookup(u32Key(id));
    const nh = value && nexthopLayout.decode(value);
    if (!nh || !((nh.flags as number) & NEXTHOP_VALID)) throw new ValidationError(path, `next hop ${id} does not exist`);
    if (nh.net_id !== netId) throw new ValidationError(path, `next hop ${id} belongs to network ${nh.net_id}, not ${netId}`);
  }

  // ---- routes -------------------------------------------------------------------------------

  private routeValue(target: RouteTarget): Buffer {
    switch (target.kind) {
      case 'nexthop': return routeValLayout.encode({ nexthop_id: target.nexthopId, flags: 0 });
      case 'via-vm': return routeValLayout.encode({ flags: RouteFlags.VIA_VM });
      case 'local': return routeValLayout.encode({ flags: RouteFlags.LOCAL });
      case 'blackhole': return routeValLayout.encode({ flags: RouteFlags.BLACKHOLE });
    }
  }

  private routeKey(netId: number, p: Prefix): Buffer {
    return p.family === 4
      ? route4KeyLayout.encode({ prefixlen: 32 + p.length, net_id: netId, addr: p.addr.readUInt32BE(0) })
      : route6KeyLayout.encode({ prefixlen: 32 + p.length, net_id: netId, addr: [...p.addr] });
  }

  /**
   * Adds or replaces routes of one network. Every route is validated before the
   * maps are touched: one bad route rejects the whole call and changes nothing.
   */
  addRoutes(netId: number, routes: readonly RouteSpec[]): void {
    this.network(netId);
    const parsed = routes.map((r, i) => {
      const p = typeof r.prefix === 'string' ? parsePrefix(r.prefix, `routes[${i}].prefix`) : r.prefix;
      if (r.target.kind === 'nexthop') this.checkNexthop(netId, r.target.nexthopId, `routes[${i}].nexthop`);
      return { p, value: this.routeValue(r.target) };
    });
    for (const family of [4, 6] as const) {
      const batch = parsed.filter((r) => r.p.family === family);
      if (!batch.length) continue;
      const map = family === 4 ? this.routes4 : this.routes6;
      const keys = Buffer.concat(batch.map((r) => this.routeKey(netId, r.p)));
      const values = Buffer.concat(batch.map((r) => r.value));
      this.writeAtomically(map, keys, values, batch.length);
    }
  }

  /**
   * Batch write that leaves the map as it was when the kernel refuses part of it:
   * previous values are read first and put back (small batches: incremental updates).
   */
  /** Invalidates every flow cache slot of the data plane: call after every change of a route, a classification entry or a filter. */
  private bumpGeneration(): void {
    const key = u32Key(0);
    const current = this.generation.lookup(key)?.readBigUInt64LE(0) ?? 0n;
    const next = Buffer.alloc(8);
    next.writeBigUInt64LE(current + 1n);
    this.generation.update(key, next);
  }

  private writeAtomically(map: BpfMap, keys: Buffer, values: Buffer, count: number): void {
    try {
      this.writeBatch(map, keys, values, count);
    } finally {
      this.bumpGeneration();
    }
  }

  private writeBatch(map: BpfMap, keys: Buffer, values: Buffer, count: number): void {
    const previous: (Buffer | undefined)[] = [];
    const ks = map.keySize;
    if (count <= 4096) for (let i = 0; i < count; i++) previous.push(map.lookup(keys.subarray(i * ks, (i + 1) * ks)));
    try {
      map.updateBatch(keys, values, count, 262144);
    } catch (err) {
      for (let i = 0; i < count; i++) {
        const key = keys.subarray(i * ks, (i + 1) * ks);
        const old = previous[i];
        if (old) map.update(key, old);
        else map.delete(key);
      }
      throw err;
    }
  }

  /** Full IPv4 tables: columns in, one batch syscall per 256k routes. */
  addRoutes4(netId: number, columns: Route4Columns): void {
    this.network(netId);
    const { count } = columns;
    // Typed-array views write the 12-byte keys and 8-byte values without per-field calls:
    // a million routes encode in ~15 ms. Keys are host-order words but for the address.
    const keyWords = new Uint32Array(count * 3);
    const valueWords = new Uint32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const len = columns.lengths[i];
      const addr = columns.addrs[i] >>> 0;
      if (len > 32) throw new ValidationError(`routes[${i}]`, `prefix length ${len} must be 0..32`);
      if (len < 32 && (addr & (0xffffffff >>> len)) !== 0) throw new ValidationError(`routes[${i}]`, `host bits set in ${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${len}`);
      keyWords[i * 3] = 32 + len;
      keyWords[i * 3 + 1] = netId;
      keyWords[i * 3 + 2] = ((addr & 0xff) << 24 | (addr & 0xff00) << 8 | (addr >>> 8) & 0xff00 | addr >>> 24) >>> 0; // to network order
      valueWords[i * 2] = columns.nexthops[i];
      valueWords[i * 2 + 1] = columns.flags ? columns.flags[i] : 0;
    }
    const keys = Buffer.from(keyWords.buffer, 0, count * 12);
    const values = Buffer.from(valueWords.buffer, 0, count * 8);
    this.writeAtomically(this.routes4, keys, values, count);
  }

  /** Removes routes; absent ones are ignored. Returns how many were removed. */
  deleteRoutes(netId: number, prefixes: readonly (string | Prefix)[]): number {
    this.network(netId);
    const parsed = prefixes.map((p, i) => (typeof p === 'string' ? parsePrefix(p, `prefixes[${i}]`) : p));
    let removed = 0;
    try {
      for (const p of parsed) if ((p.family === 4 ? this.routes4 : this.routes6).delete(this.routeKey(netId, p))) removed++;
    } finally {
      this.bumpGeneration();
    }
    return removed;
  }

  /** The routes of one network (or all), read from the maps. */
  listRoutes(netId?: number): { netId: number; prefix: string; target: RouteTarget }[] {
    const out: { netId: number; prefix: string; target: RouteTarget }[] = [];
    for (const [map, layout, family] of [[this.routes4, route4KeyLayout, 4], [this.routes6, route6KeyLayout, 6]] as const) {
      for (const key of map.keys()) {
        const k = layout.decode(key);
        if (netId !== undefined && k.net_id !== netId) continue;
        const value = map.lookup(key);
        if (!value) continue;
        const v = routeValLayout.decode(value);
        const addr = family === 4 ? (() => { const b = Buffer.alloc(4); b.writeUInt32BE(k.addr as number); return b; })() : Buffer.from(k.addr as number[]);
        const flags = v.flags as number;
        const target: RouteTarget = flags & RouteFlags.BLACKHOLE ? { kind: 'blackhole' } : flags & RouteFlags.LOCAL ? { kind: 'local' } : flags & RouteFlags.VIA_VM ? { kind: 'via-vm' } : { kind: 'nexthop', nexthopId: v.nexthop_id as number };
        out.push({ netId: k.net_id as number, prefix: formatPrefix({ family, addr, length: (k.prefixlen as number) - 32 }), target });
      }
    }
    return out;
  }

  /** Removes every route of a network (or of all networks). */
  flushRoutes(netId?: number): number {
    let removed = 0;
    for (const map of [this.routes4, this.routes6]) {
      const doomed = [...map.keys()].filter((k) => netId === undefined || k.readUInt32LE(4) === netId);
      for (const k of doomed) if (map.delete(k)) removed++;
    }
    this.bumpGeneration();
    return removed;
  }

  // ---- reconciliation -------------------------------------------------------------------------------

  /**
   * The network ids that hold anything in the maps (classification, vifs, next hops, routes),
   * whether defined in this process or left by an earlier daemon: what start-up compares with
   * the configuration.
   */
  networkIdsInMaps(): Set<number> {
    const ids = new Set<number>();
    for (const k of this.classify.keys()) {
      const v = this.classify.lookup(k);
      if (v) ids.add(classifyValLayout.decode(v).net_id as number);
    }
    for (const k of this.ifaces.keys()) {
      const v = this.ifaces.lookup(k);
      const d = v && ifaceLayout.decode(v);
      if (d && d.kind === IfaceKind.VIF) ids.add(d.net_id as number);
    }
    for (const id of this.nexthopIdentities.keys()) {
      const v = this.nexthopMap.lookup(u32Key(id));
      if (v) ids.add(nexthopLayout.decode(v).net_id as number);
    }
    for (const map of [this.routes4, this.routes6]) for (const k of map.keys()) ids.add(k.readUInt32LE(4));
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
    let entries = 0;
    for (const k of [...this.classify.keys()]) {
      const v = this.classify.lookup(k);
      if (v && classifyValLayout.decode(v).net_id === netId && this.classify.delete(k)) entries++;
    }
    for (const k of [...this.vifMacs.keys()]) {
      const v = this.vifMacs.lookup(k);
      if (v && v.readUInt32LE(0) === netId && this.vifMacs.delete(k)) entries++;
    }
    const vifs: number[] = [];
    for (const k of [...this.ifaces.keys()]) {
      const v = this.ifaces.lookup(k);
      const d = v && ifaceLayout.decode(v);
      if (d && d.kind === IfaceKind.VIF && d.net_id === netId) {
        vifs.push(k.readUInt32LE(0));
        this.removeInterface(k.readUInt32LE(0));
        entries++;
      }
    }
    for (const map of [this.routes4, this.routes6]) {
      for (const k of [...map.keys()].filter((key) => key.readUInt32LE(4) === netId)) if (map.delete(k)) entries++;
    }
    for (const id of [...this.nexthopIdentities.keys()]) {
      const v = this.nexthopMap.lookup(u32Key(id));
      if (v && nexthopLayout.decode(v).net_id === netId) {
        this.releaseNexthop(id);
        entries++;
      }
    }
    for (let i = 0; i < MAX_FILTER_RULES; i++) this.filters.update(u32Key(netId * MAX_FILTER_RULES + i), Buffer.alloc(filterRuleLayout.size));
    this.drops.update(u32Key(netId), Buffer.alloc(dropLayout.size));
    this.networks.delete(netId);
    this.bumpGeneration();
    return { vifs, entries };
  }

  // ---- filter ------------------------------------------------------------------------------------

  /** Paper IV-B: replaces a network's replicated filter (first match wins). */
  setFilter(netId: number, rules: readonly FilterRuleSpec[]): void {
    this.network(netId);
    if (rules.length > MAX_FILTER_RULES) throw new ValidationError('filter', `${rules.length} rules; at most ${MAX_FILTER_RULES} per network`);
    const encoded = rules.map((r, i) => encodeRule(r, `filter[${i}]`));
    try {
      for (let i = 0; i < MAX_FILTER_RULES; i++) {
        this.filters.update(u32Key(netId * MAX_FILTER_RULES + i), encoded[i] ?? Buffer.alloc(filterRuleLayout.size));
      }
    } finally {
      this.bumpGeneration(); // a cached slot remembers whether its network had rules
    }
  }

  // ---- punishment ----------------------------------------------------------------------------------

  setDrops(netId: number, drops: DropProbabilities): void {
    checkNetId(netId);
    const value = dropLayout.encode({ cpu: probabilityToThreshold(drops.cpu), residual: probabilityToThreshold(drops.residual), link: drops.links.map(probabilityToThreshold) });
    this.drops.update(u32Key(netId), value);
  }

  /** Many networks at once: one syscall (the controller's write each period). */
  setDropsBatch(entries: readonly { netId: number; drops: DropProbabilities }[]): void {
    const keys = new Uint32Array(entries.length);
    const words = dropLayout.size >> 2;
    const values = new Uint32Array(entries.length * words);
    const oLink = dropLayout.field('link').offset >> 2;
    entries.forEach((e, i) => {
      checkNetId(e.netId);
      keys[i] = e.netId;
      values[i * words] = probabilityToThreshold(e.drops.cpu);
      values[i * words + 1] = probabilityToThreshold(e.drops.residual);
      const links = e.drops.links;
      for (let l = 0; l < links.length && l < MAX_LINKS; l++) values[i * words + oLink + l] = probabilityToThreshold(links[l]);
    });
    this.drops.updateBatch(Buffer.from(keys.buffer), Buffer.from(values.buffer), entries.length);
  }

  readDrops(netId: number): DropProbabilities {
    const d = dropLayout.decode(this.drops.lookup(u32Key(netId)) ?? Buffer.alloc(dropLayout.size));
    return { cpu: thresholdToProbability(d.cpu as number), residual: thresholdToProbability(d.residual as number), links: (d.link as number[]).map(thresholdToProbability) };
  }

  // ---- counters ---------------------------------------------------------------------------------------

  /** Counters of the given networks (all defined ones, plus 0, by default), summed over CPUs. */
  readCounters(netIds?: readonly number[]): NetCounters[] {
    return readCountersFrom(this.stats, netIds ?? [0, ...this.networks.keys()]);
  }

  readUsage(netIds: readonly number[]): UsageColumns {
    return readUsageFrom(this.stats, netIds);
  }
}

/** What the controller reads each period, as plain numbers (cumulative). */
export interface UsageColumns {
  cpuOffered: Float64Array;
  cpuCarried: Float64Array;
  /** [i * MAX_LINKS + slot] */
  linkOffered: Float64Array;
  linkCarried: Float64Array;
}

/**
 * The controller's fast read: one batch syscall for ids 0..max, then summing the
 * few fields it needs over CPUs through 32-bit views (no BigInt): ~1 ms for 1,000 networks.
 */
export function readUsageFrom(stats: BpfMap, ids: readonly number[]): UsageColumns {
  const maxId = ids.reduce((m, id) => Math.max(m, id), 0);
  const values = stats.lookupPrefix(maxId + 1);
  const words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength >> 2);
  const stride = stats.valueBufferSize >> 2;
  const cpuStride = (Math.ceil(stats.valueSize / 8) * 8) >> 2;
  const cpus = stride / cpuStride;
  const oCo = netStatsLayout.field('cpu_offered').offset >> 2;
  const oCc = netStatsLayout.field('cpu_carried').offset >> 2;
  const oLo = netStatsLayout.field('link_offered').offset >> 2;
  const oLc = netStatsLayout.field('link_carried').offset >> 2;
  const u64 = (at: number): number => words[at] + words[at + 1] * 4294967296;
  const out: UsageColumns = {
    cpuOffered: new Float64Array(ids.length), cpuCarried: new Float64Array(ids.length),
    linkOffered: new Float64Array(ids.length * MAX_LINKS), linkCarried: new Float64Array(ids.length * MAX_LINKS),
  };
  ids.forEach((id, i) => {
    if (id * stride >= words.length) return;
    for (let c = 0; c < cpus; c++) {
      const base = id * stride + c * cpuStride;
      out.cpuOffered[i] += u64(base + oCo);
      out.cpuCarried[i] += u64(base + oCc);
      for (let l = 0; l < MAX_LINKS; l++) {
        out.linkOffered[i * MAX_LINKS + l] += u64(base + oLo + l * 2);
        out.linkCarried[i * MAX_LINKS + l] += u64(base + oLc + l * 2);
      }
    }
  });
  return out;
}

/** Counters of the given networks from an xnm_stats map, summed over CPUs. */
export function readCountersFrom(stats: BpfMap, ids: readonly number[]): NetCounters[] {
  const out: NetCounters[] = [];
  // One batch read of the whole per-CPU array is cheaper than one syscall per network.
  const all = ids.length > 8 ? stats.lookupAll(MAX_NETS) : undefined;
  for (const id of ids) {
    const value = all ? all.values.subarray(id * stats.valueBufferSize, (id + 1) * stats.valueBufferSize) : stats.lookup(u32Key(id));
    out.push(sumCounters(id, value ? stats.perCpuSlices(value) : []));
  }
  return out;
}

/** Counters read from a pinned data plane without loading anything (CLI, tests). */
export function readPinnedCounters(pinDir: string, ids: readonly number[]): NetCounters[] {
  const stats = BpfMap.fromPin(join(pinDir, 'xnm_stats'));
  try {
    return readCountersFrom(stats, ids);
  } finally {
    stats.close();
  }
}

function encodeRule(rule: FilterRuleSpec, path: string): Buffer {
  const words = (text: string | undefined, field: string): { addr: number[]; mask: number[] } => {
    if (!text) return { addr: [0, 0, 0, 0], mask: [0, 0, 0, 0] };
    const p = parsePrefix(text, `${path}.${field}`);
    if (p.family !== rule.family) throw new ValidationError(`${path}.${field}`, `${text} is not IPv${rule.family}`);
    const addr = [0, 0, 0, 0];
    const mask = [0, 0, 0, 0];
    for (let w = 0; w < p.addr.length / 4; w++) {
      addr[w] = p.addr.readUInt32BE(w * 4);
      const bits = Math.max(0, Math.min(32, p.length - w * 32));
      mask[w] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    }
    return { addr, mask };
  };
  const range = (r: [number, number] | undefined, field: string): [number, number] => {
    if (!r) return [0, 0xffff];
    if (!(Number.isInteger(r[0]) && Number.isInteger(r[1]) && r[0] >= 0 && r[1] <= 0xffff && r[0] <= r[1])) throw new ValidationError(`${path}.${field}`, `port range ${r[0]}-${r[1]} is invalid`);
    return r;
  };
  const src = words(rule.src, 'src');
  const dst = words(rule.dst, 'dst');
  const sport = range(rule.sport, 'sport');
  const dport = range(rule.dport, 'dport');
  return filterRuleLayout.encode({
    family: rule.family, proto: rule.proto ?? 0, action: rule.action === 'drop' ? 1 : 0,
    sport_lo: sport[0], sport_hi: sport[1], dport_lo: dport[0], dport_hi: dport[1],
    src: src.addr, src_mask: src.mask, dst: dst.addr, dst_mask: dst.mask,
  });
}

function sumCounters(netId: number, slices: Buffer[]): NetCounters {
  const verdict = new Array<bigint>(REASONS.length).fill(0n);
  const pathPackets = new Array<bigint>(PATHS.length).fill(0n);
  const pathBytes = new Array<bigint>(PATHS.length).fill(0n);
  const linkOffered = new Array<bigint>(MAX_LINKS).fill(0n);
  const linkCarried = new Array<bigint>(MAX_LINKS).fill(0n);
  let cpuOffered = 0n;
  let cpuCarried = 0n;
  const f = (name: string): number => netStatsLayout.field(name).offset;
  const oVerdict = f('verdict'), oPp = f('path_packets'), oPb = f('path_bytes'), oCo = f('cpu_offered'), oCc = f('cpu_carried'), oLo = f('link_offered'), oLc = f('link_carried');
  for (const s of slices) {
    for (let i = 0; i < REASONS.length; i++) verdict[i] += s.readBigUInt64LE(oVerdict + i * 8);
    for (let i = 0; i < PATHS.length; i++) {
      pathPackets[i] += s.readBigUInt64LE(oPp + i * 8);
      pathBytes[i] += s.readBigUInt64LE(oPb + i * 8);
    }
    cpuOffered += s.readBigUInt64LE(oCo);
    cpuCarried += s.readBigUInt64LE(oCc);
    for (let i = 0; i < MAX_LINKS; i++) {
      linkOffered[i] += s.readBigUInt64LE(oLo + i * 8);
      linkCarried[i] += s.readBigUInt64LE(oLc + i * 8);
    }
  }
  return {
    netId,
    verdicts: Object.fromEntries(REASONS.map((r, i) => [r, verdict[i]])) as Record<ReasonName, bigint>,
    pathPackets: Object.fromEntries(PATHS.map((p, i) => [p, pathPackets[i]])) as Record<PathName, bigint>,
    pathBytes: Object.fromEntries(PATHS.map((p, i) => [p, pathBytes[i]])) as Record<PathName, bigint>,
    cpuOffered, cpuCarried, linkOffered, linkCarried,
  };
}
