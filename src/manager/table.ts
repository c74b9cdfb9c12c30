// The authoritative route table of one network and family, as columns. A full table is a
// million prefixes: one object (and one string key) per route cost ~12 us a route in the
// manager, so every per-route fact lives in a typed array indexed by a slot number, IPv4
// prefixes are found through a typed-array hash (prefix-index.ts), and routes that share a
// gateway share one `Via` (resolved once per batch, not once per route).
// Over 600 lines: the columns and every method that reads or writes them stay in one class, so
// that no other file touches a column (the owner masks of several routers added three).
//
// Changes are staged as rows (one per touched slot) while the table keeps what the maps
// hold; `commit` applies the rows once the kernel took the writes, `abort` forgets them.
// The columns are this class's own: the manager reads them through read-only views and
// changes entries only through the methods below, so the table's rules live in this file.
// Size: about 590 lines, over the usual 500 on purpose: one class owns every column, and a
// split would hand some of them to a second file that writes them.
import type { Family } from '../net/index.js';
import { RouteFlags } from '../loader/layouts.js';
import { PrefixIndex4 } from './prefix-index.js';

// Where a table entry comes from.
export const ORIGIN_FREE = 0;
/** Created by the operation in progress; invisible until committed. */
const ORIGIN_PENDING = 1;
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

/** No router's announcement is installed (an adopted, neighbour or free entry). */
export const NO_ANNOUNCER = 255;

// What the maps hold for an entry, as one number: > 0 a next hop id, < 0 minus the data
// plane's route flag (RouteFlags, src/loader's mirror of bpf/xnetmon.h, checked against BTF),
// 0 nothing (not in the maps).
export const TARGET_NONE = 0;
export const TARGET_VIA_VM = -RouteFlags.VIA_VM;
export const TARGET_LOCAL = -RouteFlags.LOCAL;
export const TARGET_BLACKHOLE = -RouteFlags.BLACKHOLE;

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

/** A column seen from outside the table: read, never written. */
export interface ReadonlyColumn {
  readonly [index: number]: number;
  readonly length: number;
}

/** The staged rows of the operation in progress, read-only (RouteTable's setters change them). */
export interface StagedRows {
  readonly count: number;
  readonly slot: ReadonlyColumn;
  readonly origin: ReadonlyColumn;
  readonly kind: ReadonlyColumn;
  readonly bits: ReadonlyColumn;
  readonly via: ReadonlyColumn;
  readonly iface: ReadonlyColumn;
  readonly target: ReadonlyColumn;
  readonly owners: ReadonlyColumn;
  readonly staleOwners: ReadonlyColumn;
  readonly announcer: ReadonlyColumn;
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
class RowSet {
  count = 0;
  slot = new Int32Array(64);
  origin = new Uint8Array(64);
  kind = new Uint8Array(64);
  bits = new Uint8Array(64);
  via = new Int32Array(64);
  iface = new Int32Array(64);
  target = new Int32Array(64);
  owners = new Uint32Array(64);
  staleOwners = new Uint32Array(64);
  announcer = new Uint8Array(64);

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
      this.owners = grown(this.owners, size);
      this.staleOwners = grown(this.staleOwners, size);
      this.announcer = grown(this.announcer, size);
    }
  }
}

export class RouteTable {
  readonly width: 4 | 16;
  readonly maxLength: 32 | 128;

  // Columns, indexed by slot (read-only views below).
  private addr4Column = new Uint32Array(0);
  private addr6Column = new Uint8Array(0);
  private lengthColumn = new Uint8Array(0);
  private originColumn = new Uint8Array(0);
  private kindColumn = new Uint8Array(0);
  private bitsColumn = new Uint8Array(0);
  private viaColumn = new Int32Array(0);
  private ifaceColumn = new Int32Array(0);
  private targetColumn = new Int32Array(0);
  /**
   * Several routers per network (docs/manager.md, "Several routers"): a bit per router that
   * announces the entry, a bit per such router whose announcement is stale, and the router
   * (bit index) whose announcement the maps hold.
   */
  private ownersColumn = new Uint32Array(0);
  private staleOwnersColumn = new Uint32Array(0);
  private announcerColumn = new Uint8Array(0);
  private viaNext = new Int32Array(0);
  private viaPrev = new Int32Array(0);
  /** Operation stamp of the slot's row, and the row's index (valid when the stamp is current). */
  private stamp = new Uint32Array(0);
  private rowOfColumn = new Int32Array(0);
  /** Slots [0, top) have been handed out (used, pending or free). */
  top = 0;
  private readonly freeSlots: number[] = [];
  private readonly index4 = new PrefixIndex4();
  private readonly index6 = new Map<string, number>();

