// The authoritative route table of one network and family, as columns. A full table is a
// million prefixes: one object (and one string key) per route cost ~12 us a route in the
// manager, so every per-route fact lives in a typed array indexed by a slot number, IPv4
// prefixes are found through a typed-array hash (prefix-index.ts), and routes that share a
// gateway share one `Via` (resolved once per batch, not once per route).
//
// Changes are staged as rows (one per touched slot) while the table keeps what the maps
// hold; `commit` applies the rows once the kernel took the writes, `abort` forgets them.
import type { Family } from '../net/index.js';
import { PrefixIndex4 } from './prefix-index.js';

// Where a table entry comes from.
export const ORIGIN_FREE = 0;
/** Created by the operation in progress; invisible until committed. */
export const ORIGIN_PENDING = 1;
/** Announced by the router. */
export const ORIGIN_ROUTER = 2;
/** Read from the pinned maps after a host daemon restart (what made it is unknown). */
export const ORIGIN_ADOPTED = 3;
/** A host route (/32, /128) to a neighbour on one of the router's connected subnets. */
export const ORIGIN_NEIGHBOUR = 4;

// Flag bits of an entry.
export const STALE = 1;
/** Removed from the maps by memory control (paper IV-A), kept here for restoreRoutes. */
export const EVICTED = 2;
/** A unicast route sent to the VM because its gateway's MAC is not known yet. */
export const UNRESOLVED = 4;

// What the maps hold for an entry, as one number: > 0 a next hop id, < 0 minus the data
// plane's route flags (RouteFlags in src/loader: VIA_VM 1, LOCAL 2, BLACKHOLE 4; not imported,
// as this module also runs inside routers), 0 nothing (not in the maps).
export const TARGET_NONE = 0;
export const TARGET_VIA_VM = -1;
export const TARGET_LOCAL = -2;
export const TARGET_BLACKHOLE = -4;

// Route kinds: positions in the protocol's ROUTE_KINDS.
export const KIND_UNICAST = 0;
export const KIND_LOCAL = 1;
export const KIND_BLACKHOLE = 2;
export const KIND_VIA_VM = 3;

/** A gateway on a router interface: every unicast route through it has the same target. */
export interface Via {
  readonly id: number;
  /** "ifaceId|gateway hex": identity within the table. */
  readonly key: string;
  /** The router interface (id in the network's interface registry). */
  readonly ifaceId: number;
  /** Network-order gateway address. */
  readonly gateway: Buffer;
  /** "router ifindex|gateway hex": the neighbour whose MAC the target needs. */
  readonly neighbourKey: string;
  /** First slot of the list of entries through this via (viaNext / viaPrev), -1 when none. */
  head: number;
  refs: number;
}

/** Reference counts the manager keeps outside the table. */
export interface CommitHooks {
  nexthopDelta(id: number, delta: 1 | -1): void;
  ifaceDelta(id: number, delta: 1 | -1): void;
  /** A via no entry uses any more has been dropped. */
  viaReleased(via: Via): void;
}

function grown<T extends Uint8Array | Int32Array | Uint32Array>(array: T, size: number, fill = 0): T {
  const out = new (array.constructor as new (n: number) => T)(size);
  out.set(array);
  if (fill !== 0) out.fill(fill, array.length);
  return out;
}

/** Staged changes: one row per touched slot, with the entry's fields after the change. */
export class RowSet {
  count = 0;
  slot = new Int32Array(64);
  origin = new Uint8Array(64);
  kind = new Uint8Array(64);
  bits = new Uint8Array(64);
  via = new Int32Array(64);
  iface = new Int32Array(64);
  target = new Int32Array(64);

  add(): number {
    if (this.count === this.slot.length) this.reserve(this.count + 1);
    return this.count++;
  }

  reserve(rows: number): void {
    if (rows > this.slot.length) {
      let size = this.slot.length;
      while (size < rows) size *= 2;
      this.slot = grown(this.slot, size);
      this.origin = grown(this.origin, size);
      this.kind = grown(this.kind, size);
      this.bits = grown(this.bits, size);
      this.via = grown(this.via, size);
      this.iface = grown(this.iface, size);
      this.target = grown(this.target, size);
    }
  }
}

export class RouteTable {
  readonly width: 4 | 16;
  readonly maxLength: 32 | 128;

  // Columns, indexed by slot.
  addr4 = new Uint32Array(0);
  addr6 = new Uint8Array(0);
  length = new Uint8Array(0);
  origin = new Uint8Array(0);
  kind = new Uint8Array(0);
  bits = new Uint8Array(0);
  via = new Int32Array(0);
  iface = new Int32Array(0);
  target = new Int32Array(0);
  viaNext = new Int32Array(0);
  viaPrev = new Int32Array(0);
  /** Operation stamp of the slot's row, and the row's index (valid when the stamp is current). */
  stamp = new Uint32Array(0);
  rowOf = new Int32Array(0);
  /** Slots [0, top) have been handed out (used, pending or free). */
  top = 0;
  private readonly freeSlots: number[] = [];
  private readonly index4 = new PrefixIndex4();
  private readonly index6 = new Map<string, number>();

