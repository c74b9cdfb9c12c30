// The controller (paper IV-A): every period T it reads each network's counters,
// computes U(t), U_i(t), R(t) and D(t) per resource (CPU, each output link, FIB
// memory), runs the configured control law and writes the drop probabilities.
import type { XnetmonConfig, NetworkDefinition } from '../config/index.js';
import { FailureLog, type FailureLogger } from '../errors/index.js';
import { createControlLaw, createLawState, type ControlLaw, type LawState } from './law/index.js';
import { solveFairRate } from '../dataplane/index.js';
import type { CpuMeterView } from '../cpu/index.js';

/** Cumulative counters of one network, as the data plane keeps them. */
export interface NetworkUsage {
  netId: number;
  cpuOffered: number;
  cpuCarried: number;
  /** Bytes by link slot. */
  linkOffered: ArrayLike<number>;
  linkCarried: ArrayLike<number>;
  /** Offered packets by their flow's rate bucket (FAIR_BUCKETS, cumulative), for flow-aware drops; absent: random drops. */
  fairHist?: ArrayLike<number>;
}

/** Where the controller reads from: the pinned maps, or a fake in tests. */
export interface CounterSource {
  /** Cumulative (monotonic) counters of these networks. */
  read(netIds: readonly number[]): NetworkUsage[];
  /** Installed routes per network: the memory resource's carried. */
  routeCounts(netIds: readonly number[]): number[];
  /** Routes each network wants installed (installed + evicted): the memory resource's offered. */
  routeDemand?(netIds: readonly number[]): number[];
}

export interface DropDecision {
  netId: number;
  /** `fair`: the fair per-flow rate for the CPU drops (0: random). */
  drops: { cpu: number; residual: number; links: number[]; fair?: number };
}

/** Where the controller writes to. */
export interface DropSink {
  write(decisions: readonly DropDecision[]): void;
}

/**
 * Memory control (paper IV-A): evict a fraction of a network's routes, or restore them. Either
 * may throw (a full map): the controller counts it and tries again next period. `restore`
 * returns false when it put back only part of the routes (it is called again next period), true or
 * undefined when it put back all of them.
 */
export interface MemoryControl {
  evict(netId: number, fraction: number): void;
  restore(netId: number): boolean | undefined;
}

export interface ResourceStatus {
  resource: string;
  /** R(t) per period, in the resource's units (cost units, bytes, routes). */
  capacity: number;
  total: number;
  networks: {
    netId: number;
    name: string;
    reserved: number;
    offered: number;
    carried: number;
    target: number;
    dropProbability: number;
  }[];
}

export interface PeriodReport {
  period: number;
  at: number;
  durationMs: number;
  resources: ResourceStatus[];
  /** The CPU model: cost table, fit quality, R (absent without a CPU meter). */
  cpu?: CpuMeterView;
}

/** Where R(t) of the CPU comes from when it is measured (src/cpu): called once per period. */
export interface CpuCapacitySource {
  capacity(elapsedMs: number): number;
  view(): CpuMeterView;
}

interface ResourceSlot {
  name: string;
  kind: 'cpu' | 'link' | 'fib';
  linkSlot: number;
  state: LawState;
  alpha: Float64Array;
}

/**
 * On output links the share law runs with a gentle band up to 1.5 times a network's reservation
 * (share-law.ts): TCP sharing a link with a UDP flood went from ~4 % under its half to within 2 %
 * (docs/control.md). The CPU keeps the plain law: it has no downstream bottleneck to answer excess.
 */
const LINK_GENTLE_BELOW = 1.5;

export interface ControllerOptions {
  config: XnetmonConfig;
  source: CounterSource;
  sink: DropSink;
  memory?: MemoryControl;
  /** Host link name -> counter slot in the data plane. */
  linkSlots: ReadonlyMap<string, number>;
  now?: () => number;
  /** Called with every period's figures (metrics). */
  onPeriod?: (report: PeriodReport) => void;
  /** Where failed periods and memory control failures are reported (rate-limited). */
  logger?: FailureLogger;
  /** The measured CPU (R(t) and the cost table); absent: R = cpu_capacity. */
  cpu?: CpuCapacitySource;
}