  /** Router-announced entries per prefix length: the lengths a longest-prefix match must try. */
  private readonly routerLengthCounts = new Uint32Array(129);
  /** Entries per prefix length (any origin). */
  private readonly usedLengthCounts = new Uint32Array(129);
  used = 0;
  installed = 0;
  stale = 0;
  evicted = 0;
  unresolved = 0;
  neighbourRoutes = 0;

  private readonly viaList: (Via | undefined)[] = [];
  private readonly freeVias: number[] = [];
  private readonly viaIds = new Map<string, number>();
  /** Per-operation cache of each via's target (valid when viaStamp is current). */
  private viaStamp = new Uint32Array(0);
  private viaTargetColumn = new Int32Array(0);
  private viaUnresolvedColumn = new Uint8Array(0);

  // The operation in progress.
  private opStamp = 0;
  private readonly rowSet = new RowSet();
  /** Prefix lengths of router rows staged in this operation (they count for longest matches). */
  private readonly rowRouterLengthFlags = new Uint8Array(129);
  private readonly createdSlots: number[] = [];
  private readonly createdVias: number[] = [];

  constructor(readonly family: Family) {
    this.width = family === 4 ? 4 : 16;
    this.maxLength = family === 4 ? 32 : 128;
    this.reserve(256);
  }

  // ---- read-only views of the columns ----------------------------------------------------------

  /** IPv4 addresses (host order) by slot. */
  get addr4(): ReadonlyColumn {
    return this.addr4Column;
  }
  get length(): ReadonlyColumn {
    return this.lengthColumn;
  }
  /** ORIGIN_* of the committed entry. */
  get origin(): ReadonlyColumn {
    return this.originColumn;
  }
  get kind(): ReadonlyColumn {
    return this.kindColumn;
  }
  /** STALE, EVICTED, UNRESOLVED. */
  get bits(): ReadonlyColumn {
    return this.bitsColumn;
  }
  get via(): ReadonlyColumn {
    return this.viaColumn;
  }
  get iface(): ReadonlyColumn {
    return this.ifaceColumn;
  }
  /** What the maps hold (TARGET_* or a next hop id). */
  get target(): ReadonlyColumn {
    return this.targetColumn;
  }
  /** Routers (bits) announcing a router entry, those of them whose announcement is stale, and the installed one. */
  get owners(): ReadonlyColumn {
    return this.ownersColumn;
  }
  get staleOwners(): ReadonlyColumn {
    return this.staleOwnersColumn;
  }
  get announcer(): ReadonlyColumn {
    return this.announcerColumn;
  }
  /** The slot's row in this operation (valid when `staged`). */
  get rowOf(): ReadonlyColumn {
    return this.rowOfColumn;
  }
  get routerLengths(): ReadonlyColumn {
    return this.routerLengthCounts;
  }
  get usedLengths(): ReadonlyColumn {
    return this.usedLengthCounts;
  }
  get rowRouterLengths(): ReadonlyColumn {
    return this.rowRouterLengthFlags;
  }
  get rows(): StagedRows {
    return this.rowSet;
  }
  get vias(): readonly (Via | undefined)[] {
    return this.viaList;
  }
  /** A via's target and whether its MAC is unknown, as resolved in this operation (see viaResolved). */
  get viaTarget(): ReadonlyColumn {
    return this.viaTargetColumn;
  }
  get viaUnresolved(): ReadonlyColumn {
    return this.viaUnresolvedColumn;
  }

  /** Lowercase hex of an IPv6 slot's address (an IPv6 table's sort key). */
  hex6(slot: number): string {
    return Buffer.from(this.addr6Column.buffer, this.addr6Column.byteOffset + slot * 16, 16).toString('hex');
  }

