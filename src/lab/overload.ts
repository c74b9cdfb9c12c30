// An overloaded host (paper V: Dom0 with one CPU): the host namespace's packet work runs in
// threaded NAPI kernel threads pinned to one CPU, so that a flood from the generators (pinned
// elsewhere) saturates that CPU for real. veth runs NAPI only with GRO on (or XDP attached);
// `threaded` then moves each interface's poll loop into a `napi/IF-N` kthread that taskset can pin.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { XnetmonError } from '../errors/index.js';
import { nsExec, type LabTopology } from './topology.js';

/** The host namespace's interfaces that receive packets: the physical links and every vif. */
export function hostInterfaces(topo: LabTopology): string[] {
  return [
    ...topo.host.links.map((l) => l.name),
    ...topo.networks.flatMap((n) => n.router.interfaces.map((i) => i.vif)),
  ];
}

/** The far ends of the host's veths (switch uplinks, routers' interfaces), as [namespace, interface]. */
export function peerInterfaces(topo: LabTopology): [string, string][] {
  return [
    ...topo.host.links.map((l): [string, string] => [l.switchNs, 'uplink']),
    ...topo.networks.flatMap((n) => n.router.interfaces.map((i): [string, string] => [n.router.ns, i.name])),
  ];
}

/** Kernel threads whose name starts with `napi/` (pid -> name), from /proc. */
export function napiThreads(): Map<number, string> {
  const out = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm.startsWith('napi/')) out.set(Number(entry), comm);
    } catch {
      /* the task exited while we read */
    }
  }
  return out;
}

/** The napi threads of these interfaces (a comm is cut at 15 characters: match by prefix). */
function threadsOf(ifnames: readonly string[]): number[] {
  return [...napiThreads()]
    .filter(([, comm]) => ifnames.some((i) => comm.startsWith(`napi/${i}-`)))
    .map(([pid]) => pid);
}

/** CPU affinity of a task, pinned to one CPU; throws ERR_LAB naming the task when taskset fails. */
export function pinTask(pid: number, cpu: number): void {
  try {
    execFileSync('taskset', ['-p', '-c', String(cpu), String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new XnetmonError(
      'ERR_LAB',
      `taskset -p -c ${cpu} ${pid}: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`,
    );
  }
}

export interface OverloadOptions {
  /**
   * true (default): the host's napi threads run SCHED_RR, above every process, as NAPI in softirq
   * preempts processes on a real host (and Xen's netback preempts Dom0's): a flood can starve the
   * daemon, as in the paper. RT throttling (sched_rt_runtime_us) still leaves processes 5 %.
   * false: ordinary fair-scheduled threads, which the scheduler shares with the daemon.
   */
  realtime?: boolean;
  /** true (default): the peers' NAPI threaded on `otherCpu`; false: in softirq where the host raised it (its CPU). */
  peersOnOtherCpu?: boolean;
}

function realtime(pid: number): void {
  try {
    execFileSync('chrt', ['-r', '-p', '1', String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new XnetmonError(
      'ERR_LAB',
      `chrt -r -p 1 ${pid}: ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? String(err)}`,
    );
  }
}

function threaded(ns: string, ifname: string, on: boolean): void {
  if (on) nsExec(ns, ['ethtool', '-K', ifname, 'gro', 'on']);
  // `ip netns exec` mounts the namespace's own /sys: the file is that namespace's interface.
  nsExec(ns, ['sh', '-c', `echo ${on ? 1 : 0} > /sys/class/net/${ifname}/threaded`]);
}

/**
 * Threaded NAPI on the host's interfaces, their napi threads pinned to `hostCpu`; and on the
 * far ends of the host's veths, pinned to `otherCpu`: a packet the host transmits is received
 * by its peer's NAPI, which would otherwise run in softirq on the host's CPU and bill the
 * switch's and the routers' work to the host. Idempotent: call it again after anything that
 * may restart NAPI (attaching or detaching XDP). Returns the host's napi thread pids.
 */
export function overloadHost(
  topo: LabTopology,
  hostCpu: number,
  otherCpu: number,
  options: OverloadOptions = {},
): number[] {
  const ifnames = hostInterfaces(topo);
  for (const ifname of ifnames) threaded(topo.host.ns, ifname, true);
  const peers = (options.peersOnOtherCpu ?? true) ? peerInterfaces(topo) : [];
  for (const [ns, ifname] of peers) threaded(ns, ifname, true);
  const pids = threadsOf(ifnames);
  if (pids.length < ifnames.length) {
    throw new XnetmonError(
      'ERR_LAB',
      `threaded NAPI: ${pids.length} napi threads for ${ifnames.length} interfaces of ${topo.host.ns}`,
    );
  }
  for (const pid of pids) {
    pinTask(pid, hostCpu);
    if (options.realtime ?? true) realtime(pid);
  }
  // Peer names (uplink, eth0) repeat across labs: every such thread goes to otherCpu, which is harmless.
  for (const pid of threadsOf([...new Set(peers.map(([, i]) => i))])) pinTask(pid, otherCpu);
  return pids;
}

/** Undoes overloadHost: NAPI back in softirq (threaded off); failures are ignored (the lab may be gone). */
export function releaseHost(topo: LabTopology): void {
  for (const [ns, ifname] of [
    ...hostInterfaces(topo).map((i): [string, string] => [topo.host.ns, i]),
    ...peerInterfaces(topo),
  ]) {
    try {
      threaded(ns, ifname, false);
    } catch {
      /* the interface or namespace is already gone */
    }
  }
}

/** Per-CPU busy and idle time (ns) from /proc/stat, and the napi threads' CPU time (ns). */
export interface CpuSnapshot {
  at: number;
  busyNs: number[];
  idleNs: number[];
  napiNs: number;
}

const TICK_NS = 1e7; // USER_HZ = 100

/** `hostIfnames`: count only these interfaces' napi threads (the host's), not the peers'. */
export function cpuSnapshot(hostIfnames?: readonly string[]): CpuSnapshot {
  const busyNs: number[] = [];
  const idleNs: number[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    const idle = f[3] + f[4];
    busyNs[Number(m[1])] = (f.slice(0, 8).reduce((a, b) => a + b, 0) - idle) * TICK_NS;
    idleNs[Number(m[1])] = idle * TICK_NS;
  }
  let napiNs = 0;
  const pids = hostIfnames ? threadsOf(hostIfnames) : [...napiThreads().keys()];
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      napiNs += (Number(fields[11]) + Number(fields[12])) * TICK_NS; // utime, stime
    } catch {
      /* exited */
    }
  }
  return { at: Date.now(), busyNs, idleNs, napiNs };
}

/** Busy share of each CPU and the napi threads' share of one CPU between two snapshots. */
export function cpuLoad(a: CpuSnapshot, b: CpuSnapshot): { busy: number[]; napi: number } {
  const busy = b.busyNs.map((v, i) => {
    const total = v - a.busyNs[i] + (b.idleNs[i] - a.idleNs[i]);
    return total > 0 ? (v - a.busyNs[i]) / total : 0;
  });
  const wallNs = (b.at - a.at) * 1e6;
  return { busy, napi: wallNs > 0 ? (b.napiNs - a.napiNs) / wallNs : 0 };
}
