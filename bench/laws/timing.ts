// Cost of the law computation alone for one controller period: every resource of the host, every
// network, no I/O. The daemon's budget for a whole period (counter reads, law, map writes) is 5 ms.

import { createLawState } from '../../src/control/law/types.js';
import type { ControlLaw, LawState, NetworkTable, ResourceSample } from '../../src/control/law/types.js';

export interface PeriodTiming {
  readonly law: string;
  readonly networks: number;
  readonly resources: number;
  readonly periods: number;
  /** Milliseconds for one period (all resources) over `periods`: median, 99th percentile, worst. */
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Runs `periods` controller periods of `law` over `resources` resources of `networks` networks each,
 * with synthetic contended counters that change every period, and times each period.
 */
export function timeControllerPeriod(law: ControlLaw, networks = 1000, resources = 10, periods = 1000): PeriodTiming {
  const alpha = new Float64Array(networks).fill(0.8 / networks);
  const weight = new Float64Array(networks);
  for (let slot = 0; slot < networks; slot++) weight[slot] = 1 + ((slot * 37) % 1000);
  const table: NetworkTable = { count: networks, alpha, weight };
  const capacity = 1_000_000;
  const states: LawState[] = [];
  const samples: { capacity: number; offered: Float64Array; carried: Float64Array }[] = [];
  for (let resource = 0; resource < resources; resource++) {
    states.push(createLawState(networks));
    samples.push({ capacity, offered: new Float64Array(networks), carried: new Float64Array(networks) });
  }
  const durations: number[] = [];
  // A few untimed periods first so the JIT has compiled the law before anything is measured.
  const warmup = 20;
  for (let period = 0; period < warmup + periods; period++) {
    for (let resource = 0; resource < resources; resource++) {
      const sample = samples[resource];
      const state = states[resource];
      for (let slot = 0; slot < networks; slot++) {
        // Offered load totals about 1.5 R with a spread of demands, so water-filling has real work.
        const offered = ((capacity * 3) / networks) * (((slot * 7919 + period * 104729 + resource) % 1000) / 1000);
        sample.offered[slot] = offered;
        sample.carried[slot] = offered * (1 - state.dropProbability[slot]);
      }
    }
    const started = process.hrtime.bigint();
    for (let resource = 0; resource < resources; resource++) {
      law.step(table, samples[resource] as ResourceSample, states[resource]);
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (period >= warmup) durations.push(elapsed);
  }
  durations.sort((left, right) => left - right);
  return {
    law: law.name,
    networks,
    resources,
    periods,
    medianMs: durations[Math.floor(durations.length / 2)],
    p99Ms: durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.99))],
    maxMs: durations[durations.length - 1],
  };
}