  /** Router-announced entries per prefix length: the lengths a longest-prefix match must try. */
  readonly routerLengths = new Uint32Array(129);
  /** Entries per prefix length (any origin). */
  readonly usedLengths = new Uint32Array(129);
  used = 0;
  installed = 0;
  stale = 0;
  evicted = 0;
  unresolved = 0;
  neighbourRoutes = 0;

  readonly vias: (Via | undefined)[] = [];
  private readonly freeVias: number[] = [];
  private readonly viaIds = new Map<string, number>();
  /** Per-operation cache of each via's target (valid when viaStamp is current). */
  viaStamp = new Uint32Array(0);
  viaTarget = new Int32Array(0);
  viaUnresolved = new Uint8Array(0);

  // The operation in progress.
  opStamp = 0;
  readonly rows = new RowSet();
  /** Prefix lengths of router rows staged in this operation (they count for longest matches). */
  readonly rowRouterLengths = new Uint8Array(129);
  private readonly createdSlots: number[] = [];
  private readonly createdVias: number[] = [];

  constructor(readonly family: Family) {
    this.width = family === 4 ? 4 : 16;
    this.maxLength = family === 4 ? 32 : 128;
    this.reserve(256);
  }

  // ---- slots and lookup ------------------------------------------------------------------------

  /** Makes room for `extra` more rows and index entries at once (the columns keep doubling as slots are used). */
  reserveFor(extra: number): void {
    this.rows.reserve(this.rows.count + extra);
    if (this.family === 4) this.index4.reserve(this.index4.size + extra);
  }

