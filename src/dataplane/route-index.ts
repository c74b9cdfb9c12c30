// The IPv4 fast path's exact-match route index (bpf/xnetmon.h, xnm_routes4_exact): every
// IPv4 route of the trie again under its exact prefix, and per network the prefix lengths
// it has (xnm_route4_lengths), so that the data plane finds the longest match with one hash
// probe per length instead of a walk of ~20 trie nodes. The trie stays the table of record;
// an entry missing from the index is never wrong while its network is not marked indexed.
import { type BpfMap, ROUTE4_MAX_PROBES, route4ExactKeyLayout, route4LengthsLayout } from '../loader/index.js';

const KEY_SIZE = 12;

function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class Route4Index {
  constructor(
    private readonly exact: BpfMap,
    private readonly lengths: BpfMap,
  ) {}

  /** Index keys for trie keys (xnm_route4_key: prefixlen = 32 + length, net_id, address), back to back.
   *  Word by word through typed arrays: a million keys in a few ms (host order but the address). */
  static keysOf(trieKeys: Buffer, count: number): Buffer {
    const src = new Uint32Array(count * 3);
    new Uint8Array(src.buffer).set(trieKeys.subarray(0, count * KEY_SIZE));
    const out = new Uint32Array(count * 3);
    for (let i = 0; i < count * 3; i += 3) {
      out[i] = src[i + 1]; // net_id
      out[i + 1] = src[i] - 32; // prefix length
      out[i + 2] = src[i + 2]; // address, network order either way
    }
    return Buffer.from(out.buffer, 0, count * KEY_SIZE);
  }

  static key(netId: number, length: number, addr: number): Buffer {
    return route4ExactKeyLayout.encode({ net_id: netId, prefixlen: length, addr });
  }

  /** What the fast path probes for a network with these prefix lengths (bit L: length L). */
  static lengthsValue(present: bigint): Buffer {
    const lengths: number[] = [];
    for (let len = 32; len >= 0; len--) if (present & (1n << BigInt(len))) lengths.push(len);
    const probed = lengths.slice(0, ROUTE4_MAX_PROBES);
    return route4LengthsLayout.encode({
      indexed: 1,
      count: probed.length,
      more: lengths.length > probed.length ? 1 : 0,
      pad: 0,
      len: [...probed, ...new Array<number>(ROUTE4_MAX_PROBES - probed.length).fill(0)],
      pad2: 0,
      present,
    });
  }

  /** Marks the lengths of these index keys as present in their networks, and the networks as
   *  indexed: before the entries are written, so that no written entry is ever skipped. */
  markLengths(indexKeys: Buffer, count: number): void {
    const words = new Uint32Array(count * 3);
    new Uint8Array(words.buffer).set(indexKeys.subarray(0, count * KEY_SIZE));
    const seen = new Map<number, Uint8Array>();
    for (let i = 0; i < count * 3; i += 3) {
      let lengths = seen.get(words[i]);
      if (!lengths) {
        lengths = new Uint8Array(33);
        seen.set(words[i], lengths);
      }
      lengths[words[i + 1] & 63] = 1;
    }
    for (const [netId, lengths] of seen) {
      let add = 0n;
      lengths.forEach((present, len) => {
        if (present) add |= 1n << BigInt(len);
      });
      const key = u32Key(netId);
      const old = this.lengths.lookup(key);
      const current = old ? (route4LengthsLayout.decode(old).present as bigint) : 0n;
      if (old?.readUInt8(0) === 1 && (current | add) === current) continue;
      this.lengths.update(key, Route4Index.lengthsValue(current | add));
    }
  }

  get map(): BpfMap {
    return this.exact;
  }

  /** Removes a network's entries (or every network's) and its lengths: its lookups go to the trie. */
  clear(netId?: number): void {
    const { keys, count } = this.exact.lookupAll();
    const doomed: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const key = keys.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE);
      if (netId === undefined || key.readUInt32LE(0) === netId) doomed.push(key);
    }
    if (doomed.length) this.exact.deleteBatch(Buffer.concat(doomed), doomed.length);
    const empty = Buffer.alloc(route4LengthsLayout.size);
    if (netId !== undefined) this.lengths.update(u32Key(netId), empty);
    else {
      const { keys: ids, values, count: n } = this.lengths.lookupAll();
      const size = route4LengthsLayout.size;
      for (let i = 0; i < n; i++) {
        if (values.readUInt8(i * size) !== 0) this.lengths.update(ids.subarray(i * 4, i * 4 + 4), empty);
      }
    }
  }

  /** Indexes every route of the trie: for maps pinned by a data plane that had no index. */
  rebuild(trie: BpfMap): number {
    const keys: Buffer[] = [];
    const values: Buffer[] = [];
    for (const key of trie.keys()) {
      const value = trie.lookup(key); // the exact key's own route: no longer prefix can match it
      if (!value) continue;
      keys.push(key);
      values.push(value);
    }
    if (!keys.length) return 0;
    const indexKeys = Route4Index.keysOf(Buffer.concat(keys), keys.length);
    this.markLengths(indexKeys, keys.length);
    this.exact.updateBatch(indexKeys, Buffer.concat(values), keys.length, 262144);
    return keys.length;
  }
}
