// The data plane's topology as plain data (interfaces, classification, the MACs each vif may
// send from, the addresses each network's routers own on a segment), read from the maps, compared with what a configuration declares, and converged
// with an undo log: the reconciliation of start-up, reload and live changes (the Kubernetes
// controller pattern). Entries that already hold the wanted value are never written, so an
// unchanged network's forwarding never stops; an entry that moves from one network to another
// is overwritten in place (no window where nobody owns it).
import {
  classifyKeyLayout,
  classifyValLayout,
  filterRuleLayout,
  ifaceLayout,
  segAddrKeyLayout,
  vifMacKeyLayout,
  IfaceKind,
  IfaceFlags,
  MAX_FILTER_RULES,
  type BpfMap,
} from '../loader/index.js';
import { formatAddress, parseAddress } from '../net/index.js';
import { macBytes, macString } from '../packet/index.js';
import type { DataPlane } from './dataplane.js';

/** An xnm_ifaces entry: a physical link or a virtual router's vif. */
export interface IfaceEntry {
  readonly kind: 'phys' | 'vif';
  readonly netId: number;
  readonly linkSlot: number;
  readonly segIfindex: number;
  readonly segVlan: number;
  readonly macLocked: boolean;
}

/** An xnm_classify entry: (ifindex, vlan, mac) -> network (0: the host's own) and its vif. */
export interface ClassifyEntry {
  readonly ifindex: number;
  readonly vlan: number;
  /** Lower-case; all zeros for a VLAN's group entry (its broadcasts and multicasts). */
  readonly mac: string;
  readonly netId: number;
  readonly vifIfindex: number;
}

/** An xnm_vif_macs entry: a MAC a vif's router may send from, and its network. */
export interface VifMacEntry {
  readonly ifindex: number;
  readonly mac: string;
  readonly netId: number;
}

/** An xnm_seg_addrs entry: an address a network's routers own on a segment (ARP and ND anti-spoofing). */
export interface SegAddrEntry {
  readonly ifindex: number;
  readonly vlan: number;
  /** As formatAddress writes it (one text per address). */
  readonly address: string;
  readonly netId: number;
}

/** Interfaces by ifindex; classification, vif MACs and segment addresses by `entryKey`. */
export interface TopologyState {
  readonly ifaces: Map<number, IfaceEntry>;
  readonly classify: Map<string, ClassifyEntry>;
  readonly vifMacs: Map<string, VifMacEntry>;
  readonly segAddrs: Map<string, SegAddrEntry>;
}

export function emptyTopology(): TopologyState {
  return { ifaces: new Map(), classify: new Map(), vifMacs: new Map(), segAddrs: new Map() };
}

export function classifyEntryKey(e: { ifindex: number; vlan: number; mac: string }): string {
  return `${e.ifindex}/${e.vlan}/${e.mac.toLowerCase()}`;
}

export function vifMacEntryKey(e: { ifindex: number; mac: string }): string {
  return `${e.ifindex}/${e.mac.toLowerCase()}`;
}

/** An address in the one text form the maps are compared in ("10.1.0.1", "fe80::1"); `path` names it in errors. */
export function canonicalAddress(text: string, path = 'address'): string {
  return formatAddress(parseAddress(text, path).bytes);
}

export function segAddrEntryKey(e: { ifindex: number; vlan: number; address: string }): string {
  return `${e.ifindex}/${e.vlan}/${e.address}`;
}

export type TopologyMap = 'ifaces' | 'classify' | 'vifMacs' | 'segAddrs';

/** One write of a plan: `before` absent means an add, `after` absent a delete. */
export type TopologyOp =
  | { readonly map: 'ifaces'; readonly key: number; readonly before?: IfaceEntry; readonly after?: IfaceEntry }
  | { readonly map: 'classify'; readonly key: string; readonly before?: ClassifyEntry; readonly after?: ClassifyEntry }
  | { readonly map: 'vifMacs'; readonly key: string; readonly before?: VifMacEntry; readonly after?: VifMacEntry }
  | { readonly map: 'segAddrs'; readonly key: string; readonly before?: SegAddrEntry; readonly after?: SegAddrEntry };

