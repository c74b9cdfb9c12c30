// The host's CPU time from /proc/stat: the per-CPU lines' irq and softirq columns hold the time
// spent receiving, forwarding and bridging packets (XDP and the stack run in NAPI's softirq).
import { readdirSync, readFileSync } from 'node:fs';
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

/**
 * Threaded NAPI (`/sys/class/net/IF/threaded`) polls in `napi/IF-N` kernel threads, whose time
 * /proc/stat counts as system, not softirq: the same packet work, so it is added to softirqNs.
 * Threads come and go with their interfaces: only each live thread's growth is accumulated.
 */
export class NapiThreadClock {
  private readonly last = new Map<number, number>();
  private totalTicks = 0;

  /** Cumulative CPU time of the napi threads seen so far, in ns; `ifnames`: only those interfaces' threads. */
  read(procRoot = '/proc', ifnames?: ReadonlySet<string>): number {
    const seen = new Set<number>();
    for (const entry of readdirSync(procRoot)) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`${procRoot}/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited while we read
      }
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(open + 1, close);
      if (!comm.startsWith('napi/')) continue;
      // napi/IFNAME-ID, cut at 15 characters: the interface is what precedes the last '-', if any.
      if (ifnames && ![...ifnames].some((i) => comm.startsWith(`napi/${i}-`) || `napi/${i}-`.startsWith(comm)))
        continue;
      const fields = stat.slice(close + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
      if (!Number.isFinite(ticks)) continue;
      const pid = Number(entry);
      seen.add(pid);
      const before = this.last.get(pid);
      if (before !== undefined && ticks > before) this.totalTicks += ticks - before;
      this.last.set(pid, ticks);
    }
    for (const pid of this.last.keys()) if (!seen.has(pid)) this.last.delete(pid);
    return (this.totalTicks * 1e9) / USER_HZ;
  }
}

const napiClock = new NapiThreadClock();

/** This network namespace's interfaces (`ip netns exec` mounts the namespace's own /sys). */
function ownInterfaces(): ReadonlySet<string> | undefined {
  try {
    return new Set(readdirSync('/sys/class/net'));
  } catch {
    return undefined;
  }
}

/** /proc/stat's times, with the threaded NAPI kthreads' time of this namespace's interfaces counted as
 *  softirq (see NapiThreadClock): another namespace's threads (a peer's, a VM's) are not the host's work. */
export function readCpuTimes(path = '/proc/stat'): CpuTimes {
  const times = parseProcStat(readFileSync(path, 'utf8'));
  const napiNs = path === '/proc/stat' ? napiClock.read('/proc', ownInterfaces()) : 0;
  return { ...times, softirqNs: times.softirqNs + napiNs };
}
