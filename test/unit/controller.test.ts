// The controller on a fake plant: the same code path as the daemon, minus the kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, type XnetmonConfig } from '../../src/config/index.js';
import { Controller, FakePlant } from '../../src/control/index.js';

const KEYS = ['7ygV5lAsMGOE+P82Ov4KrzgzCD8GSGogtceYYaWDfBE=', 'JPF+gZDy9Aef7IwssCXCjgaMIP0F+Kx0sEjXaskNLmA='];

function config(
  law: 'share' | 'algorithm1',
  alphas: [number, number],
  weights: [number, number] = [500, 500],
): XnetmonConfig {
  return parseConfig(`
host:
  period_ms: 100
  control_law: ${law}
  beta: 0.9
  cpu_capacity: 1000
  fib_capacity: 1000
  links: [{ name: ext0, capacity_mbps: 1 }]
networks:
  - { id: 1, name: common, weight: ${weights[0]}, reserve: { cpu: ${alphas[0]}, fib: 0.5, links: { ext0: ${alphas[0]} } }, routers: [{ vif: vif1, client_public_key: "${KEYS[0]}" }] }
  - { id: 2, name: opponent, weight: ${weights[1]}, reserve: { cpu: ${alphas[1]}, fib: 0.3, links: { ext0: ${alphas[1]} } }, routers: [{ vif: vif2, client_public_key: "${KEYS[1]}" }] }
`);
}

function run(cfg: XnetmonConfig, offered: Record<number, number>, periods: number) {
  const plant = new FakePlant((id) => ({ cpu: offered[id] ?? 0, link0: (offered[id] ?? 0) * 125 }));
  const controller = new Controller({ config: cfg, source: plant, sink: plant, linkSlots: new Map([['ext0', 0]]) });
  const carried: number[][] = [];
  controller.step(); // baseline
  for (let p = 0; p < periods; p++) {
    plant.tick([1, 2]);
    const report = controller.step()!;
    carried.push(report.resources[0].networks.map((n) => n.carried));
  }
  return { plant, carried, controller };
}

test('share law: the opponent flooding at 150% cannot push the common network under its reservation', () => {
  // R = 100 units per period; common offers 60 (alpha 0.5 -> 50 guaranteed), opponent 150.
  const { carried, plant } = run(config('share', [0.5, 0.3]), { 1: 60, 2: 150 }, 20);
  const settled = carried.slice(5);
  for (const [common, opponent] of settled) {
    assert.ok(common >= 50 * 0.95, `common carried ${common}`);
    assert.ok(common + opponent <= 100 * 1.05, `total ${common + opponent} within R`);
  }
  assert.ok((plant.probability(2)?.cpu ?? 0) > 0.5, 'the opponent is punished hard');
});

test('a network under its reservation is never punished, whatever the others do', () => {
  const { carried, plant } = run(config('share', [0.5, 0.3]), { 1: 45, 2: 150 }, 20);
  assert.equal(plant.probability(1)?.cpu, 0);
  for (const [common] of carried) assert.equal(common, 45);
});

test('no contention: nobody is dropped', () => {
  const { plant } = run(config('share', [0.5, 0.3]), { 1: 30, 2: 40 }, 10);
  assert.equal(plant.probability(1)?.cpu, 0);
  assert.equal(plant.probability(2)?.cpu, 0);
  assert.deepEqual(
    plant.probability(2)?.links.filter((x) => x > 0),
    [],
  );
});

test('unequal weights split the idle share in their ratio', () => {
  const { carried } = run(config('share', [0.1, 0.1], [100, 900]), { 1: 100, 2: 100 }, 20);
  const [common, opponent] = carried[carried.length - 1];
  // beta R = 90: 10 each reserved, 70 idle split 1:9 -> 17 and 73.
  assert.ok(Math.abs(common - 17) < 2, `W=100 network carried ${common}`);
  assert.ok(Math.abs(opponent - 73) < 2, `W=900 network carried ${opponent}`);
});

test('Algorithm 1 also punishes only the network over its reservation', () => {
  const { plant } = run(config('algorithm1', [0.5, 0.3]), { 1: 40, 2: 150 }, 5);
  assert.equal(plant.probability(1)?.cpu, 0);
  assert.ok((plant.probability(2)?.cpu ?? 0) > 0);
});

test('the link resource is controlled per output link', () => {
  const { plant } = run(config('share', [0.5, 0.3]), { 1: 60, 2: 150 }, 10);
  assert.ok((plant.probability(2)?.links[0] ?? 0) >= 0, 'link probability written at the link slot');
});

test('reconfigure keeps the probabilities of surviving networks', () => {
  const { controller, plant } = run(config('share', [0.5, 0.3]), { 1: 60, 2: 150 }, 10);
  const before = plant.probability(2)?.cpu ?? 0;
  controller.reconfigure(config('share', [0.5, 0.4]));
  controller.step();
  plant.tick([1, 2]);
  controller.step();
  assert.ok(Math.abs((plant.probability(2)?.cpu ?? 0) - before) < 0.5);
});

