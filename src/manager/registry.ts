// Small per-network indexes of the manager: the router interfaces that routes, gateways and
// neighbours refer to (with the host segment each is on), and the sorted addresses of the
// router's neighbours (which neighbours lie inside a prefix that just changed).
import type { Family } from '../net/index.js';
import type { RouterInterface } from '../wire/index.js';
import type { SegmentBinding } from './segments.js';

/** A router interface as the manager knows it: where it is on the host, if anywhere. */
export interface InterfaceEntry {
  readonly id: number;
  readonly key: string;
  readonly iface: RouterInterface;
  /** Null when the interface is on none of the network's segments. */
  segment: SegmentBinding | null;
  /** Why it has no segment (the text of a refusal). */
  problem: string;
  refs: number;
}

export type InterfacePlacer = (iface: RouterInterface) => { segment: SegmentBinding | null; problem: string };

/**
 * Router interfaces by identity (index, name, MAC), numbered so that table columns can refer
 * to them. Entries nothing refers to are dropped, so a router cycling through interface names
 * cannot grow the host's memory.
 */
export class InterfaceRegistry {
  private readonly entries: (InterfaceEntry | undefined)[] = [];
  private readonly ids = new Map<string, number>();
  private readonly free: number[] = [];
  /** Entries made or dropped to zero references since the last prune. */
  private readonly unreferenced: number[] = [];

  get(id: number): InterfaceEntry | undefined {
    return this.entries[id];
  }

  intern(iface: RouterInterface, place: InterfacePlacer): InterfaceEntry {
    const key = `${iface.index}|${iface.name}|${iface.mac ?? ''}`;
    const known = this.ids.get(key);
    if (known !== undefined) return this.entries[known]!;
    const id = this.free.pop() ?? this.entries.length;
    const entry: InterfaceEntry = { id, key, iface, refs: 0, ...place(iface) };
    this.entries[id] = entry;
    this.ids.set(key, id);
    this.unreferenced.push(id);
    return entry;
  }

  ref(id: number, delta: 1 | -1): void {
    const entry = this.entries[id];
    if (!entry) return;
    entry.refs += delta;
    if (entry.refs === 0) this.unreferenced.push(id);
  }

  /** Drops the entries that are still unreferenced. */
  prune(): void {
    for (const id of this.unreferenced.splice(0)) {
      const entry = this.entries[id];
      if (!entry || entry.refs > 0) continue;
      this.entries[id] = undefined;
      this.ids.delete(entry.key);
      this.free.push(id);
    }
  }

  /** Places every interface again (a new configuration or segment map). */
  replace(place: InterfacePlacer): InterfaceEntry[] {
    const lost: InterfaceEntry[] = [];
    for (const entry of this.entries) {
      if (!entry) continue;
      const hadSegment = entry.segment !== null;
      Object.assign(entry, place(entry.iface));
      if (hadSegment && entry.segment === null) lost.push(entry);
    }
    return lost;
  }
}

/** Neighbour addresses of one network, sorted, for "which neighbours are inside this prefix". */
export class NeighbourAddresses {
  /** Lowest and highest first 32 bits of the IPv6 addresses: a cheap test before the exact one. */
  private readonly v6FirstWordMin: number;
  private readonly v6FirstWordMax: number;

  constructor(
    /** Host-order IPv4 addresses, ascending, without repeats. */
    readonly v4: Uint32Array,
    /** IPv6 addresses as 32 hex digits, ascending, without repeats. */
    readonly v6: readonly string[],
  ) {
    this.v6FirstWordMin = v6.length > 0 ? Number.parseInt(v6[0]!.slice(0, 8), 16) : 0;
    this.v6FirstWordMax = v6.length > 0 ? Number.parseInt(v6[v6.length - 1]!.slice(0, 8), 16) : 0;
  }

  /** False when no IPv6 neighbour can be inside the prefix (16 bytes at `offset`); true means "maybe". */
  mayContain6(addr: Uint8Array, offset: number, length: number): boolean {
    if (this.v6.length === 0) return false;
    const first =
      ((addr[offset]! << 24) | (addr[offset + 1]! << 16) | (addr[offset + 2]! << 8) | addr[offset + 3]!) >>> 0;
    const last = length >= 32 ? first : first + (0xffffffff >>> length);
    return last >= this.v6FirstWordMin && first <= this.v6FirstWordMax;
  }

  static of(addresses: Iterable<{ family: Family; addr: Buffer }>): NeighbourAddresses {
    const v4: number[] = [];
    const v6 = new Set<string>();
    for (const { family, addr } of addresses) {
      if (family === 4) v4.push(addr.readUInt32BE(0));
      else v6.add(addr.toString('hex'));
    }
    const sorted4 = Uint32Array.from(new Set(v4)).sort();
    return new NeighbourAddresses(sorted4, [...v6].sort());
  }

  has(family: Family): boolean {
    return family === 4 ? this.v4.length > 0 : this.v6.length > 0;
  }

  /** Calls `visit` with each IPv4 address in [low, high]. */
  inRange4(low: number, high: number, visit: (addr: number) => void): void {
    visitRange(this.v4, low, high, visit);
  }

  /** Calls `visit` with each IPv6 address (hex) in [low, high]. */
  inRange6(low: string, high: string, visit: (hex: string) => void): void {
    visitRange(this.v6, low, high, visit);
  }
}

/** Binary search for the first element >= low in a sorted list, then each one up to high. */
function visitRange<T extends number | string>(list: ArrayLike<T>, low: T, high: T, visit: (value: T) => void): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]! < low) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < list.length && list[i]! <= high; i++) visit(list[i]!);
}
