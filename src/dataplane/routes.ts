// Each network's forwarding table (paper IV-B): IPv4 and IPv6 LPM tries keyed by network and
// prefix (xnm_routes4, xnm_routes6). Writes are validated whole, then applied all or nothing;
// reads take the whole map in batch syscalls where the kernel allows it.
import { ValidationError } from '../errors/index.js';
import {
  RouteFlags,
  route4KeyLayout,
  route6KeyLayout,
  routeValLayout,
  type BpfMap,
  type LookupMode,
} from '../loader/index.js';
import { formatAddress } from '../net/index.js';
import { parsePrefix, type Prefix } from './prefix.js';
import type { Nexthops } from './nexthops.js';
import type { FlowCacheGeneration } from './shared.js';
import { Route4Index } from './route-index.js';

export type RouteTarget =
  | { kind: 'nexthop'; nexthopId: number }
  | { kind: 'via-vm' }
  | { kind: 'local' }
  | { kind: 'blackhole' };

export interface RouteSpec {
  prefix: string | Prefix;
  target: RouteTarget;
}

/** A route as read back from the maps. */
export interface InstalledRoute {
  netId: number;
  prefix: string;
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

/** How a route write is undone when the kernel refuses part of it (a full table). */
export interface RouteWriteOptions {
  /**
   * 'read' (the default): what the write replaces is read first and a refused write is undone here,
   * all or nothing. 'caller': nothing is read first and a refused write throws with part of it
   * applied; the caller knows what the maps held and writes it back (the manager's tables:
   * manager/writes.ts). A full table then costs its batch writes alone: the read of a network's
   * entries before each large write made a million-route resync quadratic (docs/manager.md).
   */
  undo?: 'read' | 'caller';
}

export interface ListRoutesOptions {
  /** Force how the maps are read ('per-key': one get_next_key and one lookup per route); default: batch where the kernel allows. */
  lookup?: LookupMode;
}

/** Entries per update batch syscall. */
const WRITE_CHUNK = 262144;
/** Entries per lookup batch syscall when reading a whole table. */
const READ_CHUNK = 65536;
/** Both key layouts start with prefixlen (u32: 32 bits of network id + the prefix length), then net_id. */
const NET_ID_OFFSET = 4;
const ADDR_OFFSET = 8;

function routeValue(target: RouteTarget): Buffer {
  switch (target.kind) {
    case 'nexthop':
      return routeValLayout.encode({ nexthop_id: target.nexthopId, flags: 0 });
    case 'via-vm':
      return routeValLayout.encode({ flags: RouteFlags.VIA_VM });
    case 'local':
      return routeValLayout.encode({ flags: RouteFlags.LOCAL });
    case 'blackhole':
      return routeValLayout.encode({ flags: RouteFlags.BLACKHOLE });
  }
}

function targetOf(nexthopId: number, flags: number): RouteTarget {
  if (flags & RouteFlags.BLACKHOLE) return { kind: 'blackhole' };
  if (flags & RouteFlags.LOCAL) return { kind: 'local' };
  if (flags & RouteFlags.VIA_VM) return { kind: 'via-vm' };
  return { kind: 'nexthop', nexthopId };
}

function routeKey(netId: number, p: Prefix): Buffer {
  return p.family === 4
    ? route4KeyLayout.encode({ prefixlen: 32 + p.length, net_id: netId, addr: p.addr.readUInt32BE(0) })
    : route6KeyLayout.encode({ prefixlen: 32 + p.length, net_id: netId, addr: [...p.addr] });
}

/** IPv4 trie keys of these prefixes, back to back, word by word (a sweep deletes a full table at once). */
function routeKeys4(netId: number, prefixes: readonly Prefix[]): Buffer {
  const words = new Uint32Array(prefixes.length * 3);
  const order = new DataView(words.buffer);
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    words[i * 3] = 32 + p.length;
    words[i * 3 + 1] = netId;
    order.setUint32(i * 12 + 8, p.addr.readUInt32BE(0), false); // the address in network order
  }
  return Buffer.from(words.buffer, 0, prefixes.length * 12);
}

export class Routes {
  constructor(
    private readonly routes4: BpfMap,
    private readonly routes6: BpfMap,
    private readonly nexthops: Nexthops,
    private readonly generation: FlowCacheGeneration,
    /** The fast path's exact-match copy of routes4 (route-index.ts). */
    private readonly index4: Route4Index,
  ) {}

