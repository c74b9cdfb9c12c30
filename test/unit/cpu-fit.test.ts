// The online cost fit and the CPU model on synthetic traces: known per-path costs must be found
// again, a path without traffic keeps its prior, and a fit that cannot be trusted falls back to the
// constant table (with the table's R, never a mix).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CostFit, CpuMeter, CpuModel, parseProcStat, type CpuModelOptions } from '../../src/cpu/index.js';
import { PATHS, type PathName } from '../../src/loader/index.js';
import { ValidationError } from '../../src/errors/index.js';
import { prng } from '../support/prng.js';

/** Seeded, so that the traces are the same every run. */
const rng = prng;

const TRUE_NS: Record<PathName, number> = {
  ext_ext: 300,
  ext_vm: 900,
  vm_ext: 1500,
  vm_vm: 2500,
  vm_host: 2000,
  host_vm: 1800,
};
const TRUE_NS_PER_KIB = 40;
const BASELINE_NS_PER_S = 2e7;
const TABLE: Record<PathName, number> = { ext_ext: 1, ext_vm: 2, vm_ext: 60, vm_vm: 85, vm_host: 66, host_vm: 66 };

/** One period of 100 ms: random packets on the `active` paths, 64..1500-byte packets, y with relative noise. */
function period(random: () => number, active: readonly PathName[], noise: number) {
  const packets = PATHS.map((p) => (active.includes(p) ? Math.round(random() * 20000) : 0));
  let bytes = 0;
  let ns = BASELINE_NS_PER_S * 0.1;
  PATHS.forEach((p, i) => {
    const size = 64 + random() * 1436;
    bytes += packets[i] * size;
    ns += packets[i] * TRUE_NS[p];
  });
  ns += (bytes / 1024) * TRUE_NS_PER_KIB;
  ns *= 1 + noise * (random() * 2 - 1);
  return { packets, bytes, ns };
}

test('the fit finds known per-path costs again from a noisy trace (1 % noise)', () => {
  const random = rng(1);
  const fit = new CostFit({ features: PATHS.length + 2, forgetting: 0.99 });
  for (let t = 0; t < 300; t++) {
    const s = period(random, PATHS, 0.01);
    fit.add([...s.packets, s.bytes / 1024, 0.1], s.ns);
  }
  const r = fit.solve();
  assert.ok(r.converged, 'converged');
  assert.ok(r.rSquared > 0.95, `R^2 ${r.rSquared}`);
  PATHS.forEach((p, i) => {
    assert.ok(Math.abs(r.coefficients[i] / TRUE_NS[p] - 1) < 0.1, `${p}: ${r.coefficients[i]} vs ${TRUE_NS[p]}`);
  });
  // The bytes explain 2 % of y here, at the noise level: a looser bound.
  assert.ok(
    Math.abs(r.coefficients[PATHS.length] / TRUE_NS_PER_KIB - 1) < 0.3,
    `per KiB ${r.coefficients[PATHS.length]}`,
  );
});

test('coefficients stay >= 0 even when the data would pull one negative', () => {
  const random = rng(2);
  const fit = new CostFit({ features: 2 });
  // y falls as x1 rises: the unconstrained least squares slope of x1 is negative.
  for (let t = 0; t < 100; t++) {
    const x0 = random() * 100;
    const x1 = random() * 100;
    fit.add([x0, x1], Math.max(0, 5 * x0 - 2 * x1 + 300));
  }
  const r = fit.solve();
  assert.ok(r.converged);
  assert.ok(r.coefficients[1] >= 0, `x1's cost ${r.coefficients[1]}`);
  assert.ok(r.coefficients[0] > 0);
});

test('a path without traffic keeps its prior cost', () => {
  const random = rng(3);
  const prior = [...PATHS.map((p) => TABLE[p] * 300), 0, 0];
  const fit = new CostFit({ features: PATHS.length + 2, prior });
  for (let t = 0; t < 100; t++) {
    const s = period(random, ['ext_ext', 'vm_vm'], 0.01);
    fit.add([...s.packets, s.bytes / 1024, 0.1], s.ns);
  }
  const r = fit.solve();
  assert.ok(r.converged);
  assert.equal(r.coefficients[PATHS.indexOf('vm_host')], TABLE.vm_host * 300, 'vm_host: no traffic, prior kept');
  assert.ok(Math.abs(r.coefficients[PATHS.indexOf('vm_vm')] / TRUE_NS.vm_vm - 1) < 0.2, 'vm_vm fitted');
});

test('collinear columns (every packet the same size) still converge and predict y', () => {
  const random = rng(4);
  const fit = new CostFit({ features: 3 });
  for (let t = 0; t < 200; t++) {
    const packets = random() * 10000;
    fit.add([packets, (packets * 64) / 1024, 0.1], packets * 350 + 1e6);
  }
  const r = fit.solve();
  assert.ok(r.converged, `converged in ${r.sweeps} sweeps`);
  assert.ok(r.rSquared > 0.99, `R^2 ${r.rSquared}`);
  const predicted = 5000 * r.coefficients[0] + ((5000 * 64) / 1024) * r.coefficients[1] + 0.1 * r.coefficients[2];
  assert.ok(Math.abs(predicted / (5000 * 350 + 1e6) - 1) < 0.01, `predicted ${predicted}`);
});

test('a fit that runs out of sweeps says so', () => {
  const random = rng(5);
  const fit = new CostFit({ features: 3, maxSweeps: 1 });
  for (let t = 0; t < 50; t++) {
    const a = random() * 1000;
    fit.add([a, a * 0.5 + random(), 1], a * 7 + 3);
  }
  assert.equal(fit.solve().converged, false);
});

