// Test support for lab tests: the CLI as a user runs it, and small probes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { nsExec, nsSpawn, ipv4InReceives, LAB_METRICS_LISTEN, type LabTopology } from '../../src/lab/index.js';
import { readPinnedCounters } from '../../src/dataplane/index.js';
import { margin } from './timing.js';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

export function xnetmon(args: readonly string[], options: { ns?: string; input?: string } = {}): string {
  const argv = options.ns
    ? ['ip', 'netns', 'exec', options.ns, process.execPath, CLI, ...args]
    : [process.execPath, CLI, ...args];
  return execFileSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    input: options.input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs xnetmon and returns { code, stdout, stderr } without throwing. */
export function xnetmonResult(
  args: readonly string[],
  options: { ns?: string } = {},
): { code: number; stdout: string; stderr: string } {
  try {
    return { code: 0, stdout: xnetmon(args, options), stderr: '' };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export { nsExec as inNs, nsSpawn as spawnInNs };

/** IPv4 packets the virtual router's stack received. */
export function routerIpv4In(net: LabTopology['networks'][number]): number {
  return ipv4InReceives(net.router.ns);
}

/**
 * IPv4 packets the virtual router forwarded. "The router saw none of these packets" is asked of
 * this counter, not of InReceives: the router's own channel traffic (the host's ACKs, keepalives)
 * arrives while the packets are sent, and CI once counted one such packet as a forwarded ping.
 */
export function routerIpv4Forwarded(net: LabTopology['networks'][number]): number {
  return ipv4InReceives(net.router.ns, 'ForwDatagrams');
}

/**
 * ping; returns how many of its first `count` echo requests were answered.
 * With `-c` alone, ping waits for the last reply only max(2 x the slowest RTT, the interval) after
 * sending it: 20 ms at `-i 0.02`, which a loaded machine overruns (CI saw 9 of 10 answered while
 * nothing was lost). With a deadline (`-w`) it waits for `count` replies until the deadline and
 * sends on past `count` while some are missing, so the replies are counted by sequence number:
 * a request that is lost stays lost, a reply that is late still counts.
 */
export function ping(ns: string, address: string, count: number, intervalS = 0.05): number {
  const deadlineS = Math.ceil(count * intervalS) + 2;
  let out = '';
  try {
    out = nsExec(ns, ['ping', '-n', '-c', String(count), '-i', String(intervalS), '-w', String(deadlineS), address]);
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? '';
  }
  const answered = new Set<number>();
  for (const m of out.matchAll(/^\d+ bytes from .* icmp_seq=(\d+) .*$/gm)) {
    if (m[0].includes('DUP!')) continue;
    const seq = Number(m[1]);
    if (seq >= 1 && seq <= count) answered.add(seq);
  }
  return answered.size;
}

/**
 * A ping whose packets cross a virtual router's vif input: how many of its `count` requests were
 * answered or lost to the residual drop there. Paper IV-A's residual punishment drops a constant
 * share of every router's output (the lab's `residual_drop` is 0.001), so 10 replies from a router
 * miss one in 100 runs by design (CI saw "the host reaches blue's router: 9 of 10"); the network's
 * drop_residual counter says how many, and any other loss still fails the caller's assertion.
 */
export function pingViaRouter(
  pinDir: string,
  netId: number,
  ns: string,
  address: string,
  count: number,
  intervalS = 0.05,
): number {
  const residual = () => readPinnedCounters(pinDir, [netId])[0]!.verdicts.drop_residual;
  const before = residual();
  const replies = ping(ns, address, count, intervalS);
  return Math.min(count, replies + Number(residual() - before));
}

/**
 * Makes the neighbour entries between a network's external machines and its router permanent.
 * They resolve each other with ARP; an entry that has gone stale (15-45 s after it was confirmed)
 * is re-probed 5 s after its next use, with a unicast ARP request to the other's MAC, and that is
 * the network's own traffic:
 * - in a window where a test counts another network's frames against it, it is counted (a 6.1 VM,
 *   where each test runs for minutes, once counted one: "1 of 3,000 frames classified as blue");
 * - under CPU punishment the router's ARP replies are dropped like its other packets, so a punished
 *   network's flood stalls until resolution succeeds, then bursts to catch up (the live net set test
 *   saw green offer 0 for six periods, then 147 units in one).
 */
export function pinNeighbours(net: LabTopology['networks'][number]): void {
  for (const ext of net.externals) {
    const router = net.router.interfaces.find((i) => i.link === ext.link)!;
    const pin = (ns: string, address: string, mac: string, dev: string): string =>
      nsExec(ns, ['ip', 'neigh', 'replace', address, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']);
    pin(ext.ns, router.address, router.mac, ext.iface.name);
    pin(net.router.ns, ext.iface.address, ext.iface.mac, router.name);
  }
}

/**
 * Resolves once a TCP socket listens on `port` in namespace `ns` (an iperf3 server just spawned):
 * a fixed 300 ms wait was too short in CI's 6.1 VM, where the client then found nobody listening.
 */
export async function untilListening(ns: string, port: number, timeoutMs = margin(5000)): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (nsExec(ns, ['ss', '-Hltn', `sport = :${port}`]).trim() === '') {
    if (Date.now() > deadline) throw new Error(`nothing listens on TCP port ${port} in ${ns} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A short TCP transfer with iperf3; returns bits per second received. */
export async function tcpTransfer(
  serverNs: string,
  clientNs: string,
  address: string,
  seconds = 1,
  port = 5201,
): Promise<number> {
  const server = nsSpawn(serverNs, ['iperf3', '-s', '-1', '-p', String(port)]);
  try {
    await untilListening(serverNs, port);
    const out = nsExec(clientNs, ['iperf3', '-c', address, '-p', String(port), '-t', String(seconds), '-J']);
    return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  } finally {
    server.kill('SIGKILL');
  }
}

/** Starts `xnetmon up` inside the lab's host namespace; returns once it logs that it is up (its admin socket listens). */
export async function startDaemon(
  hostNs: string,
  configPath: string,
  extra: readonly string[] = [],
): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', hostNs, process.execPath, CLI, 'up', '-c', configPath, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const deadline = Date.now() + margin(15_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`daemon exited (${child.exitCode}): ${log}`);
    if (/"msg":"xnetmon up"/.test(log)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`daemon did not come up: ${log}`);
}

export function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  // A child killed by a signal has no exit code but a signal code: it is gone all the same.
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The body of an HTTP GET made from inside namespace `ns` (a lab daemon serves on that namespace's loopback). */
export function httpGetInNs(ns: string, url: string): string {
  const script = `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(e.message); process.exit(1); })`;
  return nsExec(ns, [process.execPath, '-e', script]);
}

/** The lab daemon's Prometheus exposition, scraped inside the lab's host namespace. */
export function scrapeMetrics(hostNs: string): string {
  return httpGetInNs(hostNs, `http://${LAB_METRICS_LISTEN}/metrics`);
}