  /** Calls `read` with the address column and the slot's offset in it (no copy). */
  withAddress<T>(slot: number, read: (bytes: Uint8Array, offset: number) => T): T {
    if (this.family === 6) return read(this.addr6Column, slot * 16);
    return read(this.addressOf(slot), 0);
  }

  // ---- staged rows: the only writers from outside -----------------------------------------------

  /** Sets a staged row's entry; a router row counts for longest matches from now on. */
  setRow(row: number, origin: number, kind: number, via: number, iface: number, bits: number): void {
    const rows = this.rowSet;
    rows.origin[row] = origin;
    rows.kind[row] = kind;
    rows.via[row] = via;
    rows.iface[row] = iface;
    rows.bits[row] = bits;
    if (origin === ORIGIN_ROUTER) this.rowRouterLengthFlags[this.lengthColumn[rows.slot[row]!]!] = 1;
    else this.setRowOwners(row, 0, 0, NO_ANNOUNCER);
  }

  /** The staged row's entry goes (its slot is freed on commit). */
  withdrawRow(row: number): void {
    this.rowSet.origin[row] = ORIGIN_FREE;
    this.setRowOwners(row, 0, 0, NO_ANNOUNCER);
  }

  /** The routers announcing a staged row's entry, the stale ones among them, and the installed one (a bit index). */
  setRowOwners(row: number, owners: number, staleOwners: number, announcer: number): void {
    const rows = this.rowSet;
    rows.owners[row] = owners;
    rows.staleOwners[row] = staleOwners;
    rows.announcer[row] = announcer;
  }

  setRowBits(row: number, bits: number): void {
    this.rowSet.bits[row] = bits;
  }

  /** The row's target as resolved for this operation, and its bits (UNRESOLVED may change). */
  resolveRow(row: number, bits: number, target: number): void {
    this.rowSet.bits[row] = bits;
    this.rowSet.target[row] = target;
  }

  /** True when the via's target was resolved in this operation. */
  viaResolved(viaId: number): boolean {
    return this.viaStamp[viaId] === this.opStamp;
  }

  /** Records the via's target for this operation. */
  resolveVia(viaId: number, target: number, unresolved: boolean): void {
    this.viaStamp[viaId] = this.opStamp;
    this.viaTargetColumn[viaId] = target;
    this.viaUnresolvedColumn[viaId] = unresolved ? 1 : 0;
  }

  // ---- slots and lookup ------------------------------------------------------------------------

  /** Makes room for `extra` more rows and index entries at once (the columns keep doubling as slots are used). */
  reserveFor(extra: number): void {
    this.rowSet.reserve(this.rowSet.count + extra);
    if (this.family === 4) this.index4.reserve(this.index4.size + extra);
  }

  private reserve(capacity: number): void {
    if (capacity <= this.lengthColumn.length) return;
    let size = Math.max(256, this.lengthColumn.length);
    while (size < capacity) size *= 2;
    if (this.family === 4) this.addr4Column = grown(this.addr4Column, size);
    else this.addr6Column = grown(this.addr6Column, size * 16);
    this.lengthColumn = grown(this.lengthColumn, size);
    this.originColumn = grown(this.originColumn, size);
    this.kindColumn = grown(this.kindColumn, size);
    this.bitsColumn = grown(this.bitsColumn, size);
    this.viaColumn = grown(this.viaColumn, size, -1);
    this.ifaceColumn = grown(this.ifaceColumn, size, -1);
    this.targetColumn = grown(this.targetColumn, size);
    this.ownersColumn = grown(this.ownersColumn, size);
    this.staleOwnersColumn = grown(this.staleOwnersColumn, size);
    this.announcerColumn = grown(this.announcerColumn, size, NO_ANNOUNCER);
    this.viaNext = grown(this.viaNext, size, -1);
    this.viaPrev = grown(this.viaPrev, size, -1);
    this.stamp = grown(this.stamp, size);
    this.rowOfColumn = grown(this.rowOfColumn, size);
  }

