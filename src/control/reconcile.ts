// Reconciliation (the Kubernetes controller pattern; Cilium's state restore is the anchor): at
// start, on reload and on every live change, what the pinned maps and links hold is compared
// with what the configuration declares, and converged. What nothing declares goes (networks
// with their routes, next hops, filter and drops; interfaces, classification entries, vif MACs,
// programs on interfaces the config no longer names); what is missing is added; what already
// holds the wanted value is not written, so an unchanged network forwards throughout.
// Paper IV: the virtual network definition module keeps the networks from overlapping.
import type { XnetmonConfig } from '../config/index.js';
import { XnetmonError } from '../errors/index.js';
import {
  applyTopologyPlan,
  emptyTopology,
  canonicalAddress,
  classifyEntryKey,
  segAddrEntryKey,
  vifMacEntryKey,
  filterDefaultIn,
  filterHasRules,
  pinnedLinks,
  planTopology,
  readTopology,
  setFilterDefaultIn,
  summarizePlan,
  type DataPlane,
  type TopologyPlan,
  type TopologyState,
  type TopologyUndo,
  type TopologyMap,
} from '../dataplane/index.js';
import { ifindexOf, ifnameOf, type Attachment } from '../loader/index.js';
import type { AppliedTopology, AttachedProgram, LinkInfo } from './apply.js';
import { macOf } from './apply.js';
import { bridgeOf } from './listen.js';

/** What the desired state reads from the machine; replaced in unit tests. */
export interface TopologyProbe {
  ifindexOf(name: string): number;
  /** The MAC of the bridge a host link is enslaved to (frames to it are the host's), if any. */
  hostMacOf(link: string): string | undefined;
}

export const systemTopologyProbe: TopologyProbe = {
  ifindexOf,
  hostMacOf: (link) => {
    const bridge = bridgeOf(link);
    return bridge ? macOf(bridge) : undefined;
  },
};

/**
 * The interfaces, classification entries, vif MACs and segment addresses that `config` declares: exactly what a
 * fresh daemon writes into empty maps. Throws ERR_NO_INTERFACE for an interface that does not
 * exist (before anything is written).
 */
export function desiredTopology(
  config: XnetmonConfig,
  probe: TopologyProbe = systemTopologyProbe,
): { state: TopologyState; topology: AppliedTopology } {
  const state = emptyTopology();
  const links = config.host.links.map(
    (l, slot): LinkInfo => ({ name: l.name, ifindex: probe.ifindexOf(l.name), slot }),
  );
  const vif = (netId: number, linkSlot: number, segIfindex: number, segVlan: number) => ({
    kind: 'vif' as const,
    netId,
    linkSlot,
    segIfindex,
    segVlan,
    macLocked: false,
  });
  const linkByName = new Map(links.map((l) => [l.name, l]));
  for (const link of links) {
    state.ifaces.set(link.ifindex, { ...vif(0, link.slot, 0, 0), kind: 'phys' });
    const hostMac = probe.hostMacOf(link.name);
    if (hostMac) {
      const entry = { ifindex: link.ifindex, vlan: 0, mac: hostMac.toLowerCase(), netId: 0, vifIfindex: 0 };
      state.classify.set(classifyEntryKey(entry), entry);
    }
  }
  const vifs: string[] = [];
  const lockedVifs = new Set<number>();
  for (const net of config.networks) {
    for (const a of net.attachments) {
      const link = linkByName.get(a.interface)!;
      const vifIfindex = a.vif ? probe.ifindexOf(a.vif) : 0;
      if (a.vif) {
        // A router with several attachments on one vif: the last one names its segment (as applied in order).
        state.ifaces.set(vifIfindex, vif(net.id, link.slot, link.ifindex, a.vlan));
        if (!vifs.includes(a.vif)) vifs.push(a.vif);
        const mac = { ifindex: vifIfindex, mac: a.mac.toLowerCase(), netId: net.id };
        state.vifMacs.set(vifMacEntryKey(mac), mac);
        lockedVifs.add(vifIfindex);
      }
      const entry = { ifindex: link.ifindex, vlan: a.vlan, mac: a.mac.toLowerCase(), netId: net.id, vifIfindex };
      state.classify.set(classifyEntryKey(entry), entry);
      // The routers' own addresses on the segment: another network's router may not claim them.
      for (const text of a.addresses ?? []) {
        const owned = { ifindex: link.ifindex, vlan: a.vlan, address: canonicalAddress(text), netId: net.id };
        state.segAddrs.set(segAddrEntryKey(owned), owned);
      }
    }
    for (const r of net.routers) {
      if (vifs.includes(r.vif)) continue;
      const first = net.attachments[0];
      const seg = first ? linkByName.get(first.interface)! : undefined;
      state.ifaces.set(probe.ifindexOf(r.vif), vif(net.id, seg?.slot ?? 0, seg?.ifindex ?? 0, first?.vlan ?? 0));
      vifs.push(r.vif);
    }
  }
  // A vif whose router has MACs on segments may send only from them (anti-spoofing).
  for (const ifindex of lockedVifs) state.ifaces.set(ifindex, { ...state.ifaces.get(ifindex)!, macLocked: true });
  // A VLAN's group entry (all-zero MAC): its broadcasts go to its one network's vif; when
  // networks share the VLAN nobody gets them (a frame never reaches another network's router).
  const owners = new Map<string, Map<number, number>>();
  for (const e of state.classify.values()) {
    if (!e.vlan || !e.vifIfindex) continue;
    const segment = `${e.ifindex}/${e.vlan}`;
    if (!owners.has(segment)) owners.set(segment, new Map());
    owners.get(segment)!.set(e.netId, e.vifIfindex);
  }
  for (const [segment, nets] of owners) {
    if (nets.size !== 1) continue;
    const [ifindex, vlan] = segment.split('/').map(Number) as [number, number];
    const [[netId, vifIfindex]] = nets;
    const group = { ifindex, vlan, mac: '00:00:00:00:00:00', netId, vifIfindex };
    state.classify.set(classifyEntryKey(group), group);
  }
  return { state, topology: { links, vifs } };
}

