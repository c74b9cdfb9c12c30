// The host's CPU time from /proc/stat: the per-CPU lines' irq and softirq columns hold the time
// spent receiving, forwarding and bridging packets (XDP and the stack run in NAPI's softirq).
import { readFileSync } from 'node:fs';
import { XnetmonError } from '../errors/index.js';

/** /proc/stat counts in USER_HZ ticks; Linux reports USER_HZ = 100 on every architecture it supports. */
export const USER_HZ = 100;

export interface CpuTimes {
  /** CPUs with a line of their own. */
  cpus: number;
  /** irq + softirq over all CPUs, in ns. */
  softirqNs: number;
  /** Every column but idle and iowait, over all CPUs, in ns. */
  busyNs: number;
}

/** Parses /proc/stat's text; throws ERR_PROC_STAT when it has no per-CPU line. */
export function parseProcStat(text: string): CpuTimes {
  let cpus = 0;
  let softirq = 0;
  let busy = 0;
  for (const line of text.split('\n')) {
    if (!/^cpu\d+ /.test(line)) continue;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 7 || f.some((v) => !Number.isFinite(v))) {
      throw new XnetmonError('ERR_PROC_STAT', `unreadable /proc/stat line: ${line}`);
    }
    // user nice system idle iowait irq softirq steal ...
    cpus++;
    softirq += f[5] + f[6];
    busy += f.reduce((s, v, i) => (i === 3 || i === 4 || i >= 8 ? s : s + v), 0);
  }
  if (cpus === 0) throw new XnetmonError('ERR_PROC_STAT', '/proc/stat has no per-CPU line');
  const ns = 1e9 / USER_HZ;
  return { cpus, softirqNs: softirq * ns, busyNs: busy * ns };
}

export function readCpuTimes(path = '/proc/stat'): CpuTimes {
  return parseProcStat(readFileSync(path, 'utf8'));
}
