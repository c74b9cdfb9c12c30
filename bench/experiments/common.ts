// What every experiment of the paper's section V shares: a lab with its daemon and
// routers' clients, commands in namespaces, statistics with 95 % confidence intervals,
// and SVG figures that say where and how they were measured.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { adminRequest } from '../../src/admin/index.js';
import {
  createLab,
  destroyLab,
  uniquePrefix,
  nsExec,
  nsSpawn,
  lineChart,
  overloadHost,
  releaseHost,
  cpuSnapshot,
  cpuLoad,
  hostInterfaces,
  type CpuSnapshot,
  type LabState,
  type LabConfigOptions,
  type Series,
} from '../../src/lab/index.js';
import { machine } from '../stats.js';

/** The CLI a user runs: the daemon and the clients are started through it. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- what an experiment is ---------------------------------------------------------------

export interface ExperimentContext {
  quick: boolean;
  /** Where SVG figures go (docs/figures). */
  figuresDir: string;
  log(line: string): void;
}

export interface FigureFile {
  file: string;
  title: string;
}

/** One target of the brief, and whether this run met it (null: no target, a finding). */
export interface TargetCheck {
  target: string;
  met: boolean | null;
  measured: string;
}

export interface ExperimentResult {
  name: string;
  title: string;
  targets: TargetCheck[];
  /** The exact command that reproduces this experiment alone. */
  command: string;
  /** Markdown: tables and the honest reading of them. */
  markdown: string;
  figures: Record<string, unknown>;
  files: FigureFile[];
}

export interface Experiment {
  name: string;
  title: string;
  run(ctx: ExperimentContext): Promise<ExperimentResult>;
}

export function experimentCommand(name: string, quick: boolean): string {
  return `xnetmon experiments ${name}${quick ? ' --quick' : ''} --json`;
}

// ---- statistics ----------------------------------------------------------------------------

export function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
}

export function quantile(values: readonly number[], q: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// Two-sided 95 % Student t quantiles for 1..30 degrees of freedom.
const T95 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11,
  2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** Mean and the half-width of its 95 % confidence interval (Student t; NaN for one sample). */
export function meanCi(values: readonly number[]): { mean: number; ci95: number; n: number } {
  const n = values.length;
  const m = mean(values);
  if (n < 2) return { mean: m, ci95: NaN, n };
  const variance = values.reduce((s, v) => s + (v - m) ** 2, 0) / (n - 1);
  const t = n - 1 <= T95.length ? T95[n - 2] : 1.96;
  return { mean: m, ci95: t * Math.sqrt(variance / n), n };
}

/** A proportion and its 95 % Wilson score interval. */
export function wilson(successes: number, n: number): { rate: number; low: number; high: number; n: number } {
  if (n === 0) return { rate: NaN, low: NaN, high: NaN, n };
  const z = 1.96;
  const p = successes / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half), n };
}

export const fmt = (v: number, digits = 2): string => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
export const pm = (x: { mean: number; ci95: number }, digits = 2): string =>
  `${fmt(x.mean, digits)} ± ${fmt(x.ci95, digits)}`;
export const pct = (v: number, digits = 1): string => (Number.isFinite(v) ? `${(v * 100).toFixed(digits)} %` : 'n/a');

// ---- figures -------------------------------------------------------------------------------