  /**
   * Adds or replaces routes of one network. Every route is validated before the
   * maps are touched: one bad route rejects the whole call and changes nothing.
   */
  add(netId: number, routes: readonly RouteSpec[], options: RouteWriteOptions = {}): void {
    const parsed = routes.map((r, i) => {
      const p = typeof r.prefix === 'string' ? parsePrefix(r.prefix, `routes[${i}].prefix`) : r.prefix;
      if (r.target.kind === 'nexthop') this.nexthops.check(netId, r.target.nexthopId, `routes[${i}].nexthop`);
      return { p, value: routeValue(r.target) };
    });
    for (const family of [4, 6] as const) {
      const batch = parsed.filter((r) => r.p.family === family);
      if (!batch.length) continue;
      const keys = Buffer.concat(batch.map((r) => routeKey(netId, r.p)));
      const values = Buffer.concat(batch.map((r) => r.value));
      this.writeAll(family === 4 ? this.routes4 : this.routes6, netId, keys, values, batch.length, options);
    }
  }

  /** Full IPv4 tables: columns in, one batch syscall per 256k routes. */
  add4(netId: number, columns: Route4Columns, options: RouteWriteOptions = {}): void {
    const { count } = columns;
    // Typed-array views write the 12-byte keys and 8-byte values without per-field calls:
    // a million routes encode in ~15 ms. Keys are host-order words but for the address.
    const keyWords = new Uint32Array(count * 3);
    const valueWords = new Uint32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const len = columns.lengths[i];
      const addr = columns.addrs[i] >>> 0;
      if (len > 32) throw new ValidationError(`routes[${i}]`, `prefix length ${len} must be 0..32`);
      if (len < 32 && (addr & (0xffffffff >>> len)) !== 0) {
        const text = `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${len}`;
        throw new ValidationError(`routes[${i}]`, `host bits set in ${text}`);
      }
      keyWords[i * 3] = 32 + len;
      keyWords[i * 3 + 1] = netId;
      keyWords[i * 3 + 2] =
        (((addr & 0xff) << 24) | ((addr & 0xff00) << 8) | ((addr >>> 8) & 0xff00) | (addr >>> 24)) >>> 0; // to network order
      valueWords[i * 2] = columns.nexthops[i];
      valueWords[i * 2 + 1] = columns.flags ? columns.flags[i] : 0;
    }
    const keys = Buffer.from(keyWords.buffer, 0, count * 12);
    const values = Buffer.from(valueWords.buffer, 0, count * 8);
    this.writeAll(this.routes4, netId, keys, values, count, options);
  }

  /**
   * Removes routes; absent ones are ignored. Returns how many were removed. One batch delete
   * syscall per map and 64k routes (a stale sweep of a full table: one per key took seconds).
   */
  delete(netId: number, prefixes: readonly (string | Prefix)[]): number {
    const parsed = prefixes.map((p, i) => (typeof p === 'string' ? parsePrefix(p, `prefixes[${i}]`) : p));
    let removed = 0;
    try {
      for (const family of [4, 6] as const) {
        const batch = parsed.filter((p) => p.family === family);
        if (!batch.length) continue;
        const keys = family === 4 ? routeKeys4(netId, batch) : Buffer.concat(batch.map((p) => routeKey(netId, p)));
        // The index first: a lookup meanwhile finds the next shorter prefix, as after the delete.
        if (family === 4) this.index4.map.deleteBatch(Route4Index.keysOf(keys, batch.length), batch.length);
        removed += (family === 4 ? this.routes4 : this.routes6).deleteBatch(keys, batch.length);
      }
    } finally {
      this.generation.bump();
    }
    return removed;
  }

  /**
   * The routes of one network (or all), read from the maps: what `xnetmon routes` shows and what
   * the manager adopts after a restart. One lookup batch syscall per 64k routes, or one
   * get_next_key and one lookup per route where the kernel has no batch lookup for LPM tries.
   */
  list(netId?: number, options: ListRoutesOptions = {}): InstalledRoute[] {
    const out: InstalledRoute[] = [];
    for (const [map, family] of [
      [this.routes4, 4],
      [this.routes6, 6],
    ] as const) {
      const { keys, values, count } = map.lookupAll(READ_CHUNK, options.lookup ?? map.lookupMode);
      const ks = map.keySize;
      const vs = map.valueBufferSize;
      const oNexthop = routeValLayout.field('nexthop_id').offset;
      const oFlags = routeValLayout.field('flags').offset;
      for (let i = 0; i < count; i++) {
        const k = i * ks;
        const id = keys.readUInt32LE(k + NET_ID_OFFSET);
        if (netId !== undefined && id !== netId) continue;
        const length = keys.readUInt32LE(k) - 32;
        const prefix = `${formatAddress(keys, k + ADDR_OFFSET, family)}/${length}`;
        out.push({
          netId: id,
          prefix,
          target: targetOf(values.readUInt32LE(i * vs + oNexthop), values.readUInt32LE(i * vs + oFlags)),
        });
      }
    }
    return out;
  }

  /** How the last whole-table read went, per family (undefined before the first). */
  lookupModes(): { routes4: LookupMode | undefined; routes6: LookupMode | undefined } {
    return { routes4: this.routes4.lookupMode, routes6: this.routes6.lookupMode };
  }

  /** Keys of one network (or all) in a route map. */
  private keysOf(map: BpfMap, netId?: number): Buffer[] {
    const { keys, count } = map.lookupAll(READ_CHUNK);
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * map.keySize, (i + 1) * map.keySize);
      if (netId === undefined || key.readUInt32LE(NET_ID_OFFSET) === netId) out.push(key);
    }
    return out;
  }

  /** Removes every route of a network (or of all networks). */
  flush(netId?: number): number {
    let removed = 0;
    for (const map of [this.routes4, this.routes6]) removed += deleteKeys(map, this.keysOf(map, netId));
    this.index4.clear(netId);
    this.generation.bump();
    return removed;
  }

  /** The networks that hold a route. */
  networkIds(): Set<number> {
    const ids = new Set<number>();
    for (const map of [this.routes4, this.routes6])
      for (const k of this.keysOf(map)) ids.add(k.readUInt32LE(NET_ID_OFFSET));
    return ids;
  }

  /** Removes a network's routes without bumping the generation (the caller does); returns how many. */
  purge(netId: number): number {
    let removed = 0;
    for (const map of [this.routes4, this.routes6]) removed += deleteKeys(map, this.keysOf(map, netId));
    this.index4.clear(netId);
    return removed;
  }

  /** Indexes every IPv4 route of the trie (maps pinned by a data plane without the index). */
  rebuildIndex(): number {
    return this.index4.rebuild(this.routes4);
  }

  /**
   * Writes all entries or none (writeAllOrNothing; undo 'caller': the caller undoes), then empties
   * the flow cache either way.
   */
  private writeAll(
    map: BpfMap,
    netId: number,
    keys: Buffer,
    values: Buffer,
    count: number,
    options: RouteWriteOptions,
  ): void {
    try {
      if (options.undo === 'caller') {
        writeBatches(map, keys, values, count);
        if (map !== this.routes4) return;
        const indexKeys = Route4Index.keysOf(keys, count);
        this.index4.markLengths(indexKeys, count);
        writeBatches(this.index4.map, indexKeys, values, count);
        return;
      }
      const written = writeAllOrNothing(map, netId, keys, values, count);
      if (map !== this.routes4) return;
      // IPv4: the index too (lengths marked before entries); a batch it refuses leaves the trie again.
      const indexKeys = Route4Index.keysOf(keys, count);
      try {
        this.index4.markLengths(indexKeys, count);
        writeIndexBatch(this.index4.map, indexKeys, values, count, written.saved);
      } catch (err) {
        written.undo();
        throw err;
      }
    } finally {
      this.generation.bump();
    }
  }
}

