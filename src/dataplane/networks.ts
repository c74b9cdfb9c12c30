// Networks and their attachments (paper IV): the network registry, the host's interfaces
// (physical links and virtual routers' vifs, xnm_ifaces and xnm_tx_ports), the classification
// of a segment's frames to a network by the router's MAC (xnm_classify), and the MACs each
// vif's router may send from (xnm_vif_macs, anti-spoofing), and the IP addresses each network's
// routers own on a segment (xnm_seg_addrs: ARP and ND from another network may not claim them).
import { ValidationError } from '../errors/index.js';
import {
  IfaceFlags,
  IfaceKind,
  MAX_LINKS,
  classifyKeyLayout,
  classifyValLayout,
  ifaceLayout,
  vifMacKeyLayout,
  segAddrKeyLayout,
  type BpfMap,
} from '../loader/index.js';
import { formatAddress, macBytes, parseAddress } from '../net/index.js';
import {
  DuplicateAttachmentError,
  UnknownNetworkError,
  checkNetId,
  u32Key,
  type FlowCacheGeneration,
} from './shared.js';

/** A MAC address as text: "02:00:00:00:00:01". */
export type Mac = string;

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

export interface VifSpec {
  netId: number;
  segIfindex: number;
  segVlan: number;
  linkSlot: number;
}

/** The networks defined in this process, by id and by name. */
export class NetworkRegistry {
  private readonly networks = new Map<number, NetworkSpec>();

  define(spec: NetworkSpec): void {
    checkNetId(spec.id, `networks.${spec.name}.id`);
    const existing = [...this.networks.values()].find((n) => n.name === spec.name && n.id !== spec.id);
    if (existing) throw new ValidationError(`networks.${spec.name}`, `name already used by network ${existing.id}`);
    this.networks.set(spec.id, { ...spec });
  }

  get(idOrName: number | string): NetworkSpec {
    const net =
      typeof idOrName === 'number'
        ? this.networks.get(idOrName)
        : [...this.networks.values()].find((n) => n.name === idOrName);
    if (!net) throw new UnknownNetworkError(idOrName);
    return net;
  }

  list(): NetworkSpec[] {
    return [...this.networks.values()].sort((a, b) => a.id - b.id);
  }

  ids(): number[] {
    return [...this.networks.keys()];
  }

  forget(netId: number): void {
    this.networks.delete(netId);
  }
}

export interface AttachmentMaps {
  ifaces: BpfMap;
  classify: BpfMap;
  txPorts: BpfMap;
  vifMacs: BpfMap;
  segAddrs: BpfMap;
}

/** Interfaces, classification entries and vif MAC locks. */
export class Attachments {
  constructor(
    private readonly maps: AttachmentMaps,
    private readonly networks: NetworkRegistry,
    private readonly generation: FlowCacheGeneration,
  ) {}

  /** A physical link: its counters and drop probabilities live at `linkSlot`. */
  setPhysical(ifindex: number, linkSlot: number): void {
    if (!Number.isInteger(linkSlot) || linkSlot < 0 || linkSlot >= MAX_LINKS) {
      throw new ValidationError('linkSlot', `link slot ${linkSlot} must be 0..${MAX_LINKS - 1}`);
    }
    this.maps.ifaces.update(u32Key(ifindex), ifaceLayout.encode({ kind: IfaceKind.PHYS, link_slot: linkSlot }));
    this.maps.txPorts.update(u32Key(ifindex), u32Key(ifindex));
  }

  /** A virtual router's host-side interface, on the segment of physical `segIfindex`. */
  setVif(ifindex: number, spec: VifSpec): void {
    this.networks.get(spec.netId);
    const current = this.maps.ifaces.lookup(u32Key(ifindex));
    let flags = 0;
    if (current) {
      const d = ifaceLayout.decode(current);
      if (d.kind === IfaceKind.VIF && d.net_id !== spec.netId) {
        throw new DuplicateAttachmentError(`vif ifindex ${ifindex}`, d.net_id as number);
      }
      if (d.kind === IfaceKind.PHYS) throw new DuplicateAttachmentError(`ifindex ${ifindex} (a physical link)`, 0);
      flags = d.flags as number; // a re-applied vif stays MAC-locked: no window without anti-spoofing
    }
    this.maps.ifaces.update(
      u32Key(ifindex),
      ifaceLayout.encode({
        kind: IfaceKind.VIF,
        net_id: spec.netId,
        link_slot: spec.linkSlot,
        seg_ifindex: spec.segIfindex,
        seg_vlan: spec.segVlan,
        flags,
      }),
    );
    this.maps.txPorts.update(u32Key(ifindex), u32Key(ifindex));
  }