test('memory control: evicts from the network over its FIB reservation only, once, and restores when demand falls', () => {
  const cfg = config('share', [0.5, 0.3]); // fib reservations 0.5 and 0.3 of 1000 routes
  const plant = new FakePlant(() => ({ cpu: 0 }));
  const installed = new Map([
    [1, 100],
    [2, 1200],
  ]);
  const demand = new Map([
    [1, 100],
    [2, 1200],
  ]);
  const calls: string[] = [];
  const source = {
    read: (ids: readonly number[]) => plant.read(ids),
    routeCounts: (ids: readonly number[]) => ids.map((id) => installed.get(id) ?? 0),
    routeDemand: (ids: readonly number[]) => ids.map((id) => demand.get(id) ?? 0),
  };
  const memory = {
    evict: (id: number, fraction: number) => {
      calls.push(`evict ${id}`);
      installed.set(id, Math.round((installed.get(id) ?? 0) * (1 - fraction)));
    },
    restore: (id: number) => {
      calls.push(`restore ${id}`);
      installed.set(id, demand.get(id) ?? 0);
      return true;
    },
  };
  const controller = new Controller({ config: cfg, source, sink: plant, memory, linkSlots: new Map([['ext0', 0]]) });
  controller.step();
  for (let p = 0; p < 5; p++) controller.step();
  assert.ok(calls.includes('evict 2'), 'green (opponent, over 0.3 x 1000) loses routes');
  assert.ok(!calls.some((c) => c === 'evict 1'), 'blue, under its reservation, never does');
  assert.ok((installed.get(2) ?? 0) <= 900 - 100, `green keeps what fits: ${installed.get(2)}`);
  const evictions = calls.filter((c) => c === 'evict 2').length;
  for (let p = 0; p < 5; p++) controller.step();
  assert.ok(calls.filter((c) => c === 'evict 2').length <= evictions + 1, 'no eviction spiral once it fits');
  demand.set(2, 300);
  controller.step();
  assert.ok(calls.includes('restore 2'), 'restored when memory pressure falls');
});

test('R(t) follows the real interval between reads: a late period is not mistaken for a burst', () => {
  // Common offers 60 units per 100 ms (alpha 0.5 of R = 100): over its reservation, under contention.
  const plant = new FakePlant((id) => ({ cpu: id === 1 ? 120 : 300, link0: 0 }));
  const controller = new Controller({
    config: config('share', [0.5, 0.3]),
    source: plant,
    sink: plant,
    linkSlots: new Map([['ext0', 0]]),
  });
  controller.step();
  plant.tick([1, 2]); // 200 ms worth of load, read after 200 ms
  const late = controller.step(200)!;
  assert.equal(late.resources[0].capacity, 200, 'R for 200 ms');
  const common = late.resources[0].networks[0];
  assert.equal(common.reserved, 100);
  assert.ok(common.target >= 100, `common's target ${common.target} keeps its reservation of the real interval`);
  plant.tick([1, 2]);
  assert.equal(controller.step()!.resources[0].capacity, 100, 'the configured period by default');
});

test('a memory control that throws (a full map) does not escape the period: counted, logged once, retried next period', () => {
  const cfg = config('share', [0.5, 0.3]);
  const plant = new FakePlant(() => ({ cpu: 0 }));
  const installed = new Map([
    [1, 100],
    [2, 1200],
  ]);
  const source = {
    read: (ids: readonly number[]) => plant.read(ids),
    routeCounts: (ids: readonly number[]) => ids.map((id) => installed.get(id) ?? 0),
  };
  let attempts = 0;
  let full = true;
  const memory = {
    evict: (id: number, fraction: number) => {
      attempts++;
      if (full) throw Object.assign(new Error('xnm_routes4 is full (ENOSPC)'), { code: 'ERR_MAP_FULL' });
      installed.set(id, Math.round((installed.get(id) ?? 0) * (1 - fraction)));
    },
    restore: () => undefined,
  };
  const warnings: { fields: object; message: string }[] = [];
  const controller = new Controller({
    config: cfg,
    source,
    sink: plant,
    memory,
    linkSlots: new Map([['ext0', 0]]),
    logger: { warn: (fields, message) => warnings.push({ fields, message }) },
  });
  controller.runPeriod();
  for (let p = 0; p < 5; p++)
    assert.ok(controller.runPeriod(), 'every period still reports (the drop probabilities are written)');
  assert.ok(attempts >= 5, `eviction retried every period: ${attempts}`);
  assert.equal(controller.failures.count('evict:2'), attempts);
  assert.equal(warnings.length, 1, 'logged once in the interval, not every period');
  assert.match(warnings[0]!.message, /could not evict routes this period/);
  assert.equal(plant.probability(1)?.cpu, 0, 'the sink was written for every network');
  full = false;
  controller.runPeriod();
  assert.ok((installed.get(2) ?? 0) < 1200, 'the retry went through once the map had room');
});

test("the controller's timer survives a period that throws", async () => {
  const cfg = parseConfig(`
host:
  period_ms: 10
  links: [{ name: ext0, capacity_mbps: 1 }]
networks:
  - { id: 1, name: common, routers: [{ vif: vif1, client_public_key: "${KEYS[0]}" }] }
`);
  let reads = 0;
  const source = {
    read: (ids: readonly number[]) => {
      reads++;
      if (reads % 2 === 0) throw new Error('map read failed');
      return ids.map((netId) => ({ netId, cpuOffered: 0, cpuCarried: 0, linkOffered: [0], linkCarried: [0] }));
    },
    routeCounts: (ids: readonly number[]) => ids.map(() => 0),
  };
  const controller = new Controller({
    config: cfg,
    source,
    sink: { write: () => undefined },
    linkSlots: new Map([['ext0', 0]]),
  });
  // Without the catch, the first throw would be an uncaught exception that ends this test process.
  controller.start();
  // Waits for the periods rather than for a fixed time: on a loaded machine 120 ms held one period.
  const deadline = Date.now() + 10_000;
  while ((reads < 4 || controller.failedPeriods < 2) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  controller.stop();
  assert.ok(reads >= 4, `the timer kept running: ${reads} reads`);
  assert.ok(controller.failedPeriods >= 2, `failed periods counted: ${controller.failedPeriods}`);
});
