// The host's CPU, measured (paper IV-A: R(t), U(t) and the per-path costs): the online cost fit,
// /proc/stat's irq and softirq time, and the model the controller reads R from.
export { CostFit, type CostFitOptions, type FitResult } from './fit.js';
export { parseProcStat, readCpuTimes, NapiThreadClock, USER_HZ, type CpuTimes } from './procstat.js';
export { CpuModel, type CpuModelOptions, type CpuModelView, type CpuFitQuality, type PeriodTraffic } from './model.js';
export { CpuMeter, type CpuMeterOptions, type CpuMeterView } from './meter.js';