export interface FilterDefaultFix {
  netId: number;
  network: string;
  to: 'drop' | 'accept';
}

/** What converging would change, computed without writing anything (`xnetmon check`). */
export interface ReconcilePlan {
  readonly topology: AppliedTopology;
  /** Networks that hold anything in the maps and that the configuration does not declare. */
  readonly undeclared: readonly number[];
  readonly maps: TopologyPlan;
  /** Filters whose trailing default differs from their network's filter_default. */
  readonly filters: readonly FilterDefaultFix[];
  /** Interfaces with a pinned program of ours that the configuration does not name. */
  readonly detach: readonly string[];
  /** Declared interfaces without their pinned XDP program (attached by the change). */
  readonly missingPrograms: readonly string[];
}

export function planReconcile(
  dp: DataPlane,
  config: XnetmonConfig,
  probe: TopologyProbe = systemTopologyProbe,
): ReconcilePlan {
  const { state, topology } = desiredTopology(config, probe);
  const declared = new Set(config.networks.map((n) => n.id));
  // Networks this process defined and the config dropped count too (their name may be re-used).
  const held = new Set([...dp.networkIdsInMaps(), ...dp.networkList().map((n) => n.id)]);
  const undeclared = [...held].filter((id) => !declared.has(id)).sort((a, b) => a - b);
  const maps = planTopology(readTopology(dp), state);
  const filters: FilterDefaultFix[] = [];
  for (const net of config.networks) {
    const now = filterDefaultIn(dp, net.id);
    // A drop default is written with the router's rules (its first FilterReplace); here only a
    // filter the maps already hold is brought to the configured default.
    const fix = { netId: net.id, network: net.name, to: net.filterDefault };
    if (now === 'drop' && net.filterDefault === 'accept') filters.push(fix);
    if (now === 'accept' && net.filterDefault === 'drop' && filterHasRules(dp, net.id)) filters.push(fix);
  }
  const named = new Set([...topology.links.map((l) => l.name), ...topology.vifs]);
  const pins = dp.pinDir ? pinnedLinks(dp.pinDir) : [];
  const detach = [...new Set(pins.filter((p) => !named.has(p.ifname)).map((p) => p.ifname))];
  const withXdp = new Set(pins.filter((p) => p.kind === 'xdp').map((p) => p.ifname));
  const missingPrograms = dp.pinDir ? [...named].filter((name) => !withXdp.has(name)) : [];
  return { topology, undeclared, maps, filters, detach, missingPrograms };
}

