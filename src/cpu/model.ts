// The host's CPU as the controller sees it (paper IV-A: R(t), U(t), and the cost of each path).
//
// Measured: each period, the CPU time the host spent in irq + softirq (where XDP, the bridge and
// the stack's forwarding run) is fitted against the period's packets per path and KiB (CostFit),
// which gives a cost table in ns. R = cores x period x share. The time no network's packets
// explain (the host's own work, unclassified traffic) is smoothed and taken off R: the controller
// cannot punish it, so the networks cannot have it.
// Table: the configured constant costs and cpu_capacity (and the simulator's model). The measured
// model falls back to it, logged once per reason, while the fit is warming up, did not converge or
// explains too little; R is then always the table's, in the table's units, never a mix.
import { PATHS, type PathName } from '../loader/index.js';
import { CostFit } from './fit.js';

export interface CpuModelOptions {
  /** 'measured': fit the costs and measure R; 'table': the constant table and cpu_capacity. */
  mode: 'measured' | 'table';
  /** The share of the host's cores that forwarding may use, in (0, 1]. */
  share: number;
  /** Cores of the host (from /proc/stat). */
  cores: number;
  tableCosts: Readonly<Record<PathName, number>>;
  tableCostPerKib: number;
  /** cpu_capacity: cost units per second. */
  tableCapacityPerS: number;
  /** Periods before a fit is trusted. Default 20. */
  minSamples?: number;
  /** The least R^2 a fit must reach. Default 0.3. */
  minRSquared?: number;
  /** Forgetting of the fit per period. Default 0.98 (about 50 periods). */
  forgetting?: number;
  /** Called when the model falls back to the table, once per change of reason. */
  onFallback?: (reason: string) => void;
}

/** One period's traffic over all networks. */
export interface PeriodTraffic {
  /** Packets carried per path, in PATHS order. */
  packets: ArrayLike<number>;
  bytes: number;
}

export interface CpuFitQuality {
  rSquared: number | null;
  rmseNs: number;
  samples: number;
  converged: boolean;
}

export interface CpuModelView {
  source: 'measured' | 'table';
  /** Why the table is used, when the mode is 'measured'. */
  fallbackReason: string | null;
  /** 'ns' when measured, 'cost units' for the table. */
  unit: 'ns' | 'cost units';
  costs: Record<PathName, number>;
  costPerKib: number;
  /** R per second, in `unit`. */
  capacityPerS: number;
  cores: number;
  share: number;
  /** The last fit, measured or not (null before any). */
  fit: CpuFitQuality | null;
  /** The fitted costs, shown even while the table is used. */
  fittedCosts: Record<PathName, number> | null;
  fittedCostPerKib: number | null;
  /** U(t): irq + softirq time measured per second (smoothed), and the part no network's packets explain. */
  measuredNsPerS: number | null;
  unattributedNsPerS: number | null;
}

/** Smoothing of U(t) and of the unattributed load: the /proc/stat tick (10 ms) is coarse beside a period. */
const LOAD_SMOOTHING = 0.2;
const MAX_COST = 1_000_000;

export class CpuModel {
  private options!: CpuModelOptions;
  private readonly scale = new CostFit({ features: 2, forgetting: 0.98 });
  private fit!: CostFit;
  private quality: CpuFitQuality | null = null;
  private fitted: Float64Array | null = null;
  private trusted = false;
  private fallbackReason: string | null = 'warming up';
  private measuredNsPerS: number | null = null;
  private unattributedNsPerS: number | null = null;

  constructor(options: CpuModelOptions) {
    this.configure(options);
    this.fit = new CostFit({ features: PATHS.length + 2, forgetting: options.forgetting ?? 0.98 });
  }

  /** A config reload: the fit keeps what it learnt. */
  configure(options: CpuModelOptions): void {
    if (!(options.share > 0 && options.share <= 1)) {
      throw new RangeError(`cpu share ${options.share} must be in (0, 1]`);
    }
    if (!(options.cores >= 1)) throw new RangeError(`cores ${options.cores} must be >= 1`);
    this.options = options;
  }

  get source(): 'measured' | 'table' {
    return this.options.mode === 'measured' && this.trusted ? 'measured' : 'table';
  }

