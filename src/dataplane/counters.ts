// The data plane's counters (xnm_stats, per CPU, one slot per network; 0 is traffic of no
// network): verdicts by reason, packets and bytes by path, CPU cost and link bytes offered and
// carried. One decoder knows the struct's layout and how per-CPU copies lie in a batch read;
// the controller's fast read (numbers) and the exact counters (BigInt) both go through it.
import { join } from 'node:path';
import { BpfMap, MAX_LINKS, PATHS, REASONS, netStatsLayout, type PathName, type ReasonName } from '../loader/index.js';
import { u32Key } from './shared.js';

export interface NetCounters {
  netId: number;
  verdicts: Record<ReasonName, bigint>;
  pathPackets: Record<PathName, bigint>;
  pathBytes: Record<PathName, bigint>;
  cpuOffered: bigint;
  cpuCarried: bigint;
  linkOffered: bigint[];
  linkCarried: bigint[];
}

/** What the controller reads each period, as plain numbers (cumulative). */
export interface UsageColumns {
  cpuOffered: Float64Array;
  cpuCarried: Float64Array;
  /** [i * MAX_LINKS + slot] */
  linkOffered: Float64Array;
  linkCarried: Float64Array;
}

/** Word offsets (u32) of xnm_net_stats' fields, resolved once from the layout checked against BTF. */
const FIELD = {
  verdict: netStatsLayout.field('verdict').offset >> 2,
  pathPackets: netStatsLayout.field('path_packets').offset >> 2,
  pathBytes: netStatsLayout.field('path_bytes').offset >> 2,
  cpuOffered: netStatsLayout.field('cpu_offered').offset >> 2,
  cpuCarried: netStatsLayout.field('cpu_carried').offset >> 2,
  linkOffered: netStatsLayout.field('link_offered').offset >> 2,
  linkCarried: netStatsLayout.field('link_carried').offset >> 2,
};

/**
 * Slots of xnm_stats as a lookup returns them: per slot, one copy per possible CPU, each
 * rounded up to 8 bytes. Sums a u64 field (`at`: its word offset, `index`: the array element)
 * over CPUs, as a number (exact below 2^53: the controller's rates) or a BigInt (exact).
 */
export class StatsDecoder {
  private readonly words: Uint32Array;
  private readonly slotWords: number;
  private readonly cpuWords: number;
  private readonly cpus: number;

  constructor(stats: BpfMap, values: Buffer) {
    // A Uint32Array view needs 4-byte alignment; a pooled Buffer may not have it.
    this.words =
      values.byteOffset % 4 === 0
        ? new Uint32Array(values.buffer, values.byteOffset, values.byteLength >> 2)
        : new Uint32Array(Uint8Array.from(values).buffer);
    this.slotWords = stats.valueBufferSize >> 2;
    this.cpuWords = (Math.ceil(stats.valueSize / 8) * 8) >> 2;
    this.cpus = this.slotWords / this.cpuWords;
  }

  /** Slots in the buffer. */
  get slots(): number {
    return Math.floor(this.words.length / this.slotWords);
  }

  sum(slot: number, at: number, index = 0): number {
    let total = 0;
    const w = this.words;
    for (let c = 0, base = slot * this.slotWords + at + index * 2; c < this.cpus; c++, base += this.cpuWords) {
      total += w[base] + w[base + 1] * 4294967296;
    }
    return total;
  }

  sumExact(slot: number, at: number, index = 0): bigint {
    let total = 0n;
    const w = this.words;
    for (let c = 0, base = slot * this.slotWords + at + index * 2; c < this.cpus; c++, base += this.cpuWords) {
      total += BigInt(w[base]) + (BigInt(w[base + 1]) << 32n);
    }
    return total;
  }

  counters(netId: number, slot: number): NetCounters {
    const exact = (at: number, index = 0): bigint => (slot < this.slots ? this.sumExact(slot, at, index) : 0n);
    const perLink = (at: number): bigint[] => Array.from({ length: MAX_LINKS }, (_, l) => exact(at, l));
    return {
      netId,
      verdicts: Object.fromEntries(REASONS.map((r, i) => [r, exact(FIELD.verdict, i)])) as Record<ReasonName, bigint>,
      pathPackets: Object.fromEntries(PATHS.map((p, i) => [p, exact(FIELD.pathPackets, i)])) as Record<
        PathName,
        bigint
      >,
      pathBytes: Object.fromEntries(PATHS.map((p, i) => [p, exact(FIELD.pathBytes, i)])) as Record<PathName, bigint>,
      cpuOffered: exact(FIELD.cpuOffered),
      cpuCarried: exact(FIELD.cpuCarried),
      linkOffered: perLink(FIELD.linkOffered),
      linkCarried: perLink(FIELD.linkCarried),
    };
  }
}

/**
 * The controller's fast read: one batch syscall for ids 0..max, then summing the
 * few fields it needs over CPUs through 32-bit views (no BigInt): ~1 ms for 1,000 networks.
 */
export function readUsageFrom(stats: BpfMap, ids: readonly number[]): UsageColumns {
  const maxId = ids.reduce((m, id) => Math.max(m, id), 0);
  const decoder = new StatsDecoder(stats, stats.lookupPrefix(maxId + 1));
  const out: UsageColumns = {
    cpuOffered: new Float64Array(ids.length),
    cpuCarried: new Float64Array(ids.length),
    linkOffered: new Float64Array(ids.length * MAX_LINKS),
    linkCarried: new Float64Array(ids.length * MAX_LINKS),
  };
  ids.forEach((id, i) => {
    if (id >= decoder.slots) return;
    out.cpuOffered[i] = decoder.sum(id, FIELD.cpuOffered);
    out.cpuCarried[i] = decoder.sum(id, FIELD.cpuCarried);
    for (let l = 0; l < MAX_LINKS; l++) {
      out.linkOffered[i * MAX_LINKS + l] = decoder.sum(id, FIELD.linkOffered, l);
      out.linkCarried[i * MAX_LINKS + l] = decoder.sum(id, FIELD.linkCarried, l);
    }
  });
  return out;
}

/** Counters of the given networks from an xnm_stats map, summed over CPUs. */
export function readCountersFrom(stats: BpfMap, ids: readonly number[]): NetCounters[] {
  // For more than a few networks one batch read of slots 0..max is cheaper than a syscall each.
  if (ids.length > 8) {
    const decoder = new StatsDecoder(stats, stats.lookupPrefix(ids.reduce((m, id) => Math.max(m, id), 0) + 1));
    return ids.map((id) => decoder.counters(id, id));
  }
  return ids.map((id) => {
    const value = stats.lookup(u32Key(id));
    return new StatsDecoder(stats, value ?? Buffer.alloc(0)).counters(id, 0);
  });
}

/** Counters read from a pinned data plane without loading anything (CLI, tests). */
export function readPinnedCounters(pinDir: string, ids: readonly number[]): NetCounters[] {
  const stats = BpfMap.fromPin(join(pinDir, 'xnm_stats'));
  try {
    return readCountersFrom(stats, ids);
  } finally {
    stats.close();
  }
}
