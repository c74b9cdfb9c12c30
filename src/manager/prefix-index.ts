// IPv4 prefix -> slot, as an open-addressing hash table over one typed array. A Map keyed by
// numbers above 2^31 (addr * 64 + length) costs ~400 ns per insert and ~300 ns per lookup
// for a million prefixes (every key is a heap number); this allocates nothing per entry and
// keeps a bucket's address, length and slot in one 16-byte cell, so that a probe costs one
// cache miss: what lets a full table through the manager in well under a second.

/** Words per bucket: address, length (EMPTY when unused), slot, padding (cells stay aligned). */
const CELL = 4;
const EMPTY = -1;

/** Murmur-style mix of the address and the length. */
function bucketOf(addr: number, length: number, mask: number): number {
  let h = Math.imul((addr ^ Math.imul(length + 1, 0x9e3779b1)) | 0, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h & mask;
}

export class PrefixIndex4 {
  private cells: Int32Array;
  private mask: number;
  private count = 0;

  constructor(initialBuckets = 1024) {
    let buckets = 16;
    while (buckets < initialBuckets) buckets *= 2;
    this.cells = new Int32Array(buckets * CELL).fill(EMPTY);
    this.mask = buckets - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The slot of addr/length (host-order address), or -1. */
  get(addr: number, length: number): number {
    const { cells, mask } = this;
    const a = addr | 0;
    for (let i = bucketOf(addr, length, mask); ; i = (i + 1) & mask) {
      const o = i * CELL;
      const l = cells[o + 1]!;
      if (l === EMPTY) return -1;
      if (l === length && cells[o] === a) return cells[o + 2]!;
    }
  }

  /**
   * One probe for "find, or insert if absent": returns the slot already there, or -1 after
   * inserting addr/length -> `slot`.
   */
  getOrSet(addr: number, length: number, slot: number): number {
    // Linear probing stays short below ~60 % load.
    if ((this.count + 1) * 5 > (this.mask + 1) * 3) this.grow();
    const { cells, mask } = this;
    const a = addr | 0;
    let i = bucketOf(addr, length, mask);
    for (; ; i = (i + 1) & mask) {
      const o = i * CELL;
      const l = cells[o + 1]!;
      if (l === EMPTY) break;
      if (l === length && cells[o] === a) return cells[o + 2]!;
    }
    const o = i * CELL;
    cells[o] = a;
    cells[o + 1] = length;
    cells[o + 2] = slot;
    this.count++;
    return -1;
  }

  /** Inserts or replaces. */
  set(addr: number, length: number, slot: number): void {
    const known = this.getOrSet(addr, length, slot);
    if (known >= 0 && known !== slot) {
      const { cells, mask } = this;
      const a = addr | 0;
      for (let i = bucketOf(addr, length, mask); ; i = (i + 1) & mask) {
        const o = i * CELL;
        if (cells[o + 1] === length && cells[o] === a) {
          cells[o + 2] = slot;
          return;
        }
      }
    }
  }

  /** Grows once so that `entries` fit without further growth. */
  reserve(entries: number): void {
    while (entries * 5 > (this.mask + 1) * 3) this.grow();
  }

  /** Removes addr/length; returns whether it was there. Backward-shift deletion: no tombstones. */
  delete(addr: number, length: number): boolean {
    const { cells, mask } = this;
    const a = addr | 0;
    let i = bucketOf(addr, length, mask);
    for (; ; i = (i + 1) & mask) {
      const o = i * CELL;
      const l = cells[o + 1]!;
      if (l === EMPTY) return false;
      if (l === length && cells[o] === a) break;
    }
    // Move later entries of the probe run back into the hole when their home allows it.
    for (let j = (i + 1) & mask; cells[j * CELL + 1] !== EMPTY; j = (j + 1) & mask) {
      const o = j * CELL;
      const home = bucketOf(cells[o]! >>> 0, cells[o + 1]!, mask);
      const between = i <= j ? home > i && home <= j : home > i || home <= j;
      if (between) continue;
      cells.copyWithin(i * CELL, o, o + 3);
      i = j;
    }
    cells[i * CELL + 1] = EMPTY;
    this.count--;
    return true;
  }

  private grow(): void {
    const old = this.cells;
    const buckets = (this.mask + 1) * 2;
    this.cells = new Int32Array(buckets * CELL).fill(EMPTY);
    this.mask = buckets - 1;
    this.count = 0;
    for (let o = 0; o < old.length; o += CELL)
      if (old[o + 1] !== EMPTY) this.getOrSet(old[o]! >>> 0, old[o + 1]!, old[o + 2]!);
  }
}