  /**
   * One period: its traffic and the irq + softirq time measured over it. Bad samples (a counter
   * that went backwards, a clock that did not move) are skipped, never fitted.
   */
  observe(elapsedMs: number, traffic: PeriodTraffic, measuredNs: number): void {
    const seconds = elapsedMs / 1000;
    if (!(seconds > 0) || !(measuredNs >= 0) || !(traffic.bytes >= 0)) return;
    for (let p = 0; p < PATHS.length; p++) if (!(traffic.packets[p] >= 0)) return;
    // The constant table's ratios, scaled to ns: the prior of paths the traffic has not shown yet.
    let units = 0;
    PATHS.forEach((path, p) => {
      units += this.options.tableCosts[path] * traffic.packets[p];
    });
    this.scale.add([units, seconds], measuredNs);
    const scaled = this.scale.solve();
    const ns = scaled.converged ? scaled.coefficients[0] : 0;
    const baseline = scaled.converged ? scaled.coefficients[1] : 0;
    this.fit.setPrior([...PATHS.map((path) => this.options.tableCosts[path] * ns), 0, baseline]);
    const x = [...Array.from(traffic.packets), traffic.bytes / 1024, seconds];
    this.fit.add(x, measuredNs);
    const result = this.fit.solve();
    this.quality = {
      rSquared: Number.isFinite(result.rSquared) ? result.rSquared : null,
      rmseNs: result.rmse,
      samples: result.samples,
      converged: result.converged,
    };
    if (result.converged) this.fitted = result.coefficients;
    // U(t) and what no network's packets explain (the host's own work, unclassified traffic).
    const measuredPerS = measuredNs / seconds;
    this.measuredNsPerS = smooth(this.measuredNsPerS, measuredPerS);
    if (this.fitted) {
      let attributed = this.fitted[PATHS.length] * x[PATHS.length];
      for (let p = 0; p < PATHS.length; p++) attributed += this.fitted[p] * x[p];
      const unattributed = Math.max(0, measuredNs - attributed) / seconds;
      this.unattributedNsPerS = smooth(this.unattributedNsPerS, unattributed);
    }
    this.decide(result.converged);
  }

  private decide(converged: boolean): void {
    const minSamples = this.options.minSamples ?? 20;
    const minR2 = this.options.minRSquared ?? 0.3;
    const q = this.quality!;
    let reason: string | null = null;
    if (q.samples < minSamples * 0.5) reason = 'warming up';
    else if (!converged) reason = 'the cost fit did not converge';
    else if (q.rSquared === null) reason = 'the measured CPU time did not vary: nothing to fit';
    else if (q.rSquared < minR2) reason = `the cost fit explains too little (R^2 ${q.rSquared.toFixed(2)} < ${minR2})`;
    // Logged once per kind of reason (the R^2 in the text changes every period).
    const kind = reason?.replace(/\(.*\)/, '') ?? null;
    const was = this.fallbackReason?.replace(/\(.*\)/, '') ?? null;
    this.trusted = reason === null;
    this.fallbackReason = reason;
    if (kind && kind !== was && reason !== 'warming up' && this.options.mode === 'measured') {
      this.options.onFallback?.(reason!);
    }
  }

  /**
   * The measurement failed this period (an unreadable /proc/stat, a counter read that threw): the
   * table applies until a fit succeeds again.
   */
  fail(reason: string): void {
    const was = this.fallbackReason;
    this.trusted = false;
    this.fallbackReason = reason;
    if (reason !== was && this.options.mode === 'measured') this.options.onFallback?.(reason);
  }

  /** R(t) for the networks over `elapsedMs`, in the units the data plane costs packets in now. */
  capacity(elapsedMs: number): number {
    return (this.view().capacityPerS * elapsedMs) / 1000;
  }

  view(): CpuModelView {
    const o = this.options;
    const measured = this.source === 'measured';
    const fitted = this.fitted;
    const fittedCosts = fitted
      ? (Object.fromEntries(PATHS.map((p, i) => [p, roundCost(fitted[i])])) as Record<PathName, number>)
      : null;
    const fittedCostPerKib = this.fitted ? roundCost(this.fitted[PATHS.length], 0) : null;
    const rawR = o.cores * 1e9 * o.share;
    return {
      source: measured ? 'measured' : 'table',
      fallbackReason: o.mode === 'measured' ? this.fallbackReason : null,
      unit: measured ? 'ns' : 'cost units',
      costs: measured && fittedCosts ? fittedCosts : { ...o.tableCosts },
      costPerKib: measured && fittedCostPerKib !== null ? fittedCostPerKib : o.tableCostPerKib,
      capacityPerS: measured ? Math.max(0, rawR - (this.unattributedNsPerS ?? 0)) : o.tableCapacityPerS,
      cores: o.cores,
      share: o.share,
      fit: this.quality,
      fittedCosts,
      fittedCostPerKib,
      measuredNsPerS: this.measuredNsPerS,
      unattributedNsPerS: this.unattributedNsPerS,
    };
  }
}

/** An EWMA that starts at its first value. */
function smooth(average: number | null, value: number): number {
  return average === null ? value : average + LOAD_SMOOTHING * (value - average);
}

/** A per-packet cost the data plane can hold: an integer, at least `floor` (a path is never free), at most MAX_COST. */
function roundCost(ns: number, floor = 1): number {
  return Math.min(MAX_COST, Math.max(floor, Math.round(ns)));
}
