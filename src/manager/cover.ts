// "Does this prefix cover any of these prefixes?" over a fixed set, by binary search. Memory
// control uses it so that a route added while routes are evicted cannot shadow an evicted,
// more specific route (the packet must reach the VM instead). IPv4 prefixes are numbers
// (addr * 64 + length, sorted as doubles); IPv6 ones are hex strings.

function hexOf(addr: Uint8Array, offset: number): string {
  return Buffer.from(addr.buffer, addr.byteOffset + offset, 16).toString('hex');
}

/** The last address of an IPv6 prefix: its host bits set. */
function lastAddress6(addr: Uint8Array, offset: number, length: number): Buffer {
  const out = Buffer.from(addr.subarray(offset, offset + 16));
  for (let byte = length >> 3; byte < 16; byte++) {
    out[byte] = byte === length >> 3 ? out[byte]! | (0xff >> (length & 7)) : 0xff;
  }
  return out;
}

export class CoverIndexBuilder {
  private readonly v4: number[] = [];
  private readonly v6: { hex: string; length: number }[] = [];

  add4(addr: number, length: number): void {
    this.v4.push(addr * 64 + length);
  }

  add6(addr: Uint8Array, offset: number, length: number): void {
    this.v6.push({ hex: hexOf(addr, offset), length });
  }

  build(): CoverIndex {
    return new CoverIndex(
      Float64Array.from(this.v4).sort(),
      this.v6.sort((a, b) => (a.hex < b.hex ? -1 : a.hex > b.hex ? 1 : a.length - b.length)),
    );
  }
}

export class CoverIndex {
  constructor(
    private readonly v4: Float64Array,
    private readonly v6: readonly { hex: string; length: number }[],
  ) {}

  get size(): number {
    return this.v4.length + this.v6.length;
  }

  /** True when some indexed IPv4 prefix is strictly more specific than, and inside, addr/length (host-order address). */
  covers4(addr: number, length: number): boolean {
    const list = this.v4;
    const high = addr + (length === 0 ? 0x100000000 : 2 ** (32 - length)) - 1;
    let lo = 0;
    let hi = list.length;
    const start = addr * 64;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]! < start) lo = mid + 1;
      else hi = mid;
    }
    // Inside the range only entries at the very first address can be shorter (they cover
    // this prefix instead): at most one per length, so the scan stops quickly.
    for (let i = lo; i < list.length; i++) {
      const item = list[i]!;
      const itemAddr = Math.floor(item / 64);
      if (itemAddr > high) return false;
      if (itemAddr === addr && item - itemAddr * 64 <= length) continue;
      return true;
    }
    return false;
  }

  /** The same for IPv6 (16 address bytes at `offset`). */
  covers6(addr: Uint8Array, offset: number, length: number): boolean {
    const list = this.v6;
    const low = hexOf(addr, offset);
    const high = lastAddress6(addr, offset, length).toString('hex');
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.hex < low) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < list.length && list[i]!.hex <= high; i++) {
      const item = list[i]!;
      if (item.hex === low && item.length <= length) continue;
      return true;
    }
    return false;
  }
}