test('bad samples are refused with the field named, and change nothing', () => {
  const fit = new CostFit({ features: 2 });
  fit.add([1, 2], 3);
  const before = fit.solve();
  assert.throws(
    () => fit.add([1, Number.NaN], 3),
    (e: unknown) => e instanceof ValidationError && e.path === 'x[1]',
  );
  assert.throws(
    () => fit.add([1, 2], -1),
    (e: unknown) => e instanceof ValidationError && e.path === 'y',
  );
  assert.throws(
    () => fit.add([1], 1),
    (e: unknown) => e instanceof ValidationError && e.path === 'x',
  );
  assert.throws(
    () => new CostFit({ features: 2, forgetting: 0 }),
    (e: unknown) => e instanceof ValidationError && e.path === 'forgetting',
  );
  assert.equal(fit.solve().samples, before.samples);
});

const modelOptions = (extra: Partial<CpuModelOptions> = {}): CpuModelOptions => ({
  mode: 'measured',
  share: 0.5,
  cores: 2,
  tableCosts: TABLE,
  tableCostPerKib: 0,
  tableCapacityPerS: 2_000_000,
  minSamples: 20,
  ...extra,
});

test('CPU model: the table while warming up, then the measured costs and R = cores x share minus the unattributed load', () => {
  const random = rng(6);
  const model = new CpuModel(modelOptions());
  assert.equal(model.view().source, 'table');
  assert.equal(model.capacity(100), 200_000, "the table's R: cpu_capacity x period");
  for (let t = 0; t < 100; t++) {
    const s = period(random, PATHS, 0.02);
    model.observe(100, { packets: s.packets, bytes: s.bytes }, s.ns);
  }
  const v = model.view();
  assert.equal(v.source, 'measured', `fallback: ${v.fallbackReason}`);
  assert.equal(v.unit, 'ns');
  assert.ok(Math.abs(v.costs.vm_vm / TRUE_NS.vm_vm - 1) < 0.15, `vm_vm ${v.costs.vm_vm} ns`);
  // R = 2 cores x 1e9 ns/s x 0.5, less the 2e7 ns/s baseline that no network explains.
  assert.ok(Math.abs(v.capacityPerS - (1e9 - BASELINE_NS_PER_S)) < 0.02e9, `R ${v.capacityPerS}`);
  assert.ok(v.fit!.rSquared! > 0.9);
});

test('CPU model: CPU time unrelated to the traffic falls back to the table, logged once', () => {
  const random = rng(7);
  const reasons: string[] = [];
  const model = new CpuModel(modelOptions({ onFallback: (r) => reasons.push(r) }));
  for (let t = 0; t < 100; t++) {
    const s = period(random, PATHS, 0);
    model.observe(100, { packets: s.packets, bytes: s.bytes }, random() * 1e8);
  }
  const v = model.view();
  assert.equal(v.source, 'table');
  assert.match(v.fallbackReason!, /explains too little/);
  assert.equal(v.capacityPerS, 2_000_000, "the table's R, in the table's units");
  assert.deepEqual(v.costs, TABLE);
  assert.equal(reasons.length, 1, `logged once: ${reasons.join('; ')}`);
});

test('CPU model: a constant CPU time has nothing to fit; bad samples are skipped; the share is validated', () => {
  const model = new CpuModel(modelOptions());
  for (let t = 0; t < 50; t++) model.observe(100, { packets: PATHS.map(() => 0), bytes: 0 }, 1e6);
  model.observe(0, { packets: PATHS.map(() => 1), bytes: 1 }, 1);
  model.observe(100, { packets: PATHS.map(() => -1), bytes: 1 }, 1);
  assert.equal(model.view().source, 'table');
  assert.match(model.view().fallbackReason!, /did not vary/);
  assert.throws(() => new CpuModel(modelOptions({ share: 0 })), /share/);
  assert.throws(() => new CpuModel(modelOptions({ share: 1.5 })), /share/);
  assert.equal(new CpuModel(modelOptions({ mode: 'table' })).view().fallbackReason, null);
});

test('/proc/stat: irq + softirq and busy time over the per-CPU lines, in ns', () => {
  const t = parseProcStat(
    'cpu  3 0 0 0 0 0 0 0 0 0\ncpu0 100 1 50 900 5 2 30 0 0 0\ncpu1 100 1 50 900 5 3 40 0 0 0\nintr 1\n',
  );
  assert.equal(t.cpus, 2);
  assert.equal(t.softirqNs, (2 + 30 + 3 + 40) * 1e7);
  assert.equal(t.busyNs, (100 + 1 + 50 + 2 + 30 + 100 + 1 + 50 + 3 + 40) * 1e7);
  assert.throws(() => parseProcStat('intr 1\n'), /no per-CPU line/);
});

test("CPU meter: a measurement that throws falls back to the table's R, logged once, and never escapes", () => {
  const reasons: string[] = [];
  let fail = false;
  const meter = new CpuMeter({
    model: { ...modelOptions({ onFallback: (r) => reasons.push(r) }) },
    readTraffic: () => ({ packets: PATHS.map(() => 0), bytes: 0 }),
    readCpu: () => {
      if (fail) throw new Error('EACCES /proc/stat');
      return { cpus: 2, softirqNs: 0, busyNs: 0 };
    },
    applyCosts: () => undefined,
  });
  meter.capacity(100);
  fail = true;
  assert.equal(meter.capacity(100), 200_000);
  assert.equal(meter.capacity(100), 200_000);
  assert.equal(meter.view().source, 'table');
  assert.match(meter.view().fallbackReason!, /EACCES/);
  assert.equal(reasons.length, 1);
});