export interface TopologyPlan {
  /** In the order they must be written (see planTopology). */
  readonly ops: readonly TopologyOp[];
  /** Entries that already hold the wanted value: left untouched. */
  readonly unchanged: number;
}

function sameEntry(a: object, b: object): boolean {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  return Object.keys(x).length === Object.keys(y).length && Object.keys(x).every((k) => x[k] === y[k]);
}

/**
 * The writes that turn `actual` into `desired`, ordered so that no frame meets a half-made
 * state: new interfaces first (before anything classifies to them), then the MACs vifs may
 * send from, then changed interfaces (a vif is locked only once its MACs are there), then
 * classification, then the addresses routers own (an address moving between networks is one
 * in-place write); removals last, in the reverse order.
 */
export function planTopology(actual: TopologyState, desired: TopologyState): TopologyPlan {
  let unchanged = 0;
  const diff = <K, V extends object>(map: TopologyMap, a: Map<K, V>, d: Map<K, V>) => {
    const adds: TopologyOp[] = [];
    const changes: TopologyOp[] = [];
    const deletes: TopologyOp[] = [];
    for (const [key, after] of d) {
      const before = a.get(key);
      if (!before) adds.push({ map, key, after } as unknown as TopologyOp);
      else if (!sameEntry(before, after)) changes.push({ map, key, before, after } as unknown as TopologyOp);
      else unchanged++;
    }
    for (const [key, before] of a) if (!d.has(key)) deletes.push({ map, key, before } as unknown as TopologyOp);
    return { adds, changes, deletes };
  };
  const ifaces = diff('ifaces', actual.ifaces, desired.ifaces);
  const macs = diff('vifMacs', actual.vifMacs, desired.vifMacs);
  const classify = diff('classify', actual.classify, desired.classify);
  const addrs = diff('segAddrs', actual.segAddrs, desired.segAddrs);
  return {
    ops: [
      ...ifaces.adds,
      ...macs.adds,
      ...macs.changes,
      ...ifaces.changes,
      ...classify.adds,
      ...classify.changes,
      ...addrs.adds,
      ...addrs.changes,
      ...addrs.deletes,
      ...classify.deletes,
      ...macs.deletes,
      ...ifaces.deletes,
    ],
    unchanged,
  };
}

/** Counts of a plan's writes by map and kind, for status and logs. */
export type PlanCounts = Record<TopologyMap, { add: number; change: number; remove: number }>;

export function summarizePlan(plan: TopologyPlan): PlanCounts {
  const none = () => ({ add: 0, change: 0, remove: 0 });
  const out: PlanCounts = { ifaces: none(), classify: none(), vifMacs: none(), segAddrs: none() };
  for (const op of plan.ops) out[op.map][!op.before ? 'add' : !op.after ? 'remove' : 'change']++;
  return out;
}

interface TopologyMaps {
  ifaces: BpfMap;
  txPorts: BpfMap;
  classify: BpfMap;
  vifMacs: BpfMap;
  segAddrs: BpfMap;
  generation: BpfMap;
}