  removeInterface(ifindex: number): void {
    this.maps.ifaces.delete(u32Key(ifindex));
    this.maps.txPorts.delete(u32Key(ifindex));
  }

  private classifyKey(ifindex: number, vlan: number, mac: Mac): Buffer {
    if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094)
      throw new ValidationError('vlan', `VLAN ${vlan} must be 0..4094`);
    return classifyKeyLayout.encode({ ifindex, vlan, mac: [...macBytes(mac)] });
  }

  /**
   * Paper IV: classification of a physical segment's frames to a network, by the router's MAC.
   * With a vif, the MAC also becomes one its router may send from (anti-spoofing), and on a
   * VLAN the network receives the VLAN's broadcasts and multicasts unless another network
   * shares the VLAN (then nobody does: a frame never reaches another network's router).
   */
  setAttachment(spec: AttachmentSpec): void {
    this.networks.get(spec.netId);
    const key = this.classifyKey(spec.ifindex, spec.vlan, spec.mac);
    const current = this.maps.classify.lookup(key);
    if (current) {
      const owner = classifyValLayout.decode(current).net_id as number;
      if (owner !== spec.netId) {
        throw new DuplicateAttachmentError(
          `attachment ifindex ${spec.ifindex} vlan ${spec.vlan} mac ${spec.mac}`,
          owner,
        );
      }
    }
    const value = classifyValLayout.encode({ net_id: spec.netId, vif_ifindex: spec.vifIfindex });
    if (spec.vifIfindex) this.lockVifMac(spec.vifIfindex, spec.mac, spec.netId);
    this.maps.classify.update(key, value);
    if (spec.vlan) this.setVlanGroup(spec.ifindex, spec.vlan);
    this.generation.bump();
  }

  removeAttachment(ifindex: number, vlan: number, mac: Mac): boolean {
    const key = this.classifyKey(ifindex, vlan, mac);
    const current = this.maps.classify.lookup(key);
    const removed = this.maps.classify.delete(key);
    if (current) {
      const vif = classifyValLayout.decode(current).vif_ifindex as number;
      if (vif) this.maps.vifMacs.delete(vifMacKeyLayout.encode({ ifindex: vif, mac: [...macBytes(mac)] }));
    }
    if (vlan) this.setVlanGroup(ifindex, vlan);
    this.generation.bump();
    return removed;
  }

  /** The host's own MAC on a segment (its bridge): frames to it are the host's. */
  setHostMac(ifindex: number, vlan: number, mac: Mac): void {
    this.maps.classify.update(
      this.classifyKey(ifindex, vlan, mac),
      classifyValLayout.encode({ net_id: 0, vif_ifindex: 0 }),
    );
    this.generation.bump();
  }

  private lockVifMac(vif: number, mac: Mac, netId: number): void {
    this.maps.vifMacs.update(vifMacKeyLayout.encode({ ifindex: vif, mac: [...macBytes(mac)] }), u32Key(netId));
    const iface = this.maps.ifaces.lookup(u32Key(vif));
    if (!iface) return;
    const d = ifaceLayout.decode(iface);
    this.maps.ifaces.update(
      u32Key(vif),
      ifaceLayout.encode({ ...d, flags: (d.flags as number) | IfaceFlags.MAC_LOCKED }),
    );
  }

  /**
   * The IP addresses network `netId`'s routers own on a segment (physical `ifindex`, `vlan`):
   * no other network's vif may claim them in ARP or neighbour discovery. Replaces what the
   * network had there. All or nothing: an address another network owns on the segment, or
   * one that is not an address, refuses the whole list and changes nothing.
   */
  setSegmentAddresses(netId: number, ifindex: number, vlan: number, addresses: readonly string[]): void {
    this.networks.get(netId);
    const keys = new Map<string, Buffer>();
    addresses.forEach((text, i) => {
      const { family, bytes } = parseAddress(text, `addresses[${i}]`);
      const addr = [...bytes, ...new Array<number>(16 - bytes.length).fill(0)];
      const key = segAddrKeyLayout.encode({ ifindex, vlan, family, addr });
      const owner = this.maps.segAddrs.lookup(key);
      if (owner && owner.readUInt32LE(0) !== netId) {
        const what = `address ${formatAddress(bytes)} on ifindex ${ifindex} vlan ${vlan}`;
        throw new DuplicateAttachmentError(what, owner.readUInt32LE(0));
      }
      keys.set(key.toString('hex'), key);
    });
    for (const k of [...this.maps.segAddrs.keys()]) {
      const d = segAddrKeyLayout.decode(k);
      if (d.ifindex !== ifindex || d.vlan !== vlan || keys.has(k.toString('hex'))) continue;
      if (this.maps.segAddrs.lookup(k)?.readUInt32LE(0) === netId) this.maps.segAddrs.delete(k);
    }
    for (const key of keys.values()) this.maps.segAddrs.update(key, u32Key(netId));
  }

  /** The addresses network `netId` owns on a segment, as text (for status and tests). */
  segmentAddresses(netId: number, ifindex: number, vlan: number): string[] {
    const out: string[] = [];
    for (const k of this.maps.segAddrs.keys()) {
      const d = segAddrKeyLayout.decode(k);
      if (d.ifindex !== ifindex || d.vlan !== vlan || this.maps.segAddrs.lookup(k)?.readUInt32LE(0) !== netId) continue;
      out.push(formatAddress(Buffer.from(d.addr as number[]).subarray(0, d.family === 4 ? 4 : 16)));
    }
    return out.sort();
  }

  /** The VLAN's group entry (all-zero MAC): its one network's vif, or none when networks share the VLAN. */
  private setVlanGroup(ifindex: number, vlan: number): void {
    const owners = new Map<number, number>();
    for (const k of this.maps.classify.keys()) {
      const key = classifyKeyLayout.decode(k);
      const mac = key.mac as number[];
      if (key.ifindex !== ifindex || key.vlan !== vlan || mac.every((b) => b === 0)) continue;
      const v = this.maps.classify.lookup(k);
      if (!v) continue;
      const d = classifyValLayout.decode(v);
      if (d.vif_ifindex) owners.set(d.net_id as number, d.vif_ifindex as number);
    }
    const group = this.classifyKey(ifindex, vlan, '00:00:00:00:00:00');
    const [only] = owners;
    if (owners.size === 1)
      this.maps.classify.update(group, classifyValLayout.encode({ net_id: only[0], vif_ifindex: only[1] }));
    else this.maps.classify.delete(group);
  }

  /** The networks that own a classification entry or a vif in the maps (any process's). */
  networkIds(): Set<number> {
    const ids = new Set<number>();
    for (const k of this.maps.classify.keys()) {
      const v = this.maps.classify.lookup(k);
      if (v) ids.add(classifyValLayout.decode(v).net_id as number);
    }
    for (const k of this.maps.ifaces.keys()) {
      const v = this.maps.ifaces.lookup(k);
      const d = v && ifaceLayout.decode(v);
      if (d && d.kind === IfaceKind.VIF) ids.add(d.net_id as number);
    }
    for (const k of this.maps.segAddrs.keys()) {
      const v = this.maps.segAddrs.lookup(k);
      if (v) ids.add(v.readUInt32LE(0));
    }
    return ids;
  }

  /** Removes a network's classification entries, vif MAC locks, segment addresses and vifs; returns the vifs and how many entries went. */
  purge(netId: number): { vifs: number[]; entries: number } {
    let entries = 0;
    for (const k of [...this.maps.classify.keys()]) {
      const v = this.maps.classify.lookup(k);
      if (v && classifyValLayout.decode(v).net_id === netId && this.maps.classify.delete(k)) entries++;
    }
    for (const map of [this.maps.vifMacs, this.maps.segAddrs]) {
      for (const k of [...map.keys()]) {
        const v = map.lookup(k);
        if (v && v.readUInt32LE(0) === netId && map.delete(k)) entries++;
      }
    }
    const vifs: number[] = [];
    for (const k of [...this.maps.ifaces.keys()]) {
      const v = this.maps.ifaces.lookup(k);
      const d = v && ifaceLayout.decode(v);
      if (d && d.kind === IfaceKind.VIF && d.net_id === netId) {
        vifs.push(k.readUInt32LE(0));
        this.removeInterface(k.readUInt32LE(0));
        entries++;
      }
    }
    return { vifs, entries };
  }
}
