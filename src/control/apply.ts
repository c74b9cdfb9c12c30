// Writes a validated configuration into the data plane: networks, physical links,
// vifs, attachments (paper IV: the virtual network definition module), settings.
import { readFileSync } from 'node:fs';
import { parseListenAddress, type XnetmonConfig } from '../config/index.js';
import { DuplicateAttachmentError, type DataPlane } from '../dataplane/index.js';
import { ifindexOf, ifnameOf, PATHS, type PathName } from '../loader/index.js';
import { bridgeOf } from './listen.js';

export interface LinkInfo {
  name: string;
  ifindex: number;
  slot: number;
}

export interface AppliedTopology {
  links: LinkInfo[];
  /** Interfaces that get the vif program. */
  vifs: string[];
}


function macOf(ifname: string): string {
  return readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
}

export function costsOf(config: XnetmonConfig): Record<PathName, number> {
  const c = config.host.costs;
  // host_vm: host -> router, charged to the router at vm_host's cost (docs/config.md, "CPU costs").
  const byPath: Record<PathName, number> = {
    ext_ext: c.extExt, ext_vm: c.extVm, vm_ext: c.vmExt, vm_vm: c.vmVm, vm_host: c.vmHost, host_vm: c.vmHost,
  };
  for (const p of PATHS) byPath[p] = Math.round(byPath[p]);
  return byPath;
}

/**
 * Packets a router may send to the manager's port per CPU and 67 ms epoch unpunished: about 950
 * per second per CPU, far above what an update needs (a few segments per batch and their ACKs)
 * and small beside a flood (paper V: the controller reserves the CPU DomU1 needs for its updates).
 */
export const CHANNEL_BUDGET = 64;

/** `costs`: a measured cost table (src/cpu) instead of the config's constant one. */
export interface CostOverride {
  pathCost: Record<PathName, number>;
  costPerKib: number;
}

export function applySettings(dp: DataPlane, config: XnetmonConfig, control = true, costs?: CostOverride): void {
  dp.configure({
    accounting: true, punish: control, filter: true,
    pathCost: costs?.pathCost ?? costsOf(config), costPerKib: costs?.costPerKib ?? Math.round(config.host.costPerKib),
    channelPort: parseListenAddress(config.host.listen, 'host.listen', { allowAuto: true }).port,
    channelBudget: CHANNEL_BUDGET,
  });
}

/**
 * Defines every network, link, vif and attachment of `config` in the data plane.
 * Idempotent: applying the same config again changes nothing; entries of networks
 * that left the config are removed by `removeStale`.
 */
export function applyTopology(dp: DataPlane, config: XnetmonConfig): AppliedTopology {
  const links = config.host.links.map((l, slot): LinkInfo => ({ name: l.name, ifindex: ifindexOf(l.name), slot }));
  const linkByName = new Map(links.map((l) => [l.name, l]));
  for (const net of config.networks) dp.defineNetwork({ id: net.id, name: net.name });
  for (const link of links) {
    dp.setPhysical(link.ifindex, link.slot);
    // Frames to the host itself (its bridge, or the link's own MAC) are the host's, not a network's.
    const bridge = bridgeOf(link.name);
    if (bridge) dp.setHostMac(link.ifindex, 0, macOf(bridge));
  }
  const vifs = new Set<string>();
  const segmentAddresses: SegmentAddresses[] = [];
  for (const net of config.networks) {
    for (const a of net.attachments) {
      const link = linkByName.get(a.interface)!;
      const vifIfindex = a.vif ? ifindexOf(a.vif) : 0;
      if (a.vif) {
        dp.setVif(vifIfindex, { netId: net.id, segIfindex: link.ifindex, segVlan: a.vlan, linkSlot: link.slot });
        vifs.add(a.vif);
      }
      dp.setAttachment({ ifindex: link.ifindex, vlan: a.vlan, mac: a.mac, netId: net.id, vifIfindex });
    }
    segmentAddresses.push(...addressesBySegment(net.id, net.attachments, linkByName));
    for (const r of net.routers) {
      if (vifs.has(r.vif)) continue;
      const seg = net.attachments[0] ? linkByName.get(net.attachments[0].interface)! : undefined;
      dp.setVif(ifindexOf(r.vif), { netId: net.id, segIfindex: seg?.ifindex ?? 0, segVlan: net.attachments[0]?.vlan ?? 0, linkSlot: seg?.slot ?? 0 });
      vifs.add(r.vif);
    }
  }
  applySegmentAddresses(dp, segmentAddresses);
  return { links, vifs: [...vifs] };
}