/** Deletes these keys of a map in batches; returns how many were there. */
function deleteKeys(map: BpfMap, keys: readonly Buffer[]): number {
  return keys.length ? map.deleteBatch(Buffer.concat(keys), keys.length) : 0;
}

/** Batch writes without a rollback: a refused one throws with the entries before it applied. */
function writeBatches(map: BpfMap, keys: Buffer, values: Buffer, count: number): void {
  const ks = map.keySize;
  const vs = map.valueBufferSize;
  for (let at = 0; at < count; at += WRITE_CHUNK) {
    const n = Math.min(WRITE_CHUNK, count - at);
    const chunkKeys = keys.subarray(at * ks, (at + n) * ks);
    const result = map.tryUpdateBatch(chunkKeys, values.subarray(at * vs, (at + n) * vs), n);
    if (result.errno !== 0) {
      throw map.errorFor('bpf_map_update_batch', result.errno, `${at + result.applied} of ${count} entries applied`);
    }
  }
}

/** Up to this many entries, the previous value of each is read before a write (two syscalls each: exactValue). */
const SMALL_WRITE = 4096;

/**
 * A batch write that leaves the map as it was when the kernel refuses part of it (a full table).
 * What the rollback needs is read first: for a small write, the previous value of each key; for
 * a large one (a full table), the network's entries in one batch read of the map, and nothing
 * when the map is empty (a first load costs the batch writes alone). On failure every written
 * key is deleted and what was there is written back.
 */
