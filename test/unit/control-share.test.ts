// The weighted max-min target and the share law: the paper's sharing policy, the guards kept from
// Algorithm 1, and settling in the closed-loop simulator.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { createLawState, shareLaw, weightedMaxMinTargets } from '../../src/control/law/index.js';
import { settleTime, simulate } from '../../bench/laws/index.js';
import type { NetworkTable } from '../../src/control/law/index.js';

const R = 1000;
const EPSILON = 1e-9;

interface RandomCase {
  readonly table: NetworkTable;
  readonly offered: number[];
  readonly capacity: number;
  readonly beta: number;
}

/** Random policies (sum of alphas <= 1), weights and offered loads from 0 to 2 R per network. */
const randomCase: fc.Arbitrary<RandomCase> = fc
  .integer({ min: 1, max: 8 })
  .chain((count) =>
    fc.record({
      rawAlpha: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: count, maxLength: count }),
      reservedTotal: fc.double({ min: 0, max: 1, noNaN: true }),
      weight: fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: count, maxLength: count }),
      offeredShare: fc.array(fc.oneof(fc.double({ min: 0, max: 2, noNaN: true }), fc.constant(0)), {
        minLength: count,
        maxLength: count,
      }),
      capacity: fc.double({ min: 1, max: 1e6, noNaN: true }),
      beta: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
  )
  .map(({ rawAlpha, reservedTotal, weight, offeredShare, capacity, beta }) => {
    const rawSum = rawAlpha.reduce((sum, value) => sum + value, 0);
    const alpha = rawAlpha.map((value) => (rawSum > 0 ? (value / rawSum) * reservedTotal : 0));
    return {
      table: { count: alpha.length, alpha, weight },
      offered: offeredShare.map((share) => share * capacity),
      capacity,
      beta,
    };
  });

/** The policy written the obvious way (sort by level, serve in order), to check the quickselect. */
function referenceTargets({ table, offered, capacity, beta }: RandomCase): number[] {
  const base = offered.map((demand, slot) => Math.min(demand, table.alpha[slot] * capacity));
  const totalOffered = offered.reduce((sum, value) => sum + value, 0);
  if (totalOffered < beta * capacity) return [...offered];
  const baseTotal = base.reduce((sum, value) => sum + value, 0);
  let pool = Math.max(beta * capacity, baseTotal) - baseTotal;
  const targets = [...base];
  const wanting = offered.map((_, slot) => slot).filter((slot) => offered[slot] > base[slot]);
  wanting.sort(
    (left, right) =>
      (offered[left] - base[left]) / table.weight[left] - (offered[right] - base[right]) / table.weight[right],
  );
  let weightLeft = wanting.reduce((sum, slot) => sum + table.weight[slot], 0);
  for (let index = 0; index < wanting.length; index++) {
    const slot = wanting[index];
    const level = pool / weightLeft;
    const extra = offered[slot] - base[slot];
    if (extra <= level * table.weight[slot]) {
      targets[slot] = offered[slot];
      pool -= extra;
      weightLeft -= table.weight[slot];
    } else {
      for (const rest of wanting.slice(index)) targets[rest] += level * table.weight[rest];
      break;
    }
  }
  return targets;
}

