// Flow-aware CPU punishment (approximate fair dropping, Pan, Prabhakar, Breslau, Shenker 2003):
// the data plane estimates each flow's rate in a count-min sketch and counts a punished network's
// offered packets by that rate in a histogram (bpf/xnetmon.h, xnm_fair_stats). A flow at rate m
// (sketch units: packets per 67 ms epoch, halved per epoch) is dropped with 1 - F/m when m > F and
// never when m <= F. Here the controller picks F, the network's fair per-flow rate, so that the
// expected drops over last period's histogram equal the fraction p the control law asked for.
import { type BpfMap, FAIR_BUCKETS, fairStatsLayout } from '../loader/index.js';
import { readPerCpuWords } from './shared.js';

/** Per network, summed over CPUs (cumulative). */
export interface FairColumns {
  /** [i * FAIR_BUCKETS + bucket]: offered packets whose flow read that rate. */
  hist: Float64Array;
  /** Packets to the manager's port spared from CPU punishment. */
  channelExempt: Float64Array;
  /** ARP and ND packets spared from CPU punishment. */
  neighbourExempt: Float64Array;
}

/** The largest fair rate the data plane holds (a u32). */
const MAX_FAIR = 0xffffffff;

/** A fair rate as the data plane stores it: a u32, 0 for none. */
export function fairRate(fair: number | undefined): number {
  if (fair === undefined || !Number.isFinite(fair) || fair <= 0) return 0;
  return Math.min(MAX_FAIR, Math.round(fair));
}

/**
 * A rate bucket's bounds (bpf/xnetmon.h: two per octave): bucket 2k holds [2^k, 1.5 * 2^k),
 * 2k + 1 holds [1.5 * 2^k, 2^(k+1)); the last one also holds everything above it.
 */
export function bucketBounds(bucket: number): { low: number; high: number } {
  const octave = bucket >> 1;
  const base = 2 ** octave;
  if (octave === 0) return bucket === 0 ? { low: 1, high: 2 } : { low: 2, high: 2 };
  return (bucket & 1) === 0 ? { low: base, high: base * 1.5 } : { low: base * 1.5, high: base * 2 };
}

/**
 * Expected fraction of the histogram's packets dropped at fair rate F. Rates are integers, and a
 * bucket's packets are taken as spread evenly over the integers it holds (a bucket in octave 0
 * and 1 holds a single rate, exact; wider ones are the approximation).
 */
export function fairDropFraction(hist: ArrayLike<number>, fair: number): number {
  let total = 0;
  let dropped = 0;
  for (let b = 0; b < hist.length; b++) {
    const n = hist[b];
    if (!(n > 0)) continue;
    total += n;
    const { low, high } = bucketBounds(b);
    const first = Math.ceil(low);
    const last = Math.max(first, Math.ceil(high) - 1);
    if (last <= fair) continue;
    // Mean of (1 - F/m) over integer rates m in [max(first, F+1), last], weighted by the share of
    // the bucket's rates that exceed F. Few buckets are wide; sum in closed form via the harmonic
    // approximation for wide ones.
    const from = Math.max(first, Math.floor(fair) + 1);
    const count = last - first + 1;
    const over = last - from + 1;
    const harmonic = over <= 64 ? sumInverse(from, last) : Math.log((last + 0.5) / (from - 0.5));
    dropped += (n * (over - fair * harmonic)) / count;
  }
  return total > 0 ? dropped / total : 0;
}

function sumInverse(from: number, to: number): number {
  let s = 0;
  for (let m = from; m <= to; m++) s += 1 / m;
  return s;
}

/**
 * The fair per-flow rate F at which the flows over it carry `dropFraction` of the network's
 * packets as drops (bisection: the dropped fraction falls as F rises). 0 (drop at random) when
 * there is no histogram, nothing to drop, everything to drop, or when even F = 1 drops less than
 * asked (every flow is as small as can be told apart: then random drops spread it evenly).
 */
export function solveFairRate(hist: ArrayLike<number>, dropFraction: number): number {
  if (!(dropFraction > 0) || dropFraction >= 1) return 0;
  let total = 0;
  let top = 0;
  for (let b = 0; b < hist.length; b++)
    if (hist[b] > 0) {
      total += hist[b];
      top = b;
    }
  if (total <= 0) return 0;
  let low = 1;
  let high = bucketBounds(top).high;
  if (fairDropFraction(hist, low) < dropFraction) return 0;
  for (let i = 0; i < 40 && high - low > 0.5; i++) {
    const mid = (low + high) / 2;
    if (fairDropFraction(hist, mid) >= dropFraction) low = mid;
    else high = mid;
  }
  return Math.max(1, Math.floor(low));
}

/** One batch read of xnm_fair for ids 0..max, summed over CPUs (no BigInt). */
export function readFairFrom(map: BpfMap, ids: readonly number[]): FairColumns {
  const out: FairColumns = {
    hist: new Float64Array(ids.length * FAIR_BUCKETS),
    channelExempt: new Float64Array(ids.length),
    neighbourExempt: new Float64Array(ids.length),
  };
  if (ids.length === 0) return out;
  const maxId = ids.reduce((m, id) => Math.max(m, id), 0);
  const { words, stride, cpuStride, cpus, u64 } = readPerCpuWords(map, maxId + 1);
  const oHist = fairStatsLayout.field('hist').offset >> 2;
  const oExempt = fairStatsLayout.field('channel_exempt').offset >> 2;
  const oNeighbour = fairStatsLayout.field('neighbour_exempt').offset >> 2;
  ids.forEach((id, i) => {
    if ((id + 1) * stride > words.length) return;
    for (let c = 0; c < cpus; c++) {
      const base = id * stride + c * cpuStride;
      for (let b = 0; b < FAIR_BUCKETS; b++) out.hist[i * FAIR_BUCKETS + b] += u64(base + oHist + b * 2);
      out.channelExempt[i] += u64(base + oExempt);
      out.neighbourExempt[i] += u64(base + oNeighbour);
    }
  });
  return out;
}