interface SegmentAddresses { netId: number; ifindex: number; vlan: number; addresses: string[] }

/** Each segment a network is attached to, with its routers' addresses there (all its attachments'). */
function addressesBySegment(
  netId: number, attachments: XnetmonConfig['networks'][number]['attachments'], links: Map<string, LinkInfo>,
): SegmentAddresses[] {
  const bySegment = new Map<string, SegmentAddresses>();
  for (const a of attachments) {
    const ifindex = links.get(a.interface)!.ifindex;
    const key = `${ifindex}/${a.vlan}`;
    const entry = bySegment.get(key) ?? { netId, ifindex, vlan: a.vlan, addresses: [] };
    for (const address of a.addresses ?? []) if (!entry.addresses.includes(address)) entry.addresses.push(address);
    bySegment.set(key, entry);
  }
  return [...bySegment.values()];
}

/**
 * Writes the routers' addresses per segment. An address that moved from one network to another
 * is still the old owner's until that network's list is written: those wait for a second pass
 * (validation has made every address's owner unique, so the second pass cannot conflict).
 */
function applySegmentAddresses(dp: DataPlane, segments: readonly SegmentAddresses[]): void {
  const waiting: SegmentAddresses[] = [];
  for (const s of segments) {
    try {
      dp.setSegmentAddresses(s.netId, s.ifindex, s.vlan, s.addresses);
    } catch (err) {
      if (!(err instanceof DuplicateAttachmentError)) throw err;
      waiting.push(s);
    }
  }
  for (const s of waiting) dp.setSegmentAddresses(s.netId, s.ifindex, s.vlan, s.addresses);
}

/** What start-up or a change found in the maps that the configuration does not declare, and removed. */
export interface Drift {
  /** Ids of networks that were in the maps and not in the configuration. */
  networks: number[];
  /** Map entries removed for them. */
  entries: number;
}

/**
 * Makes the maps hold no network the configuration does not declare: a network removed from the
 * file while the daemon was down (or killed), or left by a change that failed half-way, loses its
 * classification, vifs and their programs, routes, next hops, filter and drop probabilities. The
 * declared networks' entries are not touched, so their forwarding never stops.
 */
export function removeUndeclaredNetworks(dp: DataPlane, config: XnetmonConfig): Drift {
  const declared = new Set(config.networks.map((n) => n.id));
  const drift: Drift = { networks: [], entries: 0 };
  for (const id of [...dp.networkIdsInMaps()].sort((a, b) => a - b)) {
    if (declared.has(id)) continue;
    const { vifs, entries } = dp.purgeNetwork(id);
    for (const vif of vifs) {
      const name = ifnameOf(vif);
      if (name) dp.detach(name);
    }
    drift.networks.push(id);
    drift.entries += entries;
  }
  return drift;
}

export interface AttachedProgram {
  ifname: string;
  point: string;
  mode?: string;
  replaced: boolean;
}

/** Attaches the programs in the modes the config asks for ('auto': the best the kernel and driver offer). */
export function attachAll(dp: DataPlane, topology: AppliedTopology, config: XnetmonConfig): AttachedProgram[] {
  const modes = { xdp: config.host.xdpMode, tc: config.host.tcMode };
  const out: AttachedProgram[] = [];
  for (const link of topology.links) for (const a of dp.attachPhysical(link.name, modes)) out.push({ ifname: link.name, point: a.point, mode: a.mode, replaced: a.replaced });
  for (const vif of topology.vifs) {
    for (const a of dp.attachVif(vif, modes)) out.push({ ifname: vif, point: a.point, mode: a.mode, replaced: a.replaced });
  }
  return out;
}
