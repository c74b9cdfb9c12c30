// Packets and bytes per path over every network (cumulative, summed over CPUs): what the CPU
// model fits the measured CPU time against (src/cpu).
import { type BpfMap, PATHS, netStatsLayout } from '../loader/index.js';
import { readPerCpuWords } from './shared.js';

export interface PathTotals {
  /** Packets carried per path, in PATHS order. */
  packets: Float64Array;
  /** Bytes carried over every path. */
  bytes: number;
}

/** One batch read of xnm_stats for ids 0..maxId. */
export function readPathTotalsFrom(stats: BpfMap, maxId: number): PathTotals {
  const { words, stride, cpuStride, cpus, u64 } = readPerCpuWords(stats, maxId + 1);
  const oPp = netStatsLayout.field('path_packets').offset >> 2;
  const oPb = netStatsLayout.field('path_bytes').offset >> 2;
  const out: PathTotals = { packets: new Float64Array(PATHS.length), bytes: 0 };
  for (let id = 0; id <= maxId && (id + 1) * stride <= words.length; id++) {
    for (let c = 0; c < cpus; c++) {
      const base = id * stride + c * cpuStride;
      for (let p = 0; p < PATHS.length; p++) {
        out.packets[p] += u64(base + oPp + p * 2);
        out.bytes += u64(base + oPb + p * 2);
      }
    }
  }
  return out;
}