  private allocSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.top === this.lengthColumn.length) this.reserve(this.top + 1);
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
    this.addr4Column[slot] = addr;
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
    if (this.family === 4)
      return this.index4.get(
        ((addr[offset]! << 24) | (addr[offset + 1]! << 16) | (addr[offset + 2]! << 8) | addr[offset + 3]!) >>> 0,
        length,
      );
    return this.index6.get(this.key6(addr, offset, length)) ?? -1;
  }

  /** A pending slot for a new IPv4 prefix, already staged (its row is returned). */
  create4(addr: number, length: number): number {
    const slot = this.allocSlot();
    this.addr4Column[slot] = addr;
    this.index4.set(addr, length, slot);
    return this.initPending(slot, length);
  }

  /** A pending slot for a new prefix given as bytes, already staged (its row is returned). */
  create(addr: Uint8Array, offset: number, length: number): number {
    if (this.family === 4) {
      return this.create4(
        ((addr[offset]! << 24) | (addr[offset + 1]! << 16) | (addr[offset + 2]! << 8) | addr[offset + 3]!) >>> 0,
        length,
      );
    }
    const slot = this.allocSlot();
    this.addr6Column.set(addr.subarray(offset, offset + 16), slot * 16);
    this.index6.set(this.key6(addr, offset, length), slot);
    return this.initPending(slot, length);
  }

  private initPending(slot: number, length: number): number {
    this.lengthColumn[slot] = length;
    this.originColumn[slot] = ORIGIN_PENDING;
    this.kindColumn[slot] = 0;
    this.bitsColumn[slot] = 0;
    this.viaColumn[slot] = -1;
    this.ifaceColumn[slot] = -1;
    this.targetColumn[slot] = TARGET_NONE;
    this.ownersColumn[slot] = 0;
    this.staleOwnersColumn[slot] = 0;
    this.announcerColumn[slot] = NO_ANNOUNCER;
    this.createdSlots.push(slot);
    return this.stage(slot);
  }

  private unindex(slot: number): void {
    if (this.family === 4) this.index4.delete(this.addr4Column[slot]!, this.lengthColumn[slot]!);
    else this.index6.delete(this.key6(this.addr6Column, slot * 16, this.lengthColumn[slot]!));
  }

  /** Network-order address bytes of a slot. */
  addressOf(slot: number): Buffer {
    if (this.family === 6) return Buffer.from(this.addr6Column.subarray(slot * 16, slot * 16 + 16));
    const out = Buffer.allocUnsafe(4);
    out.writeUInt32BE(this.addr4Column[slot]!, 0);
    return out;
  }

  isLive(slot: number): boolean {
    return this.originColumn[slot]! >= ORIGIN_ROUTER;
  }

  // ---- operations: stage, then commit or abort --------------------------------------------------

  /** Starts an operation: rows and created slots of the previous one are forgotten. */
  begin(): void {
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    this.rowSet.count = 0;
    this.rowRouterLengthFlags.fill(0);
    this.createdSlots.length = 0;
    this.createdVias.length = 0;
  }

  /** True when the slot has a row in this operation. */
  staged(slot: number): boolean {
    return this.stamp[slot] === this.opStamp;
  }

  /** The slot's row in this operation, created as a copy of the committed entry. */
  stage(slot: number): number {
    if (this.stamp[slot] === this.opStamp) return this.rowOfColumn[slot]!;
    const rows = this.rowSet;
    const row = rows.add();
    rows.slot[row] = slot;
    rows.origin[row] = this.originColumn[slot]!;
    rows.kind[row] = this.kindColumn[slot]!;
    rows.bits[row] = this.bitsColumn[slot]!;
    rows.via[row] = this.viaColumn[slot]!;
    rows.iface[row] = this.ifaceColumn[slot]!;
    rows.target[row] = this.targetColumn[slot]!;
    rows.owners[row] = this.ownersColumn[slot]!;
    rows.staleOwners[row] = this.staleOwnersColumn[slot]!;
    rows.announcer[row] = this.announcerColumn[slot]!;
    this.stamp[slot] = this.opStamp;
    this.rowOfColumn[slot] = row;
    return row;
  }

  /** Origin, kind, via and interface as they will be after this operation. */
  viewOrigin(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rowSet.origin[this.rowOfColumn[slot]!]! : this.originColumn[slot]!;
  }

  viewKind(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rowSet.kind[this.rowOfColumn[slot]!]! : this.kindColumn[slot]!;
  }

  viewVia(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rowSet.via[this.rowOfColumn[slot]!]! : this.viaColumn[slot]!;
  }

  viewIface(slot: number): number {
    return this.stamp[slot] === this.opStamp ? this.rowSet.iface[this.rowOfColumn[slot]!]! : this.ifaceColumn[slot]!;
  }

  /** Forgets the operation: pending slots and new vias go, the committed entries stay as they were. */
  abort(hooks: CommitHooks): void {
    for (const slot of this.createdSlots) {
      if (this.originColumn[slot] !== ORIGIN_PENDING) continue;
      this.unindex(slot);
      this.originColumn[slot] = ORIGIN_FREE;
      this.freeSlots.push(slot);
    }
    this.createdSlots.length = 0;
    this.rowSet.count = 0;
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    this.releaseUnusedVias(this.createdVias, hooks);
  }

  /** Applies every row: the maps hold what the rows say now. */
  commit(hooks: CommitHooks): void {
    const rows = this.rowSet;
    const emptied: number[] = [];
    for (let r = 0; r < rows.count; r++) {
      const slot = rows.slot[r]!;
      const before = this.originColumn[slot]!;
      const after = rows.origin[r]!;
      const live = before >= ORIGIN_ROUTER;
      const oldTarget = live ? this.targetColumn[slot]! : TARGET_NONE;
      const newTarget = after === ORIGIN_FREE ? TARGET_NONE : rows.target[r]!;
      if (oldTarget !== newTarget) {
        if (oldTarget > 0) hooks.nexthopDelta(oldTarget, -1);
        if (newTarget > 0) hooks.nexthopDelta(newTarget, 1);
      }
      if (live) this.count(slot, -1);
      const oldVia = live ? this.viaColumn[slot]! : -1;
      const newVia = after === ORIGIN_FREE ? -1 : rows.via[r]!;
      if (oldVia !== newVia) {
        if (oldVia >= 0 && this.unlinkVia(slot, oldVia)) emptied.push(oldVia);
        if (newVia >= 0) this.linkVia(slot, newVia);
      }
      const oldIface = live ? this.ifaceColumn[slot]! : -1;
      const newIface = after === ORIGIN_FREE ? -1 : rows.iface[r]!;
      if (oldIface !== newIface) {
        if (oldIface >= 0) hooks.ifaceDelta(oldIface, -1);
        if (newIface >= 0) hooks.ifaceDelta(newIface, 1);
      }
      if (after === ORIGIN_FREE) {
        if (before !== ORIGIN_FREE) {
          this.unindex(slot);
          this.originColumn[slot] = ORIGIN_FREE;
          this.viaColumn[slot] = -1;
          this.ifaceColumn[slot] = -1;
          this.targetColumn[slot] = TARGET_NONE;
          this.ownersColumn[slot] = 0;
          this.staleOwnersColumn[slot] = 0;
          this.announcerColumn[slot] = NO_ANNOUNCER;
          this.freeSlots.push(slot);
        }
        continue;
      }
      this.originColumn[slot] = after;
      this.kindColumn[slot] = rows.kind[r]!;
      this.bitsColumn[slot] = rows.bits[r]!;
      this.viaColumn[slot] = newVia;
      this.ifaceColumn[slot] = newIface;
      this.targetColumn[slot] = newTarget;
      this.ownersColumn[slot] = rows.owners[r]!;
      this.staleOwnersColumn[slot] = rows.staleOwners[r]!;
      this.announcerColumn[slot] = rows.announcer[r]!;
      this.count(slot, 1);
    }
    this.rowSet.count = 0;
    this.createdSlots.length = 0;
    this.opStamp = (this.opStamp + 1) >>> 0 || 1;
    for (const id of this.createdVias) emptied.push(id);
    this.releaseUnusedVias(emptied, hooks);
  }

  private count(slot: number, sign: 1 | -1): void {
    const bits = this.bitsColumn[slot]!;
    const origin = this.originColumn[slot]!;
    const length = this.lengthColumn[slot]!;
    this.used += sign;
    this.usedLengthCounts[length] += sign;
    if (this.targetColumn[slot] !== TARGET_NONE) this.installed += sign;
    if (bits & STALE) this.stale += sign;
    if (bits & EVICTED) this.evicted += sign;
    if (bits & UNRESOLVED) this.unresolved += sign;
    if (origin === ORIGIN_NEIGHBOUR) this.neighbourRoutes += sign;
    else if (origin === ORIGIN_ROUTER) this.routerLengthCounts[length] += sign;
  }

  /**
   * One router's session ended or its resync begins: its announcements go stale. A router entry
   * is STALE once every router announcing it is; a neighbour host route when `neighbourStale`
   * says its neighbour is (every router that reported it is stale); adopted entries always are.
   */
  markRouterStale(routerBit: number, neighbourStale: (slot: number) => boolean): void {
    const { originColumn: origin, bitsColumn: bits, ownersColumn: owners, staleOwnersColumn: staleOwners } = this;
    for (let slot = 0; slot < this.top; slot++) {
      const o = origin[slot]!;
      if (o < ORIGIN_ROUTER || bits[slot]! & STALE) continue;
      if (o === ORIGIN_ROUTER) {
        if (!(owners[slot]! & routerBit)) continue;
        staleOwners[slot] = (staleOwners[slot]! | routerBit) >>> 0;
        if ((owners[slot]! & ~staleOwners[slot]!) !== 0) continue;
      } else if (o === ORIGIN_NEIGHBOUR && !neighbourStale(slot)) continue;
      bits[slot] |= STALE;
      this.stale++;
    }
  }

  // ---- vias -------------------------------------------------------------------------------------------

  /** The via for a gateway on an interface; when new it is created unused and passed to `created`. */
  internVia(
    ifaceId: number,
    routerIfindex: number,
    gateway: Uint8Array,
    offset: number,
    created: (via: Via) => void,
  ): number {
    const hex = Buffer.from(gateway.buffer, gateway.byteOffset + offset, this.width).toString('hex');
    const key = `${ifaceId}|${hex}`;
    const known = this.viaIds.get(key);
    if (known !== undefined) return known;
    const id = this.freeVias.pop() ?? this.viaList.length;
    this.viaList[id] = {
      id,
      key,
      ifaceId,
      gateway: Buffer.from(gateway.subarray(offset, offset + this.width)),
      neighbourKey: `${routerIfindex}|${hex}`,
      head: -1,
      refs: 0,
    };
    this.viaIds.set(key, id);
    this.createdVias.push(id);
    if (id >= this.viaStamp.length) {
      const size = Math.max(64, this.viaStamp.length * 2);
      this.viaStamp = grown(this.viaStamp, size);
      this.viaTargetColumn = grown(this.viaTargetColumn, size);
      this.viaUnresolvedColumn = grown(this.viaUnresolvedColumn, size);
    }
    this.viaStamp[id] = 0;
    created(this.viaList[id]!);
    return id;
  }

  /** Slots of the entries through a via (committed state). */
  slotsOf(viaId: number, visit: (slot: number) => void): void {
    for (let slot = this.viaList[viaId]?.head ?? -1; slot >= 0; slot = this.viaNext[slot]!) visit(slot);
  }

  private linkVia(slot: number, viaId: number): void {
    const via = this.viaList[viaId]!;
    this.viaPrev[slot] = -1;
    this.viaNext[slot] = via.head;
    if (via.head >= 0) this.viaPrev[via.head] = slot;
    via.head = slot;
    via.refs++;
  }

  /** Returns true when the via has no entry left. */
  private unlinkVia(slot: number, viaId: number): boolean {
    const via = this.viaList[viaId]!;
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
      const via = this.viaList[id];
      if (!via || via.refs > 0) continue;
      this.viaList[id] = undefined;
      this.viaIds.delete(via.key);
      this.freeVias.push(id);
      hooks.viaReleased(via);
    }
    this.createdVias.length = 0;
  }
}