/** What a reconciliation found and changed (status `drift`), or would change (`xnetmon check`). */
export interface Drift {
  /** start, reload, change (a live net command) or check (nothing written). */
  readonly trigger: 'start' | 'reload' | 'change' | 'check';
  readonly at: string;
  /** Ids of networks that were in the maps and not in the configuration. */
  readonly networks: number[];
  /** Map entries written or removed, all maps together. */
  readonly entries: number;
  readonly maps: Record<TopologyMap, { add: number; change: number; remove: number }>;
  readonly filters: FilterDefaultFix[];
  /** Interfaces whose programs were (or would be) detached. */
  readonly detached: string[];
  readonly missingPrograms: string[];
}

export function driftOf(plan: ReconcilePlan, trigger: Drift['trigger'], purged = 0): Drift {
  return {
    trigger,
    at: new Date().toISOString(),
    networks: [...plan.undeclared],
    entries: plan.maps.ops.length + plan.filters.length + purged,
    maps: summarizePlan(plan.maps),
    filters: [...plan.filters],
    detached: [...plan.detach],
    missingPrograms: [...plan.missingPrograms],
  };
}

export function isDrift(drift: Drift): boolean {
  return (
    drift.entries > 0 || drift.networks.length > 0 || drift.detached.length > 0 || drift.missingPrograms.length > 0
  );
}

/** A program could not be attached to an interface the config names; the path says where. */
export class AttachError extends XnetmonError {
  constructor(
    readonly path: string,
    cause: Error,
  ) {
    super((cause as XnetmonError).code ?? 'ERR_ATTACH', `${path}: ${cause.message}`);
    this.cause = cause;
  }
}

/** Where the config names an interface (its first mention), for errors. */
function vifPath(config: XnetmonConfig, ifname: string): string {
  for (const net of config.networks) {
    const r = net.routers.findIndex((x) => x.vif === ifname);
    if (r >= 0) return `networks.${net.name}.routers[${r}].vif`;
    const a = net.attachments.findIndex((x) => x.vif === ifname);
    if (a >= 0) return `networks.${net.name}.attachments[${a}].vif`;
  }
  return ifname;
}

export interface AppliedReconcile {
  readonly attached: AttachedProgram[];
  /** Puts the maps and programs back as they were before applyReconcile. */
  undo(): void;
}

/**
 * The reversible part of converging: map entries, filter defaults and programs on the declared
 * interfaces. A failure undoes what was done and throws; the maps are as before.
 */
export function applyReconcile(dp: DataPlane, plan: ReconcilePlan, config: XnetmonConfig): AppliedReconcile {
  const undos: TopologyUndo[] = [];
  const newlyAttached: string[] = [];
  const undo = (): void => {
    for (const name of newlyAttached.reverse()) dp.detach(name);
    newlyAttached.length = 0;
    for (const u of undos.reverse()) u();
    undos.length = 0;
  };
  const attached: AttachedProgram[] = [];
  try {
    undos.push(applyTopologyPlan(dp, plan.maps));
    for (const fix of plan.filters) {
      const u = setFilterDefaultIn(dp, fix.netId, fix.to);
      if (u) undos.push(u);
    }
    const modes = { xdp: config.host.xdpMode, tc: config.host.tcMode };
    for (const link of plan.topology.links) {
      for (const a of dp.attachPhysical(link.name, modes)) {
        attached.push({ ifname: link.name, point: a.point, mode: a.mode, replaced: a.replaced });
      }
    }
    const withoutPrograms = new Set(plan.missingPrograms);
    for (const vif of plan.topology.vifs) {
      let programs: Attachment[];
      try {
        programs = dp.attachVif(vif, modes);
      } catch (error) {
        // XDP may be on and TC egress refused: a vif that had no program of ours loses both.
        if (withoutPrograms.has(vif)) newlyAttached.push(vif);
        throw new AttachError(vifPath(config, vif), error as Error);
      }
      if (programs.every((a) => !a.replaced)) newlyAttached.push(vif);
      for (const a of programs) attached.push({ ifname: vif, point: a.point, mode: a.mode, replaced: a.replaced });
    }
  } catch (error) {
    undo();
    throw error;
  }
  return { attached, undo };
}

/**
 * The part that is not undone, run once the change stands: networks nobody declares lose their
 * routes, next hops, filter and drops, and interfaces nobody names lose our programs. Returns the
 * entries removed.
 */
export function finishReconcile(dp: DataPlane, plan: ReconcilePlan): number {
  let entries = 0;
  for (const id of plan.undeclared) {
    const { vifs, entries: removed } = dp.purgeNetwork(id);
    entries += removed;
    for (const vif of vifs) {
      const name = ifnameOf(vif);
      if (name) dp.detach(name);
    }
  }
  for (const name of plan.detach) dp.detach(name);
  return entries;
}