  private reserve(capacity: number): void {
    if (capacity <= this.length.length) return;
    let size = Math.max(256, this.length.length);
    while (size < capacity) size *= 2;
    if (this.family === 4) this.addr4 = grown(this.addr4, size);
    else this.addr6 = grown(this.addr6, size * 16);
    this.length = grown(this.length, size);
    this.origin = grown(this.origin, size);
    this.kind = grown(this.kind, size);
    this.bits = grown(this.bits, size);
    this.via = grown(this.via, size, -1);
    this.iface = grown(this.iface, size, -1);
    this.target = grown(this.target, size);
    this.viaNext = grown(this.viaNext, size, -1);
    this.viaPrev = grown(this.viaPrev, size, -1);
    this.stamp = grown(this.stamp, size);
    this.rowOf = grown(this.rowOf, size);
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.top === this.length.length) this.reserve(this.top + 1);
    return this.top++;
  }

  /** The slot allocSlot would hand out next (not taken). */
  private nextSlot(): number {
    const free = this.freeSlots.length;
    return free > 0 ? this.freeSlots[free - 1]! : this.top;
  }

  /** True when the last findOrCreate4 made a new (pending, staged) slot. */
  created = false;

  /**
   * The slot of an IPv4 prefix, or a new pending one (staged, `created` set) when absent:
   * one hash probe either way, the hot path of a full table.
   */
  findOrCreate4(addr: number, length: number): number {
    const candidate = this.nextSlot();
    const known = this.index4.getOrSet(addr, length, candidate);
    if (known >= 0) {
      this.created = false;
      return known;
    }
    const slot = this.allocSlot();
    this.addr4[slot] = addr;
    this.initPending(slot, length);
    this.created = true;
    return slot;
  }

  private key6(addr: Uint8Array, offset: number, length: number): string {
    return `${Buffer.from(addr.buffer, addr.byteOffset + offset, 16).toString('hex')}/${length}`;
  }

  /** The slot of an IPv4 prefix (host-order address), or -1. */
  find4(addr: number, length: number): number {
    return this.index4.get(addr, length);
  }

  /** The slot of a prefix given as network-order bytes at `offset`, or -1. */
  find(addr: Uint8Array, offset: number, length: number): number {
    if (this.family === 4) return this.index4.get(((addr[offset]! << 24) | (addr[offset + 1]! << 16) | (addr[offset + 2]! << 8) | addr[offset + 3]!) >>> 0, length);
    return this.index6.get(this.key6(addr, offset, length)) ?? -1;
  }

  /** A pending slot for a new IPv4 prefix, already staged (its row is returned). */
  create4(addr: number, length: number): number {
    const slot = this.allocSlot();
    this.addr4[slot] = addr;
    this.index4.set(addr, length, slot);
    return this.initPending(slot, length);
  }

  /** A pending slot for a new prefix given as bytes, already staged (its row is returned). */
  create(addr: Uint8Array, offset: number, length: number): number {
    if (this.family === 4) {
      return this.create4(((addr[offset]! << 24) | (addr[offset + 1]! << 16) | (addr[offset + 2]! << 8) | addr[offset + 3]!) >>> 0, length);
    }
    const slot = this.allocSlot();
    this.addr6.set(addr.subarray(offset, offset + 16), slot * 16);
    this.index6.set(this.key6(addr, offset, length), slot);
    return this.initPending(slot, length);
  }

  private initPending(slot: number, length: number): number {
    this.length[slot] = length;
    this.origin[slot] = ORIGIN_PENDING;
    this.kind[slot] = 0;
    this.bits[slot] = 0;
    this.via[slot] = -1;
    this.iface[slot] = -1;
    this.target[slot] = TARGET_NONE;
    this.createdSlots.push(slot);
    return this.stage(slot);
  }

  private unindex(slot: number): void {
    if (this.family === 4) this.index4.delete(this.addr4[slot]!, this.length[slot]!);
    else this.index6.delete(this.key6(this.addr6, slot * 16, this.length[slot]!));
  }

  /** Network-order address bytes of a slot. */
  addressOf(slot: number): Buffer {
    if (this.family === 6) return Buffer.from(this.addr6.subarray(slot * 16, slot * 16 + 16));
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(this.addr4[slot]!, 0);
    return out;
  }

  isLive(slot: number): boolean {
    return this.origin[slot]! >= ORIGIN_ROUTER;
  }

  // ---- operations: stage, then commit or abort --------------------------------------------------

  /** Starts an operation: rows and created slots of the previous one are forgotten. */
  begin(): void {
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    this.rows.count = 0;
    this.rowRouterLengths.fill(0);
    this.createdSlots.length = 0;
    this.createdVias.length = 0;
  }

  /** True when the slot has a row in this operation. */
  staged(slot: number): boolean {
    return this.stamp[slot] === this.opStamp;
  }

  /** The slot's row in this operation, created as a copy of the committed entry. */
  stage(slot: number): number {
    if (this.stamp[slot] === this.opStamp) return this.rowOf[slot]!;
    const rows = this.rows;
    const row = rows.add();
    rows.slot[row] = slot;
    rows.origin[row] = this.origin[slot]!;
    rows.kind[row] = this.kind[slot]!;
    rows.bits[row] = this.bits[slot]!;
    rows.via[row] = this.via[slot]!;
    rows.iface[row] = this.iface[slot]!;
    rows.target[row] = this.target[slot]!;
    this.stamp[slot] = this.opStamp;
    this.rowOf[slot] = row;
    return row;
  }

  /** Origin, kind, via and interface as they will be after this operation. */
  viewOrigin(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rows.origin[this.rowOf[slot]!]! : this.origin[slot]!;
  }

  viewKind(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rows.kind[this.rowOf[slot]!]! : this.kind[slot]!;
  }

  viewVia(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rows.via[this.rowOf[slot]!]! : this.via[slot]!;
  }

  viewIface(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rows.iface[this.rowOf[slot]!]! : this.iface[slot]!;
  }

  /** Forgets the operation: pending slots and new vias go, the committed entries stay as they were. */
  abort(hooks: CommitHooks): void {
    for (const slot of this.createdSlots) {
      if (this.origin[slot] !== ORIGIN_PENDING) continue;
      this.unindex(slot);
      this.origin[slot] = ORIGIN_FREE;
      this.freeSlots.push(slot);
    }
    this.createdSlots.length = 0;
    this.rows.count = 0;
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    this.releaseUnusedVias(this.createdVias, hooks);
  }

  /** Applies every row: the maps hold what the rows say now. */
  commit(hooks: CommitHooks): void {
    const rows = this.rows;
    const emptied: number[] = [];
    for (let r = 0; r < rows.count; r++) {
      const slot = rows.slot[r]!;
      const before = this.origin[slot]!;
      const after = rows.origin[r]!;
      const live = before >= ORIGIN_ROUTER;
      const oldTarget = live ? this.target[slot]! : TARGET_NONE;
      const newTarget = after === ORIGIN_FREE ? TARGET_NONE : rows.target[r]!;
      if (oldTarget !== newTarget) {
        if (oldTarget > 0) hooks.nexthopDelta(oldTarget, -1);
        if (newTarget > 0) hooks.nexthopDelta(newTarget, 1);
      }
      if (live) this.count(slot, -1);
      const oldVia = live ? this.via[slot]! : -1;
      const newVia = after === ORIGIN_FREE ? -1 : rows.via[r]!;
      if (oldVia !== newVia) {
        if (oldVia >= 0 && this.unlinkVia(slot, oldVia)) emptied.push(oldVia);
        if (newVia >= 0) this.linkVia(slot, newVia);
      }
      const oldIface = live ? this.iface[slot]! : -1;
      const newIface = after === ORIGIN_FREE ? -1 : rows.iface[r]!;
      if (oldIface !== newIface) {
        if (oldIface >= 0) hooks.ifaceDelta(oldIface, -1);
        if (newIface >= 0) hooks.ifaceDelta(newIface, 1);
      }
      if (after === ORIGIN_FREE) {
        if (before !== ORIGIN_FREE) {
          this.unindex(slot);
          this.origin[slot] = ORIGIN_FREE;
          this.via[slot] = -1;
          this.iface[slot] = -1;
          this.target[slot] = TARGET_NONE;
          this.freeSlots.push(slot);
        }
        continue;
      }
      this.origin[slot] = after;
      this.kind[slot] = rows.kind[r]!;
      this.bits[slot] = rows.bits[r]!;
      this.via[slot] = newVia;
      this.iface[slot] = newIface;
      this.target[slot] = newTarget;
      this.count(slot, 1);
    }
    this.rows.count = 0;
    this.createdSlots.length = 0;
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    for (const id of this.createdVias) emptied.push(id);
    this.releaseUnusedVias(emptied, hooks);
  }

  private count(slot: number, sign: 1 | -1): void {
    const bits = this.bits[slot]!;
    const origin = this.origin[slot]!;
    const length = this.length[slot]!;
    this.used += sign;
    this.usedLengths[length] += sign;
    if (this.target[slot] !== TARGET_NONE) this.installed += sign;
    if (bits & STALE) this.stale += sign;
    if (bits & EVICTED) this.evicted += sign;
    if (bits & UNRESOLVED) this.unresolved += sign;
    if (origin === ORIGIN_NEIGHBOUR) this.neighbourRoutes += sign;
    else if (origin === ORIGIN_ROUTER) this.routerLengths[length] += sign;
  }

  /** Marks every entry stale (a session ended, or a resync begins). */
  markAllStale(): void {
    const { origin, bits } = this;
    for (let slot = 0; slot < this.top; slot++) if (origin[slot]! >= ORIGIN_ROUTER) bits[slot] |= STALE;
    this.stale = this.used;
  }

  // ---- vias -------------------------------------------------------------------------------------------

  /** The via for a gateway on an interface; when new it is created unused and passed to `created`. */
  internVia(ifaceId: number, routerIfindex: number, gateway: Uint8Array, offset: number, created: (via: Via) => void): number {
    const hex = Buffer.from(gateway.buffer, gateway.byteOffset + offset, this.width).toString('hex');
    const key = `${ifaceId}|${hex}`;
    const known = this.viaIds.get(key);
    if (known !== undefined) return known;
    const id = this.freeVias.pop() ?? this.vias.length;
    this.vias[id] = {
      id, key, ifaceId, gateway: Buffer.from(gateway.subarray(offset, offset + this.width)), neighbourKey: `${routerIfindex}|${hex}`, head: -1, refs: 0,
    };
    this.viaIds.set(key, id);
    this.createdVias.push(id);
    if (id >= this.viaStamp.length) {
      const size = Math.max(64, this.viaStamp.length * 2);
      this.viaStamp = grown(this.viaStamp, size);
      this.viaTarget = grown(this.viaTarget, size);
      this.viaUnresolved = grown(this.viaUnresolved, size);
    }
    this.viaStamp[id] = 0;
    created(this.vias[id]!);
    return id;
  }

  /** Slots of the entries through a via (committed state). */
  slotsOf(viaId: number, visit: (slot: number) => void): void {
    for (let slot = this.vias[viaId]?.head ?? -1; slot >= 0; slot = this.viaNext[slot]!) visit(slot);
  }

  private linkVia(slot: number, viaId: number): void {
    const via = this.vias[viaId]!;
    this.viaPrev[slot] = -1;
    this.viaNext[slot] = via.head;
    if (via.head >= 0) this.viaPrev[via.head] = slot;
    via.head = slot;
    via.refs++;
  }

  /** Returns true when the via has no entry left. */
  private unlinkVia(slot: number, viaId: number): boolean {
    const via = this.vias[viaId]!;
    const prev = this.viaPrev[slot]!;
    const next = this.viaNext[slot]!;
    if (prev >= 0) this.viaNext[prev] = next;
    else via.head = next;
    if (next >= 0) this.viaPrev[next] = prev;
    this.viaPrev[slot] = -1;
    this.viaNext[slot] = -1;
    return --via.refs === 0;
  }

  private releaseUnusedVias(candidates: readonly number[], hooks: CommitHooks): void {
    for (const id of candidates) {
      const via = this.vias[id];
      if (!via || via.refs > 0) continue;
      this.vias[id] = undefined;
      this.viaIds.delete(via.key);
      this.freeVias.push(id);
      hooks.viaReleased(via);
    }
    this.createdVias.length = 0;
  }
}