const silentFailureLogger: FailureLogger = { warn: () => undefined };

export class Controller {
  private config!: XnetmonConfig;
  private law!: ControlLaw;
  /** The law for output links: TCP shares them, so moderate excess is punished gently (LINK_GENTLE_BELOW). */
  private linkLaw!: ControlLaw;
  private networks: NetworkDefinition[] = [];
  private weight = new Float64Array(0);
  private resources: ResourceSlot[] = [];
  private last: NetworkUsage[] | undefined;
  private evicted = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private periods = 0;
  private readonly source: CounterSource;
  private readonly sink: DropSink;
  private readonly memory: MemoryControl | undefined;
  private readonly linkSlots: ReadonlyMap<string, number>;
  private readonly now: () => number;
  private readonly onPeriod: ((report: PeriodReport) => void) | undefined;
  private readonly cpu: CpuCapacitySource | undefined;
  /** The last period's figures, for status and metrics. */
  lastReport: PeriodReport | undefined;
  /**
   * Failures the controller survived, by kind: "period" (a whole period threw), "evict:<netId>",
   * "restore:<netId>". Logged at most once per 10 s per kind, counted every time.
   */
  readonly failures: FailureLog;

  constructor(options: ControllerOptions) {
    this.source = options.source;
    this.sink = options.sink;
    this.memory = options.memory;
    this.linkSlots = options.linkSlots;
    this.now = options.now ?? Date.now;
    this.onPeriod = options.onPeriod;
    this.cpu = options.cpu;
    this.failures = new FailureLog(options.logger ?? silentFailureLogger, { now: this.now });
    this.reconfigure(options.config);
  }

  /** Applies a new (already validated) config; probabilities of surviving networks are kept. */
  reconfigure(config: XnetmonConfig): void {
    const previous = new Map<string, Map<number, number>>();
    for (const r of this.resources)
      previous.set(r.name, new Map(this.networks.map((n, i) => [n.id, r.state.dropProbability[i]])));
    this.config = config;
    this.law = createControlLaw({
      law: config.host.controlLaw,
      beta: config.host.beta,
      phiInitial: config.host.phiInitial,
    });
    this.linkLaw = createControlLaw({
      law: config.host.controlLaw,
      beta: config.host.beta,
      phiInitial: config.host.phiInitial,
      gentleBelow: LINK_GENTLE_BELOW,
    });
    this.networks = [...config.networks];
    const count = this.networks.length;
    this.weight = Float64Array.from(this.networks, (n) => n.weight);
    const slots = Math.max(1, count);
    const make = (
      name: string,
      kind: ResourceSlot['kind'],
      linkSlot: number,
      alphaOf: (n: NetworkDefinition) => number,
    ): ResourceSlot => {
      const state = createLawState(slots);
      const old = previous.get(name);
      this.networks.forEach((n, i) => {
        state.dropProbability[i] = old?.get(n.id) ?? 0;
      });
      return { name, kind, linkSlot, state, alpha: Float64Array.from(this.networks, alphaOf) };
    };
    this.resources = [
      make('cpu', 'cpu', -1, (n) => n.reserve.cpu),
      ...config.host.links.map((l) =>
        make(`link:${l.name}`, 'link', this.linkSlots.get(l.name) ?? -1, (n) => n.reserve.links[l.name] ?? 0),
      ),
      make('fib', 'fib', -1, (n) => n.reserve.fib),
    ];
    this.last = undefined; // networks may have changed: restart deltas
    if (this.timer) {
      this.stop();
      this.start();
    }
  }

