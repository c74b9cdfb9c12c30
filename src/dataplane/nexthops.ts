// Next hops (xnm_nexthops): shared by the routes that use them, found by identity (network,
// interface, VLAN, MACs, link slot), ids recycled. After a restart the pinned next hops are
// authoritative and the index is rebuilt from them.
import { readFileSync } from 'node:fs';
import { ValidationError } from '../errors/index.js';
import { MAX_NEXTHOPS, MapFullError, NEXTHOP_VALID, ifnameOf, nexthopLayout, type BpfMap } from '../loader/index.js';
import { macBytes, macFromBytes } from '../net/index.js';
import { checkNetId, u32Key } from './shared.js';
import type { Mac } from './networks.js';

export interface NexthopSpec {
  netId: number;
  ifindex: number;
  linkSlot: number;
  vlan: number;
  smac: Mac;
  dmac: Mac;
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

function identityOf(spec: NexthopSpec): string {
  return `${spec.netId}|${spec.ifindex}|${spec.vlan}|${spec.smac}|${spec.dmac}|${spec.linkSlot}`;
}

export class Nexthops {
  /** Next hops by identity, so that routes share them. */
  private readonly ids = new Map<string, number>();
  /** The reverse of ids: releasing is constant time (a refused batch may release thousands). */
  private readonly identities = new Map<number, string>();
  private readonly free: number[] = [];
  private next = 1;

  constructor(private readonly map: BpfMap) {
    this.adopt();
  }

  private adopt(): void {
    const { keys, values, count } = this.map.lookupAll(8192);
    let highest = 0;
    for (let i = 0; i < count; i++) {
      const id = keys.readUInt32LE(i * 4);
      const nh = nexthopLayout.decode(values, i * this.map.valueBufferSize);
      if (!((nh.flags as number) & NEXTHOP_VALID)) continue;
      const identity = identityOf({
        netId: nh.net_id as number,
        ifindex: nh.ifindex as number,
        linkSlot: nh.link_slot as number,
        vlan: nh.vlan as number,
        smac: macFromBytes(Uint8Array.from(nh.smac as number[])),
        dmac: macFromBytes(Uint8Array.from(nh.dmac as number[])),
      });
      this.ids.set(identity, id);
      this.identities.set(id, identity);
      highest = Math.max(highest, id);
    }
    this.next = highest + 1;
  }

  /** The id of a next hop with these fields, created when new. */
  idFor(spec: NexthopSpec): number {
    checkNetId(spec.netId);
    const identity = identityOf(spec);
    const existing = this.ids.get(identity);
    if (existing !== undefined) return existing;
    // A full table or a failed write uses up no id: the next call finds the same one free.
    const recycled = this.free.pop();
    const id = recycled ?? this.next;
    if (id >= MAX_NEXTHOPS) throw new MapFullError('xnm_nexthops', 28);
    try {
      this.map.update(
        u32Key(id),
        nexthopLayout.encode({
          ifindex: spec.ifindex,
          net_id: spec.netId,
          link_slot: spec.linkSlot,
          vlan: spec.vlan,
          flags: NEXTHOP_VALID,
          smac: [...macBytes(spec.smac, 'smac')],
          dmac: [...macBytes(spec.dmac, 'dmac')],
          mtu: linkMtu(spec.ifindex),
        }),
      );
    } catch (error) {
      if (recycled !== undefined) this.free.push(recycled);
      throw error;
    }
    if (recycled === undefined) this.next++;
    this.ids.set(identity, id);
    this.identities.set(id, identity);
    return id;
  }

  release(id: number): void {
    const identity = this.identities.get(id);
    if (identity === undefined) return;
    this.map.update(u32Key(id), Buffer.alloc(nexthopLayout.size));
    this.ids.delete(identity);
    this.identities.delete(id);
    this.free.push(id);
  }

  /** Throws ValidationError naming `path` unless next hop `id` exists and belongs to `netId`. */
  check(netId: number, id: number, path: string): void {
    const value = this.map.lookup(u32Key(id));
    const nh = value && nexthopLayout.decode(value);
    if (!nh || !((nh.flags as number) & NEXTHOP_VALID))
      throw new ValidationError(path, `next hop ${id} does not exist`);
    if (nh.net_id !== netId)
      throw new ValidationError(path, `next hop ${id} belongs to network ${nh.net_id}, not ${netId}`);
  }

  private netIdOf(id: number): number | undefined {
    const v = this.map.lookup(u32Key(id));
    return v ? (nexthopLayout.decode(v).net_id as number) : undefined;
  }

  /** The networks that own a next hop. */
  networkIds(): Set<number> {
    const ids = new Set<number>();
    for (const id of this.identities.keys()) {
      const netId = this.netIdOf(id);
      if (netId !== undefined) ids.add(netId);
    }
    return ids;
  }

  /** Releases every next hop of a network; returns how many. */
  purge(netId: number): number {
    let released = 0;
    for (const id of [...this.identities.keys()]) {
      if (this.netIdOf(id) !== netId) continue;
      this.release(id);
      released++;
    }
    return released;
  }
}
