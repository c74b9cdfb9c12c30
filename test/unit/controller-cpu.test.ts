// The controller's CPU accounting on scripted counters: carried never exceeds offered, and a
// punished network's drops go to its heaviest flows through the fair rate it is given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/index.js';
import { Controller, type CounterSource, type DropDecision, type NetworkUsage } from '../../src/control/index.js';
import { FAIR_BUCKETS } from '../../src/loader/index.js';
import { fairDropFraction } from '../../src/dataplane/index.js';
import { CpuMeter } from '../../src/cpu/index.js';

const KEYS = ['7ygV5lAsMGOE+P82Ov4KrzgzCD8GSGogtceYYaWDfBE=', 'JPF+gZDy9Aef7IwssCXCjgaMIP0F+Kx0sEjXaskNLmA='];
const config = parseConfig(`
host:
  period_ms: 100
  beta: 0.9
  cpu_capacity: 1000
  links: [{ name: ext0, capacity_mbps: 1 }]
networks:
  - { id: 1, name: common, reserve: { cpu: 0.5 }, routers: [{ vif: vif1, client_public_key: "${KEYS[0]}" }] }
  - { id: 2, name: opponent, reserve: { cpu: 0.3 }, routers: [{ vif: vif2, client_public_key: "${KEYS[1]}" }] }
`);

/** Counters scripted period by period (cumulative), as a racing read of per-CPU maps can return them. */
function scripted(
  periods: { offered: [number, number]; carried: [number, number]; hist?: number[] }[],
): CounterSource & { next(): void } {
  let at = 0;
  const totals = [
    { o: 0, c: 0, h: new Float64Array(FAIR_BUCKETS) },
    { o: 0, c: 0, h: new Float64Array(FAIR_BUCKETS) },
  ];
  return {
    next() {
      const p = periods[at++];
      for (let i = 0; i < 2; i++) {
        totals[i].o += p.offered[i];
        totals[i].c += p.carried[i];
        if (i === 1 && p.hist)
          p.hist.forEach((v, b) => {
            totals[i].h[b] += v;
          });
      }
    },
    read: (ids) =>
      ids.map(
        (netId, i): NetworkUsage => ({
          netId,
          cpuOffered: totals[i].o,
          cpuCarried: totals[i].c,
          linkOffered: new Array(16).fill(0),
          linkCarried: new Array(16).fill(0),
          fairHist: Float64Array.from(totals[i].h),
        }),
      ),
    routeCounts: (ids) => ids.map(() => 0),
  };
}

test('carried never exceeds offered in the CPU figures, even when a read races the data plane', () => {
  const source = scripted([
    { offered: [10, 10], carried: [10, 10] },
    { offered: [40, 90], carried: [45, 90] },
    { offered: [40, 90], carried: [35, 80] },
  ]);
  const writes: DropDecision[][] = [];
  const c = new Controller({
    config,
    source,
    sink: { write: (d) => writes.push([...d]) },
    linkSlots: new Map([['ext0', 0]]),
  });
  source.next();
  c.step();
  for (let p = 0; p < 2; p++) {
    source.next();
    const cpu = c.step()!.resources.find((r) => r.resource === 'cpu')!;
    for (const n of cpu.networks)
      assert.ok(n.carried <= n.offered, `${n.name}: carried ${n.carried} <= offered ${n.offered}`);
  }
});

test('a punished network gets a fair rate that drops its p from the histogram; an unpunished one gets none', () => {
  // The opponent: one flow at rate ~1000 (bucket 19-20) and 100 flows at rate 3 (bucket 3).
  const hist = new Array<number>(FAIR_BUCKETS).fill(0);
  hist[3] = 300;
  hist[19] = 1000;
  const flood = { offered: [40, 150] as [number, number], carried: [40, 150] as [number, number], hist };
  // One period after the baseline: the share law's correction has learnt nothing yet, so p is its
  // feed-forward command (the scripted counters do not answer the drops).
  const source = scripted([flood, flood]);
  const writes: DropDecision[][] = [];
  const c = new Controller({
    config,
    source,
    sink: { write: (d) => writes.push([...d]) },
    linkSlots: new Map([['ext0', 0]]),
  });
  source.next();
  c.step();
  source.next();
  c.step();
  const last = writes.at(-1)!;
  const common = last.find((d) => d.netId === 1)!;
  const opponent = last.find((d) => d.netId === 2)!;
  assert.equal(common.drops.cpu, 0);
  assert.equal(common.drops.fair, 0, 'no punishment, no fair rate');
  assert.ok(opponent.drops.cpu > 0.3, `opponent punished: ${opponent.drops.cpu}`);
  const fair = opponent.drops.fair!;
  assert.ok(fair > 3, `the small flows (rate 3) are under the fair rate ${fair}`);
  assert.ok(Math.abs(fairDropFraction(hist, fair) - opponent.drops.cpu) < 0.01, 'the fair rate drops p of the packets');
});

test('with a CPU meter, R comes from the measured model once its fit is usable, and from cpu_capacity before', () => {
  // A host of 2 cores whose irq + softirq time is 500 ns per packet plus 1 ms per period.
  let packets = 0;
  let softirqNs = 0;
  let period = 0;
  const meter = new CpuMeter({
    model: {
      mode: 'measured',
      share: 0.5,
      cores: 2,
      tableCosts: { ext_ext: 1, ext_vm: 2, vm_ext: 60, vm_vm: 85, vm_host: 66, host_vm: 66 },
      tableCostPerKib: 0,
      tableCapacityPerS: 1000,
      minSamples: 10,
    },
    readTraffic: () => ({ packets: [packets, 0, 0, 0, 0, 0], bytes: packets * 64 }),
    readCpu: () => ({ cpus: 2, softirqNs, busyNs: softirqNs }),
    applyCosts: () => undefined,
  });
  const source = scripted(
    Array.from({ length: 40 }, () => ({
      offered: [10, 10] as [number, number],
      carried: [10, 10] as [number, number],
    })),
  );
  const c = new Controller({
    config,
    source,
    sink: { write: () => undefined },
    linkSlots: new Map([['ext0', 0]]),
    cpu: meter,
  });
  const capacities: number[] = [];
  source.next();
  c.step();
  for (let p = 0; p < 30; p++) {
    const n = 1000 + ((period++ * 7919) % 5000);
    packets += n;
    softirqNs += n * 500 + 1e6;
    source.next();
    capacities.push(c.step()!.resources.find((r) => r.resource === 'cpu')!.capacity);
  }
  assert.equal(capacities[0], 100, 'before the fit: cpu_capacity x T');
  const last = c.lastReport!;
  assert.equal(last.cpu?.source, 'measured', `fallback: ${last.cpu?.fallbackReason}`);
  assert.ok(Math.abs(last.cpu!.costs.ext_ext - 500) <= 10, `ext_ext ${last.cpu!.costs.ext_ext} ns`);
  // 2 cores x 0.5 x 100 ms = 1e8 ns, less the 1 ms per period no packet explains.
  assert.ok(Math.abs(capacities.at(-1)! - (1e8 - 1e6)) < 2e5, `R ${capacities.at(-1)}`);
});