export function writeAllOrNothing(
  map: BpfMap,
  netId: number,
  keys: Buffer,
  values: Buffer,
  count: number,
): WrittenBatch {
  const ks = map.keySize;
  const keyAt = (i: number): Buffer => keys.subarray(i * ks, (i + 1) * ks);
  const previous: (Buffer | undefined)[] = [];
  let saved: SavedEntries | undefined;
  if (count <= SMALL_WRITE) {
    const first = map.nextKey(null);
    for (let i = 0; i < count; i++) previous.push(exactValue(map, keyAt(i), first));
  } else {
    saved = entriesOf(map, netId);
  }
  const vs = map.valueBufferSize;
  // Undoing an entry that was not written is harmless: it deletes an absent key or rewrites a value.
  const undo = (written: number) => {
    if (saved) {
      for (let i = 0; i < written; i++) map.delete(keyAt(i));
      if (saved.count) map.updateBatch(saved.keys, saved.values, saved.count);
    } else {
      for (let i = 0; i < count; i++) {
        const old = previous[i];
        if (old) map.update(keyAt(i), old);
        else map.delete(keyAt(i));
      }
    }
  };
  for (let at = 0; at < count; at += WRITE_CHUNK) {
    const n = Math.min(WRITE_CHUNK, count - at);
    const result = map.tryUpdateBatch(
      keys.subarray(at * ks, (at + n) * ks),
      values.subarray(at * vs, (at + n) * vs),
      n,
    );
    if (result.errno === 0) continue;
    const applied = `${at + result.applied} of ${count} entries applied, all undone`;
    const error = map.errorFor('bpf_map_update_batch', result.errno, applied);
    undo(at + n);
    throw error;
  }
  return { undo: () => undo(count), saved };
}

/** Keys and values of a map's entries, back to back. */
export interface SavedEntries {
  keys: Buffer;
  values: Buffer;
  count: number;
}

/** A batch written all or nothing: how to undo it, and (a large one) the network's entries before it. */
export interface WrittenBatch {
  undo: () => void;
  saved: SavedEntries | undefined;
}

/**
 * The index's part of a write: a refused batch leaves no entry of it (the trie's undo follows).
 * A large write puts back what it replaced from `saved`, the network's trie entries before the
 * write (each of them was in the index): the index never lacks a route its trie holds.
 */
function writeIndexBatch(
  map: BpfMap,
  keys: Buffer,
  values: Buffer,
  count: number,
  saved: SavedEntries | undefined,
): void {
  const ks = map.keySize;
  const previous: (Buffer | undefined)[] = [];
  if (count <= SMALL_WRITE) {
    for (let i = 0; i < count; i++) previous.push(map.lookup(keys.subarray(i * ks, (i + 1) * ks)));
  }
  try {
    map.updateBatch(keys, values, count, WRITE_CHUNK);
  } catch (err) {
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * ks, (i + 1) * ks);
      const old = previous[i];
      if (old) map.update(key, old);
      else map.delete(key);
    }
    if (saved?.count) {
      map.updateBatch(Route4Index.keysOf(saved.keys, saved.count), saved.values, saved.count, WRITE_CHUNK);
    }
    throw err;
  }
}

/**
 * The value stored under exactly this prefix, or undefined. A lookup in an LPM trie answers the
 * longest prefix that covers the key (a default route covers every key), so existence is asked of
 * get_next_key: for a key the trie does not hold it answers the first key, for one it holds the
 * next key or nothing (`first`: the trie's first key, read once per write).
 */
function exactValue(map: BpfMap, key: Buffer, first: Buffer | undefined): Buffer | undefined {
  if (!first) return undefined; // an empty trie
  if (!key.equals(first)) {
    const next = map.nextKey(key);
    if (next?.equals(first)) return undefined;
  }
  return map.lookup(key);
}

/** One network's entries of a route map (keys and values back to back), by a whole-map read. */
function entriesOf(map: BpfMap, netId: number): SavedEntries {
  const all = map.lookupAll(READ_CHUNK);
  const ks = map.keySize;
  const vs = map.valueBufferSize;
  const keys: Buffer[] = [];
  const values: Buffer[] = [];
  for (let i = 0; i < all.count; i++) {
    if (all.keys.readUInt32LE(i * ks + NET_ID_OFFSET) !== netId) continue;
    keys.push(all.keys.subarray(i * ks, (i + 1) * ks));
    values.push(all.values.subarray(i * vs, (i + 1) * vs));
  }
  return { keys: Buffer.concat(keys), values: Buffer.concat(values), count: keys.length };
}