function mapsOf(dp: DataPlane): TopologyMaps {
  const m = (name: string): BpfMap => dp.object.map(name);
  return {
    ifaces: m('xnm_ifaces'),
    txPorts: m('xnm_tx_ports'),
    classify: m('xnm_classify'),
    vifMacs: m('xnm_vif_macs'),
    segAddrs: m('xnm_seg_addrs'),
    generation: m('xnm_route_gen'),
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** What the maps hold now, whoever wrote it (this process, an earlier daemon, a crashed change). */
export function readTopology(dp: DataPlane): TopologyState {
  const maps = mapsOf(dp);
  const state = emptyTopology();
  for (const k of maps.ifaces.keys()) {
    const v = maps.ifaces.lookup(k);
    if (!v) continue;
    const d = ifaceLayout.decode(v);
    if (d.kind !== IfaceKind.PHYS && d.kind !== IfaceKind.VIF) continue;
    state.ifaces.set(k.readUInt32LE(0), {
      kind: d.kind === IfaceKind.PHYS ? 'phys' : 'vif',
      netId: d.net_id as number,
      linkSlot: d.link_slot as number,
      segIfindex: d.seg_ifindex as number,
      segVlan: d.seg_vlan as number,
      macLocked: ((d.flags as number) & IfaceFlags.MAC_LOCKED) !== 0,
    });
  }
  for (const k of maps.classify.keys()) {
    const v = maps.classify.lookup(k);
    if (!v) continue;
    const key = classifyKeyLayout.decode(k);
    const val = classifyValLayout.decode(v);
    const entry: ClassifyEntry = {
      ifindex: key.ifindex as number,
      vlan: key.vlan as number,
      mac: macString(key.mac as number[]),
      netId: val.net_id as number,
      vifIfindex: val.vif_ifindex as number,
    };
    state.classify.set(classifyEntryKey(entry), entry);
  }
  for (const k of maps.vifMacs.keys()) {
    const v = maps.vifMacs.lookup(k);
    if (!v) continue;
    const key = vifMacKeyLayout.decode(k);
    const entry: VifMacEntry = {
      ifindex: key.ifindex as number,
      mac: macString(key.mac as number[]),
      netId: v.readUInt32LE(0),
    };
    state.vifMacs.set(vifMacEntryKey(entry), entry);
  }
  for (const k of maps.segAddrs.keys()) {
    const v = maps.segAddrs.lookup(k);
    if (!v) continue;
    const key = segAddrKeyLayout.decode(k);
    const bytes = Buffer.from(key.addr as number[]).subarray(0, key.family === 4 ? 4 : 16);
    const entry: SegAddrEntry = {
      ifindex: key.ifindex as number,
      vlan: key.vlan as number,
      address: formatAddress(bytes),
      netId: v.readUInt32LE(0),
    };
    state.segAddrs.set(segAddrEntryKey(entry), entry);
  }
  return state;
}

function writeOp(maps: TopologyMaps, op: TopologyOp, value: 'before' | 'after'): void {
  switch (op.map) {
    case 'ifaces': {
      const e = op[value];
      const key = u32(op.key);
      if (!e) {
        maps.ifaces.delete(key);
        maps.txPorts.delete(key);
        return;
      }
      maps.ifaces.update(
        key,
        ifaceLayout.encode({
          kind: e.kind === 'phys' ? IfaceKind.PHYS : IfaceKind.VIF,
          net_id: e.netId,
          link_slot: e.linkSlot,
          seg_ifindex: e.segIfindex,
          seg_vlan: e.segVlan,
          flags: e.macLocked ? IfaceFlags.MAC_LOCKED : 0,
        }),
      );
      maps.txPorts.update(key, key);
      return;
    }
    case 'classify': {
      const e = op[value] ?? op.before ?? op.after!;
      const key = classifyKeyLayout.encode({ ifindex: e.ifindex, vlan: e.vlan, mac: [...macBytes(e.mac)] });
      const now = op[value];
      if (now) maps.classify.update(key, classifyValLayout.encode({ net_id: now.netId, vif_ifindex: now.vifIfindex }));
      else maps.classify.delete(key);
      return;
    }
    case 'vifMacs': {
      const e = op.before ?? op.after!;
      const key = vifMacKeyLayout.encode({ ifindex: e.ifindex, mac: [...macBytes(e.mac)] });
      const now = op[value];
      if (now) maps.vifMacs.update(key, u32(now.netId));
      else maps.vifMacs.delete(key);
      return;
    }
    case 'segAddrs': {
      const e = op.before ?? op.after!;
      const { family, bytes } = parseAddress(e.address, 'address');
      const addr = [...bytes, ...new Array<number>(16 - bytes.length).fill(0)];
      const key = segAddrKeyLayout.encode({ ifindex: e.ifindex, vlan: e.vlan, family, addr });
      const now = op[value];
      if (now) maps.segAddrs.update(key, u32(now.netId));
      else maps.segAddrs.delete(key);
    }
  }
}

function bumpGeneration(maps: TopologyMaps): void {
  // Every flow cache slot remembers a classification: a new generation empties the cache.
  const key = u32(0);
  const next = Buffer.alloc(8);
  next.writeBigUInt64LE((maps.generation.lookup(key)?.readBigUInt64LE(0) ?? 0n) + 1n);
  maps.generation.update(key, next);
}

/** Puts back what a plan's applied writes replaced, newest first. */
export type TopologyUndo = () => void;

/**
 * Writes a plan. When a write fails, the writes made so far are undone (newest first) and the
 * error is thrown: the maps are as before. On success, returns the undo of the whole plan, for a
 * change that fails later (attaching a program, writing the file).
 */
export function applyTopologyPlan(dp: DataPlane, plan: TopologyPlan): TopologyUndo {
  const maps = mapsOf(dp);
  const done: TopologyOp[] = [];
  const undo = (): void => {
    for (const op of done.reverse()) writeOp(maps, op, 'before');
    done.length = 0;
    bumpGeneration(maps);
  };
  try {
    for (const op of plan.ops) {
      done.push(op); // pushed first: a failed update may have written part of what it touched
      writeOp(maps, op, 'after');
    }
  } catch (error) {
    undo();
    throw error;
  }
  if (plan.ops.length > 0) bumpGeneration(maps);
  return undo;
}

// ---- the filter's default -------------------------------------------------------------------------

/** A filter rule that drops every packet of one family: a "drop" filter_default (two, v4 and v6, end the filter). */
function dropAllRule(family: 4 | 6): Buffer {
  return filterRuleLayout.encode({
    family,
    proto: 0,
    action: 1,
    sport_lo: 0,
    sport_hi: 0xffff,
    dport_lo: 0,
    dport_hi: 0xffff,
  });
}

function filterSlots(dp: DataPlane, netId: number): { map: BpfMap; keys: Buffer[]; values: Buffer[] } {
  const map = dp.object.map('xnm_filters');
  const keys = Array.from({ length: MAX_FILTER_RULES }, (_, i) => u32(netId * MAX_FILTER_RULES + i));
  return { map, keys, values: keys.map((k) => map.lookup(k) ?? Buffer.alloc(filterRuleLayout.size)) };
}

/** Whether a network's filter in the maps holds any rule (its router sent one, or a default). */
export function filterHasRules(dp: DataPlane, netId: number): boolean {
  return filterSlots(dp, netId).values[0]![0] !== 0;
}

/** What a network's filter in the maps ends with: the drop-all pair of a "drop" default, or not. */
export function filterDefaultIn(dp: DataPlane, netId: number): 'drop' | 'accept' {
  const { values } = filterSlots(dp, netId);
  const used = values.filter((v) => v[0] !== 0); // family 0: an empty slot
  const n = used.length;
  return n >= 2 && used[n - 2]!.equals(dropAllRule(4)) && used[n - 1]!.equals(dropAllRule(6)) ? 'drop' : 'accept';
}

/**
 * Makes a network's filter end as its filter_default says (the router's own rules are kept: its
 * next FilterReplace rewrites them whole). Returns the undo, or undefined when nothing changed
 * or the filter has no room left for the pair.
 */
export function setFilterDefaultIn(dp: DataPlane, netId: number, wanted: 'drop' | 'accept'): TopologyUndo | undefined {
  if (filterDefaultIn(dp, netId) === wanted) return undefined;
  const { map, keys, values } = filterSlots(dp, netId);
  const used = values.filter((v) => v[0] !== 0);
  const next = wanted === 'drop' ? [...used, dropAllRule(4), dropAllRule(6)] : used.slice(0, -2);
  if (next.length > MAX_FILTER_RULES) return undefined;
  const maps = mapsOf(dp);
  const write = (slots: readonly Buffer[]): void => {
    keys.forEach((k, i) => {
      map.update(k, slots[i] ?? Buffer.alloc(filterRuleLayout.size));
    });
    bumpGeneration(maps); // a cached flow remembers whether its network had rules
  };
  try {
    write(next);
  } catch (error) {
    write(values);
    throw error;
  }
  return () => write(values);
}
