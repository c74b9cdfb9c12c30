// One controller period (read every network's counters from the kernel, run the
// control law per resource, write every drop probability back) at 10 / 100 / 1,000
// networks and 8 output links, for both laws.
import type { XnetmonConfig, NetworkDefinition } from '../src/config/index.js';
import { Controller, costsOf, dataPlaneSink, dataPlaneSource } from '../src/control/index.js';
import { DataPlane } from '../src/dataplane/index.js';
import { CpuMeter } from '../src/cpu/index.js';
import { median, round } from './stats.js';

export interface ControllerFigures {
  networks: number;
  links: number;
  period_ms: number;
  period_ms_p99: number;
  law: string;
}

function config(networks: number, links: number, law: 'share' | 'algorithm1'): XnetmonConfig {
  const linkNames = Array.from({ length: links }, (_, i) => `eth${i}`);
  const share = 1 / networks;
  return {
    host: {
      pinDir: '',
      periodMs: 100,
      controlLaw: law,
      beta: 0.9,
      phiInitial: 0.1,
      residualDrop: 0.001,
      cpuCapacity: 1e7,
      cpuModel: 'measured',
      cpuShare: 1,
      fibCapacity: 1e6,
      fibCritical: 0.9,
      flowCacheSlots: 65536,
      xdpMode: 'auto',
      tcMode: 'auto',
      costs: { extExt: 1, extVm: 2, vmExt: 60, vmVm: 85, vmHost: 66 },
      costPerKib: 0,
      links: linkNames.map((name) => ({ name, capacityMbps: 1000 })),
      listen: '0.0.0.0:7400',
      hostPrivateKeyFile: '',
      adminSocket: '',
      metricsListen: null,
      staleRouteTimeoutS: 120,
      eMaxMs: 2000,
      updateMessagesPerS: 1000,
      updateMessagesBurst: 10_000,
    },
    networks: Array.from(
      { length: networks },
      (_, i): NetworkDefinition => ({
        id: i + 1,
        name: `n${i + 1}`,
        weight: 1 + (i % 1000),
        filterDefault: 'accept',
        reserve: {
          cpu: share * 0.9,
          fib: share * 0.9,
          links: Object.fromEntries(linkNames.map((l) => [l, share * 0.9])),
        },
        routers: [],
        attachments: [],
        quota: {},
      }),
    ),
  };
}

export function benchController(
  options: { networks?: number[]; links?: number; periods?: number } = {},
): ControllerFigures[] {
  const links = options.links ?? 8;
  const periods = options.periods ?? 200;
  const out: ControllerFigures[] = [];
  const dp = DataPlane.open();
  try {
    for (const count of options.networks ?? [10, 100, 1000]) {
      for (const law of ['share', 'algorithm1'] as const) {
        const cfg = config(count, links, law);
        for (const n of cfg.networks) dp.defineNetwork({ id: n.id, name: n.name });
        // The daemon's CPU meter too: /proc/stat, the per-path totals and the cost fit, every period.
        const cpu = new CpuMeter({
          model: {
            mode: 'measured',
            share: 1,
            cores: 2,
            tableCosts: costsOf(cfg),
            tableCostPerKib: 0,
            tableCapacityPerS: cfg.host.cpuCapacity,
          },
          readTraffic: () => dp.readPathTotals(),
          applyCosts: () => undefined,
        });
        const controller = new Controller({
          config: cfg,
          source: dataPlaneSource(dp, () => 0),
          sink: dataPlaneSink(dp),
          cpu,
          linkSlots: new Map(cfg.host.links.map((l, i) => [l.name, i])),
        });
        controller.step();
        const times: number[] = [];
        for (let p = 0; p < periods; p++) {
          const t = process.hrtime.bigint();
          controller.step();
          times.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
        times.sort((a, b) => a - b);
        out.push({
          networks: count,
          links,
          law,
          period_ms: round(median(times), 3),
          period_ms_p99: round(times[Math.floor(times.length * 0.99)], 3),
        });
      }
    }
    return out;
  } finally {
    dp.close();
  }
}
