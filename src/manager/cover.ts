// "Does this prefix cover any of these prefixes?" over a fixed set, by binary search on
// hex addresses. Memory control uses it so that a route added while routes are evicted
// cannot shadow an evicted, more specific route (the packet must reach the VM instead).
import type { Family } from './ip.js';

interface Item {
  readonly hex: string;
  readonly length: number;
}

function hexOf(addr: Uint8Array): string {
  return Buffer.from(addr.buffer, addr.byteOffset, addr.byteLength).toString('hex');
}

/** The last address of a prefix: its host bits set. */
function lastAddress(addr: Uint8Array, length: number): Buffer {
  const out = Buffer.from(addr);
  for (let byte = length >> 3; byte < out.length; byte++) {
    out[byte] = byte === length >> 3 ? out[byte]! | (0xff >> (length & 7)) : 0xff;
  }
  return out;
}

export class CoverIndex {
  private readonly items: Record<Family, Item[]> = { 4: [], 6: [] };

  constructor(prefixes: Iterable<{ family: Family; addr: Uint8Array; length: number }>) {
    for (const p of prefixes) this.items[p.family].push({ hex: hexOf(p.addr), length: p.length });
    for (const list of Object.values(this.items)) list.sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : a.length - b.length));
  }

  get size(): number {
    return this.items[4].length + this.items[6].length;
  }

  /** True when some indexed prefix is strictly more specific than, and inside, `addr/length`. */
  coversAny(family: Family, addr: Uint8Array, length: number): boolean {
    const list = this.items[family];
    const low = hexOf(addr);
    const high = lastAddress(addr, length).toString('hex');
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.hex < low) lo = mid + 1;
      else hi = mid;
    }
    // Inside the range, only entries at the very first address can be shorter (they cover
    // this prefix instead): at most one per length, so the scan stops quickly.
    for (let i = lo; i < list.length && list[i]!.hex <= high; i++) {
      const item = list[i]!;
      if (item.hex === low && item.length <= length) continue;
      return true;
    }
    return false;
  }
}