/** A line chart with a caption under it: the machine, that it was a shared 2-core VM, the command. */
export function writeFigure(
  ctx: ExperimentContext,
  file: string,
  chart: {
    title: string;
    xLabel: string;
    yLabel: string;
    series: readonly Series[];
    yMax?: number;
    marks?: { x: number; label: string }[];
  },
  command: string,
): FigureFile {
  const svg = lineChart(chart.title, chart.xLabel, chart.yLabel, chart.series, {
    yMax: chart.yMax,
    marks: chart.marks,
  });
  const caption = [
    `Measured on ${machine()} (2 cores shared with other engineers' jobs), ${new Date().toISOString().slice(0, 16)}Z; namespaces and veth, not Xen.`,
    `Command: ${command}`,
  ];
  const inner = svg.replace(/^<svg[^>]*>/, '').replace(/<\/svg>\s*$/, '');
  const out = [
    '<svg xmlns="http://www.w3.org/2000/svg" width="720" height="340" font-family="sans-serif" font-size="11">',
    '<rect width="720" height="340" fill="white"/>',
    inner,
    ...caption.map(
      (line, i) =>
        `<text x="10" y="${312 + i * 14}" font-size="10" fill="#444">${line.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
    ),
    '</svg>',
  ].join('\n');
  writeFileSync(join(ctx.figuresDir, file), `${out}\n`);
  return { file, title: chart.title };
}

// ---- commands in namespaces ----------------------------------------------------------------

export function inNs(ns: string, args: readonly string[], allowFail = false): string {
  try {
    return nsExec(ns, args);
  } catch (err) {
    if (allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip netns exec ${ns} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
}

export function rxBytes(ns: string, ifname: string): number {
  return Number(inNs(ns, ['cat', `/sys/class/net/${ifname}/statistics/rx_bytes`]).trim());
}

/** A child that collects its output; `done` resolves with it when the child exits. */
export interface Job {
  child: ChildProcess;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

// ---- the lab -------------------------------------------------------------------------------

interface StatusResource {
  resource: string;
  capacity: number;
  reserved: number;
  offered: number;
  carried: number;
  target: number;
  dropProbability: number;
}
export interface StatusNetwork {
  id: number;
  name: string;
  forwarded: number;
  resources: StatusResource[];
  drops: Record<string, number>;
}
export interface StatusCpu {
  source: 'measured' | 'table';
  fallbackReason: string | null;
  unit: string;
  capacityPerS: number;
  cores: number;
  share: number;
  costs: Record<string, number>;
  measuredNsPerS: number | null;
  unattributedNsPerS: number | null;
  fit: { rSquared: number | null; samples: number; converged: boolean } | null;
}
export interface Status {
  lastPeriod: { period: number } | null;
  control: boolean;
  networks: StatusNetwork[];
  cpu?: StatusCpu;
}

export function resourceOf(n: StatusNetwork, resource: string): StatusResource {
  const r = n.resources.find((x) => x.resource === resource);
  if (!r) throw new Error(`status has no resource ${resource} for ${n.name}`);
  return r;
}

const openSessions = new Set<LabSession>();
let handlersInstalled = false;

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (): void => {
    process.stderr.write('\ninterrupted: tearing the labs down\n');
    for (const s of openSessions) s.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

export const HOST_CPU = 0;
export const GENERATOR_CPU = 1;

export interface LabOptions {
  tag: string;
  linkRateMbit?: number;
  config?: Partial<LabConfigOptions>;
  /** 1: the overloaded host (threaded NAPI pinned to one CPU, generators on the other); absent: unpinned. */
  hostCpus?: 1;
  /** With hostCpus 1: the host's napi threads SCHED_RR above the daemon, as softirq (default true). */
  napiRealtime?: boolean;
  /** With hostCpus 1: the far ends of the host's veths in threaded NAPI on the generators' CPU (default true). */
  peersOnOtherCpu?: boolean;
}

/** A lab, its daemon and whatever runs in it; destroy() always leaves nothing behind. */
export class LabSession {
  readonly lab: LabState;
  readonly socket: string;
  private daemon: ChildProcess | undefined;
  private daemonLog = '';
  private readonly children = new Set<ChildProcess>();
  /** Overloaded host (paper V, Dom0 with 1 CPU): the host's napi threads and the daemon on
   *  HOST_CPU, every command in the routers' and external namespaces on GENERATOR_CPU. */
  readonly overloaded: boolean;
  private readonly napiRealtime: boolean;
  private readonly peersOnOtherCpu: boolean;

  private constructor(lab: LabState, overloaded: boolean, napiRealtime: boolean, peersOnOtherCpu: boolean) {
    this.peersOnOtherCpu = peersOnOtherCpu;
    this.lab = lab;
    this.socket = join(lab.stateDir, 'admin.sock');
    this.overloaded = overloaded;
    this.napiRealtime = napiRealtime;
  }

  /** Threaded NAPI pinned (again: attaching XDP may restart a veth's NAPI). */
  private overload(): void {
    overloadHost(this.topology, HOST_CPU, GENERATOR_CPU, {
      realtime: this.napiRealtime,
      peersOnOtherCpu: this.peersOnOtherCpu,
    });
  }

  static create(options: LabOptions): LabSession {
    installSignalHandlers();
    const session = new LabSession(
      createLab({ prefix: uniquePrefix(options.tag), linkRateMbit: options.linkRateMbit, config: options.config }),
      options.hostCpus === 1,
      options.napiRealtime ?? true,
      options.peersOnOtherCpu ?? true,
    );
    openSessions.add(session);
    if (session.overloaded) {
      try {
        session.overload();
      } catch (err) {
        session.destroySync();
        throw err;
      }
    }
    return session;
  }

  /** Per-CPU busy shares and the napi threads' CPU (in CPUs) since `since`. */
  cpuSince(since: CpuSnapshot): { busy: number[]; napi: number } {
    return cpuLoad(since, this.cpuSnapshot());
  }

  /** /proc/stat per CPU and the host's own napi threads' time. */
  cpuSnapshot(): CpuSnapshot {
    return cpuSnapshot(hostInterfaces(this.topology));
  }

  get prefix(): string {
    return this.lab.topology.prefix;
  }

  get topology(): LabState['topology'] {
    return this.lab.topology;
  }

  /** Rewrites one `host:` setting of the daemon's config (read at the next daemon start). */
  setHostSetting(key: string, value: string | number): void {
    const text = readFileSync(this.lab.configPath, 'utf8');
    const pattern = new RegExp(`^(  ${key}:) .*$`, 'm');
    if (!pattern.test(text)) throw new Error(`no host setting ${key} in ${this.lab.configPath}`);
    writeFileSync(this.lab.configPath, text.replace(pattern, `$1 ${value}`));
  }

  /** `xnetmon up` in the host namespace; control false = `--no-control` (the paper's baseline). */
  async startDaemon(control: boolean): Promise<void> {
    await this.stopDaemon();
    this.daemonLog = '';
    const args = [
      'netns',
      'exec',
      this.lab.topology.host.ns,
      process.execPath,
      CLI,
      'up',
      '-c',
      this.lab.configPath,
      ...(control ? [] : ['--no-control']),
    ];
    // Overloaded: the daemon is Dom0's, on the host's CPU with the napi threads.
    const daemon = this.overloaded
      ? spawn('taskset', ['-c', String(HOST_CPU), 'ip', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon = daemon;
    daemon.stdout?.on('data', (d: Buffer) => {
      this.daemonLog += d.toString();
    });
    daemon.stderr?.on('data', (d: Buffer) => {
      this.daemonLog += d.toString();
    });
    for (let i = 0; i < 300; i++) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited: ${this.daemonLog.slice(-2000)}`);
      if (this.daemonLog.includes('"msg":"xnetmon up"')) {
        if (this.overloaded) this.overload();
        return;
      }
      await sleep(50);
    }
    throw new Error(`daemon did not start: ${this.daemonLog.slice(-2000)}`);
  }

  async stopDaemon(): Promise<void> {
    const d = this.daemon;
    this.daemon = undefined;
    if (!d || d.exitCode !== null) return;
    const exited = new Promise<void>((r) => d.once('exit', () => r()));
    d.kill('SIGTERM');
    await Promise.race([
      exited,
      sleep(5000).then(() => {
        d.kill('SIGKILL');
      }),
    ]);
  }

  async status(): Promise<Status> {
    return (await adminRequest(this.socket, { cmd: 'status' })) as Status;
  }

  async admin(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    return adminRequest(this.socket, { cmd, args });
  }

  /** Waits until the controller has run `periods` more periods. */
  async periods(periods: number): Promise<Status> {
    const start = (await this.status()).lastPeriod?.period ?? 0;
    for (;;) {
      const s = await this.status();
      if ((s.lastPeriod?.period ?? 0) >= start + periods) return s;
      await sleep(25);
    }
  }

  /** Routes as the routers' clients would send them, without the channel (`xnetmon lab load`). */
  loadRoutes(): void {
    execFileSync(process.execPath, [CLI, 'lab', 'load', '--prefix', this.prefix], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** A command in one of the lab's namespaces, killed at destroy() if still running. */
  spawn(ns: string, args: readonly string[]): Job {
    const child: ChildProcess = nsSpawn(ns, this.overloaded ? ['taskset', '-c', String(GENERATOR_CPU), ...args] : args);
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolveJob) => {
      child.once('exit', (code) => {
        this.children.delete(child);
        resolveJob({ code, stdout, stderr });
      });
    });
    return { child, done };
  }

  /** The router's client (`xnetmon client`) in network `netId`'s router; waits until it has synced. */
  async startClient(netId: number): Promise<void> {
    const net = this.topology.networks.find((n) => n.id === netId)!;
    // Its neighbours (the external machines) must be resolved for host routes through them.
    for (const ext of net.externals) inNs(net.router.ns, ['ping', '-c', '1', '-W', '1', ext.iface.address], true);
    this.spawn(net.router.ns, [process.execPath, CLI, 'client', '-c', join(this.lab.stateDir, `client${netId}.yaml`)]);
    await this.waitForClient(net.name);
  }

  async waitForClient(network: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        const clients = (await this.admin('clients')) as {
          network: string;
          resyncing?: boolean;
          disconnectedSince?: number | null;
        }[];
        if (clients.some((c) => c.network === network && !c.resyncing && !c.disconnectedSince)) return;
      } catch {
        /* daemon restarting */
      }
      await sleep(100);
    }
    throw new Error(`the client of ${network} did not sync within ${timeoutMs} ms`);
  }

  async destroy(): Promise<void> {
    await this.stopDaemon();
    this.destroySync();
  }

  destroySync(): void {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL');
    this.children.clear();
    if (this.daemon && this.daemon.exitCode === null) this.daemon.kill('SIGKILL');
    if (this.overloaded) releaseHost(this.topology);
    destroyLab(this.prefix);
    openSessions.delete(this);
  }
}

/** Runs `body` on a fresh lab and always tears it down. */
export async function withLab<T>(options: LabOptions, body: (lab: LabSession) => Promise<T>): Promise<T> {
  const lab = LabSession.create(options);
  try {
    return await body(lab);
  } finally {
    await lab.destroy();
  }
}

/** iperf3 -J's received bits per second (0 when the run failed). */
export function iperfBps(stdout: string): number {
  try {
    const j = JSON.parse(stdout) as {
      end: { sum_received?: { bits_per_second: number }; sum?: { bits_per_second: number } };
    };
    return j.end.sum_received?.bits_per_second ?? j.end.sum?.bits_per_second ?? 0;
  } catch {
    return 0;
  }
}