  start(): void {
    if (this.timer) return;
    this.last = undefined; // counters read before a stop are not this timer's baseline
    let lastTick = process.hrtime.bigint();
    this.timer = setInterval(() => {
      // A timer fires late and unevenly (96 to 107 ms for T = 100 ms in the link-sharing
      // experiment; a GC pause or a busier host stretches it more); the counters hold what arrived
      // in the real interval, so R(t) must be that interval's too.
      const tick = process.hrtime.bigint();
      const elapsedMs = Number(tick - lastTick) / 1e6;
      lastTick = tick;
      this.runPeriod(elapsedMs);
    }, this.config.host.periodMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One period from the timer: nothing may escape it, or the daemon dies (and, as the maps are
   * pinned, dies again on every restart). A failed period is counted, logged rate-limited, and
   * the next period starts afresh from the counters.
   */
  runPeriod(elapsedMs: number = this.config.host.periodMs): PeriodReport | undefined {
    try {
      return this.step(elapsedMs);
    } catch (error) {
      this.failures.report(
        'period',
        { err: error instanceof Error ? error.message : String(error), code: (error as { code?: unknown }).code },
        'controller period failed; the next period runs as usual',
      );
      return undefined;
    }
  }

  /** Periods that threw (see runPeriod). */
  get failedPeriods(): number {
    return this.failures.count('period');
  }

  /**
   * One period: read, compute, write. `elapsedMs` is the time since the previous read, which sets
   * what the CPU and the links could carry in it (default: the configured period T).
   * Returns undefined on the first (baseline) read.
   */
  step(elapsedMs: number = this.config.host.periodMs): PeriodReport | undefined {
    const started = process.hrtime.bigint();
    const ids = this.networks.map((n) => n.id);
    const now = this.source.read(ids);
    const previous = this.last;
    this.last = now;
    if (!previous || previous.length !== now.length) return undefined;
    const periodS = (elapsedMs > 0 ? elapsedMs : this.config.host.periodMs) / 1000;
    const count = this.networks.length;
    const offered = new Float64Array(Math.max(1, count));
    const carried = new Float64Array(Math.max(1, count));
    const report: PeriodReport = { period: ++this.periods, at: this.now(), durationMs: 0, resources: [] };
    const routeCounts = this.source.routeCounts(ids);
    const routeDemand = this.source.routeDemand?.(ids) ?? routeCounts;

    for (const r of this.resources) {
      let capacity: number;
      if (r.kind === 'cpu') {
        // R(t): measured (cores x period x share, less what no network explains) or configured.
        capacity = this.cpu ? this.cpu.capacity(periodS * 1000) : this.config.host.cpuCapacity * periodS;
        for (let i = 0; i < count; i++) {
          offered[i] = Math.max(0, now[i].cpuOffered - previous[i].cpuOffered);
          // The data plane costs a packet once, so carried <= offered; a read that is not atomic
          // across CPUs can still see a carried that the offered of the same packet has not reached.
          carried[i] = Math.min(offered[i], Math.max(0, now[i].cpuCarried - previous[i].cpuCarried));
        }
      } else if (r.kind === 'link') {
        const link = this.config.host.links.find((l) => `link:${l.name}` === r.name)!;
        capacity = ((link.capacityMbps * 1e6) / 8) * periodS;
        for (let i = 0; i < count; i++) {
          offered[i] =
            r.linkSlot < 0
              ? 0
              : Math.max(0, (now[i].linkOffered[r.linkSlot] ?? 0) - (previous[i].linkOffered[r.linkSlot] ?? 0));
          carried[i] =
            r.linkSlot < 0
              ? 0
              : Math.max(0, (now[i].linkCarried[r.linkSlot] ?? 0) - (previous[i].linkCarried[r.linkSlot] ?? 0));
        }
      } else {
        // Paper IV-A memory control: the FIB is a stock, not a flow.
        capacity = this.config.host.fibCapacity;
        for (let i = 0; i < count; i++) {
          offered[i] = routeDemand[i] ?? 0;
          carried[i] = routeCounts[i] ?? 0;
        }
      }
      const law = r.kind === 'link' ? this.linkLaw : this.law;
      if (count > 0) law.step({ count, alpha: r.alpha, weight: this.weight }, { capacity, offered, carried }, r.state);
      let total = 0;
      for (let i = 0; i < count; i++) total += carried[i];
      report.resources.push({
        resource: r.name,
        capacity,
        total,
        networks: this.networks.map((n, i) => ({
          netId: n.id,
          name: n.name,
          reserved: r.alpha[i] * capacity,
          offered: offered[i],
          carried: carried[i],
          target: r.state.target[i],
          dropProbability: r.state.dropProbability[i],
        })),
      });
      if (r.kind === 'fib') this.memoryControl(r, offered, carried);
    }

    this.sink.write(
      this.networks.map((n, i) => {
        const links = new Array<number>(16).fill(0);
        for (const r of this.resources)
          if (r.kind === 'link' && r.linkSlot >= 0) links[r.linkSlot] = r.state.dropProbability[i];
        const cpu = this.resources[0].state.dropProbability[i];
        const fair = fairRateOf(cpu, now[i].fairHist, previous[i].fairHist);
        return { netId: n.id, drops: { cpu, residual: this.config.host.residualDrop, links, fair } };
      }),
    );
    if (this.cpu) report.cpu = this.cpu.view();
    report.durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.lastReport = report;
    this.onPeriod?.(report);
    return report;
  }

  // Paper IV-A: when memory is critical, networks over their reservation lose a fraction of
  // their routes (a default route to their router keeps traffic flowing); restored when it eases.
  // The law's output for "fib" is the fraction of a network's wanted routes to keep out; the
  // manager evicts only the difference, and restores once demand falls clearly under the
  // critical level (hysteresis, so a network does not flap between the two).
  private memoryControl(r: ResourceSlot, demand: Float64Array, installed: Float64Array): void {
    if (!this.memory) return;
    const critical = this.config.host.fibCritical * this.config.host.fibCapacity;
    let totalDemand = 0;
    for (let i = 0; i < this.networks.length; i++) totalDemand += demand[i];
    this.networks.forEach((n, i) => {
      const fraction = r.state.dropProbability[i];
      if (totalDemand >= critical && fraction > 0) {
        const keep = Math.floor((1 - fraction) * demand[i]);
        const excess = installed[i] - keep;
        if (excess > 0 && installed[i] > 0) {
          // A failed eviction changed nothing (the manager's operations are all or nothing):
          // the law still asks for it next period, so it is retried then.
          if (this.tryMemory('evict', n, () => this.memory!.evict(n.id, Math.min(1, excess / installed[i]))))
            this.evicted.add(n.id);
        }
      } else if (totalDemand < critical * 0.95 && this.evicted.has(n.id)) {
        // Restored only when the whole restore went in; a partial one is continued next period.
        let complete = false;
        this.tryMemory('restore', n, () => {
          complete = this.memory!.restore(n.id) !== false;
        });
        if (complete) this.evicted.delete(n.id);
      }
    });
  }

  /** One network's memory control action; a failure is counted and logged, and the other networks go on. */
  private tryMemory(action: 'evict' | 'restore', network: NetworkDefinition, run: () => void): boolean {
    try {
      run();
      return true;
    } catch (error) {
      this.failures.report(
        `${action}:${network.id}`,
        {
          network: network.name,
          err: error instanceof Error ? error.message : String(error),
          code: (error as { code?: unknown }).code,
        },
        `memory control could not ${action} routes this period; it tries again next period`,
      );
      return false;
    }
  }
}

/**
 * The fair per-flow rate at which dropping a network's flows over it removes the fraction p of its
 * packets, from last period's histogram (dataplane/fair.ts): the heaviest flows carry the
 * punishment and flows under the rate keep every packet. 0 (random drops) without a histogram.
 */
function fairRateOf(p: number, now: ArrayLike<number> | undefined, before: ArrayLike<number> | undefined): number {
  if (!(p > 0) || p >= 1 || !now || !before || now.length !== before.length) return 0;
  const delta = new Float64Array(now.length);
  for (let b = 0; b < now.length; b++) delta[b] = Math.max(0, now[b] - before[b]);
  return solveFairRate(delta, p);
}
