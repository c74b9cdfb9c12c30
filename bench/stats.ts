import { readFileSync } from 'node:fs';
// Small statistics for benchmarks: medians of interleaved rounds, and a header
// that states where a figure was measured.
import { cpus, totalmem } from 'node:os';

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The kernel's SRSO line: whether every return pays the "Safe RET" mitigation, which makes
 *  each BPF helper call dear (10-20 ns) and so decides which fast path optimisations pay. */
export function srso(): string {
  try {
    return readFileSync('/sys/devices/system/cpu/vulnerabilities/spec_rstack_overflow', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

export function machine(): string {
  return `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, shared VM, SRSO "${srso()}"`;
}