describe('weighted max-min targets (Paper IV-A sharing policy)', () => {
  it('gives everyone what they offer under the critical level', () => {
    const targets = weightedMaxMinTargets({ count: 2, alpha: [0.5, 0.3], weight: [500, 500] }, [300, 200], R, 0.9);
    assert.deepEqual(Array.from(targets), [300, 200]);
  });

  it('scenario (a): reservations first, then the rest of beta R split by weight', () => {
    const targets = weightedMaxMinTargets({ count: 2, alpha: [0.5, 0.3], weight: [500, 500] }, [600, 1500], R, 0.9);
    assert.ok(Math.abs(targets[0] - 550) < EPSILON);
    assert.ok(Math.abs(targets[1] - 350) < EPSILON);
  });

  it('splits the idle share 1:9 for W 100 vs 900 (within 1 %)', () => {
    const targets = weightedMaxMinTargets({ count: 2, alpha: [0.1, 0.1], weight: [100, 900] }, [R, R], R, 0.9);
    const idleShares = [targets[0] - 0.1 * R, targets[1] - 0.1 * R];
    assert.ok(Math.abs(idleShares[1] / idleShares[0] - 9) / 9 < 0.01, String(idleShares));
    assert.ok(Math.abs(targets[0] + targets[1] - 0.9 * R) < EPSILON);
  });

  it('redistributes what a network does not want (water-filling)', () => {
    // Pool = 0.9 R - 0.3 R = 600; equal weights would give 200 each, but slot 0 wants only 50 more.
    const targets = weightedMaxMinTargets(
      { count: 3, alpha: [0.1, 0.1, 0.1], weight: [10, 10, 10] },
      [150, 1000, 1000],
      R,
      0.9,
    );
    assert.ok(Math.abs(targets[0] - 150) < EPSILON);
    assert.ok(Math.abs(targets[1] - 375) < EPSILON);
    assert.ok(Math.abs(targets[2] - 375) < EPSILON);
  });

  it('keeps every reservation even when beta R is below the sum of them', () => {
    const targets = weightedMaxMinTargets({ count: 2, alpha: [0.6, 0.4], weight: [1, 1000] }, [R, R], R, 0.5);
    assert.deepEqual(Array.from(targets), [600, 400]);
  });

  it('holds the policy for random alphas, weights and loads, and matches the sorted reference', () => {
    fc.assert(
      fc.property(randomCase, (generated) => {
        const { table, offered, capacity, beta } = generated;
        const targets = weightedMaxMinTargets(table, offered, capacity, beta);
        const reference = referenceTargets(generated);
        const slack = 1e-9 * capacity * table.count;
        let total = 0;
        let baseTotal = 0;
        const totalOffered = offered.reduce((sum, value) => sum + value, 0);
        for (let slot = 0; slot < table.count; slot++) {
          const base = Math.min(offered[slot], table.alpha[slot] * capacity);
          assert.ok(targets[slot] >= base - slack, `slot ${slot} under min(offered, alpha R)`);
          assert.ok(targets[slot] <= offered[slot] + slack, `slot ${slot} above its offered load`);
          assert.ok(
            Math.abs(targets[slot] - reference[slot]) <= slack,
            `slot ${slot}: ${targets[slot]} vs ${reference[slot]}`,
          );
          total += targets[slot];
          baseTotal += base;
        }
        if (totalOffered >= beta * capacity) {
          assert.ok(total <= Math.max(beta * capacity, baseTotal) + slack, 'targets exceed max(beta R, sum base)');
          assert.ok(total <= capacity + slack);
        } else {
          assert.ok(Math.abs(total - totalOffered) <= slack);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('share law: guards kept from Algorithm 1', () => {
  it('for random states and samples: probabilities in [0, 1], no punishment under alpha R or under beta R', () => {
    fc.assert(
      fc.property(
        randomCase,
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 8, maxLength: 8 }),
        ({ table, offered, capacity, beta }, previous, passFraction) => {
          const law = shareLaw({ beta });
          const state = createLawState(table.count);
          for (let slot = 0; slot < table.count; slot++) state.dropProbability[slot] = previous[slot];
          const carried = offered.map((demand, slot) => demand * passFraction[slot]);
          law.step(table, { capacity, offered, carried }, state);
          const totalOffered = offered.reduce((sum, value) => sum + value, 0);
          for (let slot = 0; slot < table.count; slot++) {
            const probability = state.dropProbability[slot];
            assert.ok(probability >= 0 && probability <= 1);
            if (offered[slot] <= table.alpha[slot] * capacity) assert.equal(probability, 0);
            if (totalOffered < beta * capacity) assert.equal(probability, 0);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('from a fresh state never commands a pass under min(offered, alpha R) and aims exactly at the target', () => {
    fc.assert(
      fc.property(randomCase, ({ table, offered, capacity, beta }) => {
        const law = shareLaw({ beta });
        const state = createLawState(table.count);
        law.step(table, { capacity, offered, carried: offered }, state);
        for (let slot = 0; slot < table.count; slot++) {
          const commandedPass = offered[slot] * (1 - state.dropProbability[slot]);
          const guaranteed = Math.min(offered[slot], table.alpha[slot] * capacity);
          assert.ok(commandedPass >= guaranteed - 1e-9 * capacity);
          assert.ok(Math.abs(commandedPass - state.target[slot]) <= 1e-9 * capacity);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('the guards hold in every period of random closed-loop runs', () => {
    fc.assert(
      fc.property(randomCase, randomCase, fc.integer({ min: 1, max: 20 }), (first, second, stepAt) => {
        const { table, capacity, beta } = first;
        const networks = Array.from({ length: table.count }, (_, slot) => ({
          alpha: table.alpha[slot],
          weight: table.weight[slot],
          offered: (period: number) =>
            period < stepAt ? first.offered[slot] : second.offered[slot % second.offered.length],
        }));
        const trace = simulate({ law: shareLaw({ beta }), networks, capacity, periods: stepAt + 10 });
        for (let period = 1; period < trace.periods; period++) {
          if (trace.hostOverloaded[period]) continue; // the step's first period: the host, not the law
          const previousTotal = trace.offered[period - 1].reduce((sum, value) => sum + value, 0);
          for (let slot = 0; slot < table.count; slot++) {
            const demand = trace.offered[period][slot];
            const sameDemand = demand === trace.offered[period - 1][slot];
            if (sameDemand) {
              assert.ok(
                trace.carried[period][slot] >= Math.min(demand, table.alpha[slot] * capacity) - 1e-9 * capacity,
              );
            }
            if (previousTotal < beta * capacity) assert.equal(trace.dropProbability[period][slot], 0);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('share law: gentle band (output links)', () => {
  // A link of R = 1000 per period, alpha 0.5 each: blue floods with UDP, green is TCP near its half.
  const table: NetworkTable = { count: 2, alpha: [0.5, 0.5], weight: [500, 500] };
  const gentle = () => shareLaw({ beta: 0.9, gentleBelow: 1.5 });

  it('leaves a network up to 1.5x its reservation alone while the link would carry at most 1.1 R', () => {
    const law = gentle();
    const state = createLawState(2);
    for (const green of [540, 590, 510, 600]) {
      law.step(table, { capacity: R, offered: [1500, green], carried: [500, green] }, state);
      assert.equal(state.dropProbability[1], 0, `green offering ${green}`);
      assert.ok(state.dropProbability[0] > 0.6, 'blue, above the band, gets the full command');
    }
  });

  it('ramps punishment up from 0.1 %, doubling per period, when the band does not fit', () => {
    const law = gentle();
    const state = createLawState(2);
    const seen: number[] = [];
    for (let period = 0; period < 12; period++) {
      law.step(table, { capacity: R, offered: [700, 700], carried: [700, 700] }, state);
      seen.push(state.dropProbability[0]);
    }
    assert.ok(
      Math.abs(seen[0] - 0.001) < 1e-12 && Math.abs(seen[1] - 0.002) < 1e-12,
      `ramp ${seen.slice(0, 3).join(', ')}`,
    );
    const full = 1 - 500 / 700;
    assert.ok(
      Math.abs(seen[11] - full) < 1e-9,
      `the ramp ends at the feed-forward command ${full.toFixed(3)}, got ${seen[11]}`,
    );
  });

  it('keeps the plain law without the band (the default): the full command at once', () => {
    const state = createLawState(2);
    shareLaw({ beta: 0.9 }).step(table, { capacity: R, offered: [1500, 600], carried: [500, 600] }, state);
    assert.ok(Math.abs(state.dropProbability[1] - (1 - 500 / 600)) < 1e-9);
  });

  it('rejects a band under 1, a ramp start outside (0, 1], a factor under 1 and a slack outside [0, 1]', () => {
    assert.throws(() => shareLaw({ beta: 0.9, gentleBelow: 0.5 }), /gentleBelow/);
    assert.throws(() => shareLaw({ beta: 0.9, rampStart: 0 }), /rampStart/);
    assert.throws(() => shareLaw({ beta: 0.9, rampFactor: 0.5 }), /rampFactor/);
    assert.throws(() => shareLaw({ beta: 0.9, gentleSlack: 2 }), /gentleSlack/);
  });
});

describe('share law: settling (simulator)', () => {
  it('settles within 5 % of the target within 5 periods after random steps in demand', () => {
    fc.assert(
      fc.property(randomCase, randomCase, (first, second) => {
        const { table, capacity, beta } = first;
        const stepAt = 10;
        const networks = Array.from({ length: table.count }, (_, slot) => ({
          alpha: table.alpha[slot],
          weight: table.weight[slot],
          offered: (period: number) =>
            period < stepAt ? first.offered[slot] : second.offered[slot % second.offered.length],
        }));
        const trace = simulate({ law: shareLaw({ beta }), networks, capacity, periods: 30 });
        const settled = settleTime(trace, 0.05, { from: stepAt });
        assert.ok(settled !== null && settled <= 5, `settled after ${String(settled)} periods`);
        const initial = settleTime(trace, 0.05, { from: 0, to: stepAt, hold: 5 });
        assert.ok(initial !== null && initial <= 5);
      }),
      { numRuns: 300 },
    );
  });

  it('scenario (b): step up and down, settles in at most 5 periods each way', () => {
    const networks = [
      { alpha: 0.5, weight: 500, offered: () => 0.6 * R },
      { alpha: 0.3, weight: 500, offered: (period: number) => (period >= 30 && period < 80 ? 1.5 : 0.2) * R },
    ];
    const trace = simulate({ law: shareLaw({ beta: 0.9 }), networks, capacity: R, periods: 130 });
    const up = settleTime(trace, 0.05, { from: 30, to: 80 });
    const down = settleTime(trace, 0.05, { from: 80, to: 130 });
    assert.ok(up !== null && up <= 5, `up ${String(up)}`);
    assert.ok(down !== null && down <= 5, `down ${String(down)}`);
  });

  it('learns a data plane that drops less than told and still settles, without winding up', () => {
    const networks = [
      { alpha: 0.5, weight: 500, offered: () => 0.6 * R },
      { alpha: 0.3, weight: 500, offered: () => 1.5 * R },
    ];
    for (const dropGain of [0.8, 0.9, 1.1, 1.2]) {
      const trace = simulate({ law: shareLaw({ beta: 0.9 }), networks, capacity: R, periods: 60, dropGain });
      const settled = settleTime(trace, 0.05);
      assert.ok(settled !== null && settled <= 10, `gain ${dropGain}: ${String(settled)}`);
      // Once settled, the common network keeps at least its reservation.
      for (let period = settled; period < trace.periods; period++) assert.ok(trace.carried[period][0] >= 500 - 1e-6);
    }
  });

  it('a reservation margin keeps a near-reservation network unpunished, within m / (1 - m)', () => {
    const law = shareLaw({ beta: 0.9, reservationMargin: 0.2 });
    const state = createLawState(2);
    const table = { count: 2, alpha: [0.5, 0.3], weight: [500, 500] };
    law.step(table, { capacity: R, offered: [600, 1500], carried: [600, 1500] }, state);
    assert.equal(state.dropProbability[0], 0); // 600 <= 500 / 0.8
    // The opponent's reservation is protected the same way: it passes 300 / 0.8 = 375, not its 350.
    assert.ok(Math.abs(1500 * (1 - state.dropProbability[1]) - 375) < 1e-9);
  });
});
