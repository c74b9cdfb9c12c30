// The CPU model fed from the host: each controller period it reads the irq + softirq time
// (/proc/stat) and the packets per path (the data plane's counters), fits, and hands the
// controller R(t) in the units the data plane costs packets in. When the model's cost table
// changes (measured <-> table, or a cost moves by more than COST_CHANGE), `applyCosts` rewrites
// the data plane's table, so that what the networks are charged and R are in the same units.
import { PATHS, type PathName } from '../loader/index.js';
import { CpuModel, type CpuModelOptions, type CpuModelView } from './model.js';
import { readCpuTimes, type CpuTimes } from './procstat.js';

export interface CpuMeterView extends CpuModelView {
  /** The data plane's programs' own run time per second (BPF run-time statistics), or null when off. */
  bpfRunTimeNsPerS: number | null;
}

export interface CpuMeterOptions {
  model: CpuModelOptions;
  /** Cumulative packets per path (PATHS order) and bytes over all networks. */
  readTraffic: () => { packets: ArrayLike<number>; bytes: number };
  /** Writes a cost table into the data plane. */
  applyCosts: (costs: Record<PathName, number>, costPerKib: number) => void;
  /** Cumulative run time of the data plane's programs (ns); null while statistics are off. */
  bpfRunTimeNs?: () => number | null;
  readCpu?: () => CpuTimes;
}

/** A measured cost is rewritten when it moves by more than this fraction (each write costs a map update). */
const COST_CHANGE = 0.05;

export class CpuMeter {
  readonly model: CpuModel;
  private last: { cpu: CpuTimes; traffic: { packets: Float64Array; bytes: number }; bpf: number | null } | undefined;
  private applied: { costs: Record<PathName, number>; costPerKib: number } | undefined;
  private bpfPerS: number | null = null;
  private readonly readCpu: () => CpuTimes;

  constructor(private readonly options: CpuMeterOptions) {
    this.model = new CpuModel(options.model);
    this.readCpu = options.readCpu ?? (() => readCpuTimes());
  }

  configure(model: CpuModelOptions): void {
    this.model.configure(model);
    this.applied = undefined; // the config's table may have changed: write it again
    this.applyIfChanged();
  }

  /** One period: observe, then R(t) for it (the controller's CPU capacity hook). */
  capacity(elapsedMs: number): number {
    try {
      this.measure(elapsedMs);
    } catch (err) {
      // Never a crash nor a wrong R: the table's costs and R until a measurement succeeds again.
      this.last = undefined;
      this.model.fail(`the CPU measurement failed: ${(err as Error).message}`);
    }
    this.applyIfChanged();
    return this.model.capacity(elapsedMs);
  }

  private measure(elapsedMs: number): void {
    const cpu = this.readCpu();
    const t = this.options.readTraffic();
    const traffic = { packets: Float64Array.from(t.packets), bytes: t.bytes };
    const bpf = this.options.bpfRunTimeNs?.() ?? null;
    const last = this.last;
    this.last = { cpu, traffic, bpf };
    if (last) {
      const packets = traffic.packets.map((v, p) => v - last.traffic.packets[p]);
      const bytes = traffic.bytes - last.traffic.bytes;
      this.model.observe(elapsedMs, { packets, bytes }, cpu.softirqNs - last.cpu.softirqNs);
      this.bpfPerS = bpf !== null && last.bpf !== null && elapsedMs > 0 ? ((bpf - last.bpf) * 1000) / elapsedMs : null;
    }
  }

  view(): CpuMeterView {
    return { ...this.model.view(), bpfRunTimeNsPerS: this.bpfPerS };
  }

  private applyIfChanged(): void {
    const v = this.model.view();
    const a = this.applied;
    const differs = (now: number, then: number): boolean => Math.abs(now - then) > COST_CHANGE * Math.max(1, then);
    const moved = !a || differs(v.costPerKib, a.costPerKib) || PATHS.some((p) => differs(v.costs[p], a.costs[p]));
    if (!moved) return;
    this.options.applyCosts(v.costs, v.costPerKib);
    this.applied = { costs: { ...v.costs }, costPerKib: v.costPerKib };
  }
}
