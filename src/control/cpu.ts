// The daemon's CPU meter (src/cpu) over its data plane: traffic per path from the counters,
// the cost table written back through applySettings, and the BPF run-time statistics of its
// programs while the measured model is on.
import { cpus } from 'node:os';
import type { Logger } from 'pino';
import type { XnetmonConfig } from '../config/index.js';
import type { DataPlane } from '../dataplane/index.js';
import { RunTimeStats, programRunTime } from '../loader/index.js';
import { CpuMeter, readCpuTimes, type CpuModelOptions } from '../cpu/index.js';
import { applySettings, costsOf } from './apply.js';

const PROGRAMS = ['xnm_phys_in', 'xnm_vif_in', 'xnm_link_out', 'xnm_vif_out'];

export function cpuModelOptions(config: XnetmonConfig, cores: number, log: Logger): CpuModelOptions {
  return {
    mode: config.host.cpuModel,
    share: config.host.cpuShare,
    cores,
    tableCosts: costsOf(config),
    tableCostPerKib: Math.round(config.host.costPerKib),
    tableCapacityPerS: config.host.cpuCapacity,
    onFallback: (reason) => log.warn({ reason }, 'measured CPU model not usable: constant costs, cpu_capacity apply'),
  };
}

export interface DaemonCpu {
  meter: CpuMeter;
  /** Applies a reloaded config (after applySettings wrote the config's table). */
  reconfigure(config: XnetmonConfig): void;
  close(): void;
}

export function createDaemonCpu(dp: DataPlane, config: XnetmonConfig, control: boolean, log: Logger): DaemonCpu {
  let current = config;
  let cores = cpus().length || 1;
  try {
    cores = readCpuTimes().cpus;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot read /proc/stat: the CPU model keeps the constant cost table');
  }
  let stats: RunTimeStats | undefined;
  const setStats = (on: boolean): void => {
    if (on && !stats) {
      try {
        stats = RunTimeStats.enable();
      } catch (err) {
        log.warn({ err: (err as Error).message }, "BPF run-time statistics unavailable: programs' run time not shown");
      }
    } else if (!on && stats) {
      stats.close();
      stats = undefined;
    }
  };
  setStats(config.host.cpuModel === 'measured');
  const meter = new CpuMeter({
    model: cpuModelOptions(config, cores, log),
    readTraffic: () => dp.readPathTotals(),
    applyCosts: (pathCost, costPerKib) => applySettings(dp, current, control, { pathCost, costPerKib }),
    bpfRunTimeNs: () => {
      if (!stats) return null;
      return PROGRAMS.reduce((sum, name) => sum + programRunTime(dp.object.program(name)).runTimeNs, 0);
    },
  });
  return {
    meter,
    reconfigure(next) {
      current = next;
      setStats(next.host.cpuModel === 'measured');
      meter.configure(cpuModelOptions(next, cores, log));
    },
    close() {
      setStats(false);
    },
  };
}
