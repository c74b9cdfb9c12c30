// One conformance suite that every ControlLaw runs, then the simulator, its metrics, the comparison
// behind docs/control.md and the cost of one controller period.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { ValidationError } from '../../src/errors/index.js';
import {
  algorithm1Law,
  combineWithResidual,
  createControlLaw,
  createLawState,
  DEFAULT_LAW,
  shareLaw,
} from '../../src/control/law/index.js';
import {
  compareLaws,
  oscillation,
  reservationShortfall,
  settleTime,
  shareError,
  simulate,
  timeControllerPeriod,
} from '../../bench/laws/index.js';
import type { ControlLaw, NetworkTable, ResourceSample } from '../../src/control/law/index.js';

const R = 1000;

const laws: [string, () => ControlLaw][] = [
  ['algorithm1', () => algorithm1Law({ beta: 0.9, phiInitial: 0.1 })],
  ['share', () => shareLaw({ beta: 0.9 })],
];

const twoNetworks: NetworkTable = { count: 2, alpha: [0.5, 0.3], weight: [500, 500] };

function expectInvalid(action: () => void, path: string): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof ValidationError, String(error));
    assert.equal(error.code, 'ERR_INVALID');
    assert.equal(error.path, path);
    return true;
  });
}

for (const [name, makeLaw] of laws) {
  describe(`ControlLaw conformance: ${name}`, () => {
    it('returns probabilities in [0, 1] for any valid sample and state', () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.record({
              alpha: fc.double({ min: 0, max: 0.25, noNaN: true }),
              weight: fc.integer({ min: 1, max: 1000 }),
              previous: fc.double({ min: 0, max: 1, noNaN: true }),
              offered: fc.double({ min: 0, max: 2 * R, noNaN: true }),
              pass: fc.double({ min: 0, max: 1, noNaN: true }),
            }),
            { minLength: 1, maxLength: 4 },
          ),
          (networks) => {
            const law = makeLaw();
            const table = {
              count: networks.length,
              alpha: networks.map((n) => n.alpha),
              weight: networks.map((n) => n.weight),
            };
            const state = createLawState(networks.length);
            networks.forEach((network, slot) => {
              state.dropProbability[slot] = network.previous;
            });
            const offered = networks.map((n) => n.offered);
            const carried = networks.map((n) => n.offered * n.pass);
            law.step(table, { capacity: R, offered, carried }, state);
            for (let slot = 0; slot < networks.length; slot++) {
              assert.ok(state.dropProbability[slot] >= 0 && state.dropProbability[slot] <= 1);
            }
          },
        ),
        { numRuns: 500 },
      );
    });

    it('never punishes, from a fresh state, a network at or under its reservation', () => {
      const law = makeLaw();
      const state = createLawState(2);
      // Contention (U >= beta R): the common network is under its alpha R = 500, the opponent is not.
      law.step(twoNetworks, { capacity: R, offered: [500, 1500], carried: [400, 600] }, state);
      assert.equal(state.dropProbability[0], 0);
      assert.ok(state.dropProbability[1] > 0);
    });

    it('does not start punishing while there are idle resources', () => {
      const law = makeLaw();
      const state = createLawState(2);
      law.step(twoNetworks, { capacity: R, offered: [200, 600], carried: [200, 600] }, state);
      assert.deepEqual(Array.from(state.dropProbability), [0, 0]);
    });

    it('handles a network alone, all idle, and reservations summing to 1 (D = 0)', () => {
      const law = makeLaw();
      const alone = createLawState(1);
      law.step({ count: 1, alpha: [1], weight: [1] }, { capacity: R, offered: [R], carried: [R] }, alone);
      assert.equal(alone.dropProbability[0], 0);
      const idle = createLawState(2);
      law.step(twoNetworks, { capacity: R, offered: [0, 0], carried: [0, 0] }, idle);
      assert.deepEqual(Array.from(idle.dropProbability), [0, 0]);
      const full = createLawState(2);
      law.step(
        { count: 2, alpha: [0.5, 0.5], weight: [1000, 1] },
        { capacity: R, offered: [900, 300], carried: [700, 300] },
        full,
      );
      assert.equal(full.dropProbability[1], 0);
      assert.ok(full.dropProbability[0] > 0 && full.dropProbability[0] <= 1);
    });

    it('reads only `count` slots of longer arrays', () => {
      const law = makeLaw();
      const state = createLawState(4);
      const table = { count: 2, alpha: [0.5, 0.3, Number.NaN, 7], weight: [500, 500, 0, 0] };
      law.step(table, { capacity: R, offered: [600, 1500, Number.NaN, -1], carried: [300, 700, -1, -1] }, state);
      assert.ok(state.dropProbability[1] > 0);
    });

    const invalid: [string, NetworkTable, ResourceSample][] = [
      [
        'weight[1]',
        { count: 2, alpha: [0.5, 0.3], weight: [500, 0] },
        { capacity: R, offered: [1, 1], carried: [1, 1] },
      ],
      [
        'weight[0]',
        { count: 2, alpha: [0.5, 0.3], weight: [1001, 5] },
        { capacity: R, offered: [1, 1], carried: [1, 1] },
      ],
      [
        'weight[0]',
        { count: 2, alpha: [0.5, 0.3], weight: [2.5, 5] },
        { capacity: R, offered: [1, 1], carried: [1, 1] },
      ],
      ['alpha[0]', { count: 2, alpha: [1.5, 0], weight: [1, 1] }, { capacity: R, offered: [1, 1], carried: [1, 1] }],
      ['alpha[1]', { count: 2, alpha: [0.5, -0.1], weight: [1, 1] }, { capacity: R, offered: [1, 1], carried: [1, 1] }],
      [
        'alpha[1]',
        { count: 2, alpha: [0.5, Number.NaN], weight: [1, 1] },
        { capacity: R, offered: [1, 1], carried: [1, 1] },
      ],
      ['alpha', { count: 2, alpha: [0.7, 0.4], weight: [1, 1] }, { capacity: R, offered: [1, 1], carried: [1, 1] }],
      ['capacity', twoNetworks, { capacity: -1, offered: [1, 1], carried: [1, 1] }],
      ['offered[0]', twoNetworks, { capacity: R, offered: [Number.NaN, 1], carried: [1, 1] }],
      ['carried[1]', twoNetworks, { capacity: R, offered: [1, 1], carried: [1, -3] }],
      ['offered', twoNetworks, { capacity: R, offered: [1], carried: [1, 1] }],
    ];
    for (const [path, table, sample] of invalid) {
      it(`rejects a bad ${path} with a ValidationError naming it`, () => {
        expectInvalid(() => makeLaw().step(table, sample, createLawState(2)), path);
      });
    }

    it('rejects a state that is too small or holds a bad probability', () => {
      const sample = { capacity: R, offered: [1, 1], carried: [1, 1] };
      expectInvalid(() => makeLaw().step(twoNetworks, sample, createLawState(1)), 'state');
      const state = createLawState(2);
      state.dropProbability[1] = 1.5;
      expectInvalid(() => makeLaw().step(twoNetworks, sample, state), 'dropProbability[1]');
    });
  });
}

describe('law parameters', () => {
  it('rejects bad parameters naming them', () => {
    expectInvalid(() => algorithm1Law({ beta: 1.5, phiInitial: 0.1 }), 'beta');
    expectInvalid(() => algorithm1Law({ beta: 0.9, phiInitial: 0 }), 'phiInitial');
    expectInvalid(() => shareLaw({ beta: Number.NaN }), 'beta');
    expectInvalid(() => shareLaw({ beta: 0.9, correctionGain: 2 }), 'correctionGain');
    expectInvalid(() => shareLaw({ beta: 0.9, reservationMargin: 1 }), 'reservationMargin');
    expectInvalid(() => createLawState(-1), 'slots');
    expectInvalid(() => createControlLaw({ law: 'pid' as never }), 'law');
  });

  it('defaults to the share law', () => {
    assert.equal(DEFAULT_LAW, 'share');
    assert.equal(createControlLaw().name, 'share');
    assert.equal(createControlLaw({ law: 'algorithm1' }).name, 'algorithm1');
  });

  it('combines the residual vif punishment as an independent drop stage', () => {
    assert.ok(Math.abs(combineWithResidual(0, 0.001) - 0.001) < 1e-15);
    assert.ok(Math.abs(combineWithResidual(0.5, 0.1) - 0.55) < 1e-15);
    expectInvalid(() => combineWithResidual(0.5, 2), 'residualDropProbability');
  });
});

describe('simulator and metrics', () => {
  const contention = [
    { alpha: 0.5, weight: 500, offered: () => 0.6 * R },
    { alpha: 0.3, weight: 500, offered: () => 1.5 * R },
  ];

  it('models the host as an indiscriminate bottleneck when the sum of carried exceeds R', () => {
    const trace = simulate({ law: shareLaw({ beta: 0.9 }), networks: contention, capacity: R, periods: 3 });
    assert.equal(trace.hostOverloaded[0], true);
    assert.ok(Math.abs(trace.carried[0][0] - 600 / 2.1) < 1e-9);
    assert.ok(Math.abs(trace.carried[0][1] - 1500 / 2.1) < 1e-9);
    assert.equal(trace.hostOverloaded[1], false);
    assert.deepEqual(
      trace.target[1].map((units) => Math.round(units)),
      [550, 350],
    );
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const run = (seed: number) =>
      simulate({
        law: shareLaw({ beta: 0.9 }),
        networks: contention,
        capacity: R,
        periods: 20,
        noise: 0.05,
        seed,
      });
    assert.deepEqual(run(3).carried, run(3).carried);
    assert.notDeepEqual(run(3).carried, run(4).carried);
  });

  it('computes settle time, share error, oscillation and reservation shortfall', () => {
    const share = simulate({ law: shareLaw({ beta: 0.9 }), networks: contention, capacity: R, periods: 40 });
    assert.equal(settleTime(share), 1);
    assert.ok(shareError(share, { from: 1 }) < 1e-9);
    assert.deepEqual(oscillation(share, { from: 5 }).reversals, 0);
    assert.deepEqual(reservationShortfall(share, 0, { from: 1 }), { periods: 0, worstFraction: 1 });
    assert.equal(reservationShortfall(share, 0).periods, 1);

    const paper = simulate({
      law: algorithm1Law({ beta: 0.9, phiInitial: 0.1 }),
      networks: contention,
      capacity: R,
      periods: 40,
    });
    assert.equal(settleTime(paper), null);
    assert.ok(oscillation(paper, { from: 5 }).reversals > 0);
    assert.throws(() => shareError(paper, { from: 10, to: 50 }), ValidationError);
  });
});

describe('comparison behind docs/control.md', () => {
  const report = compareLaws();
  const scenario = (id: string) => {
    const found = report.scenarios.find((entry) => entry.id === id);
    assert.ok(found, id);
    return found;
  };

  it('confirms the issue: Algorithm 1 cycles about every 10 periods in scenario (a) and crowds out the common network', () => {
    const cycle = report.algorithm1Cycle;
    assert.ok(cycle.cycleLengths.length >= 5);
    for (const length of cycle.cycleLengths) assert.ok(length >= 9 && length <= 12, String(length));
    assert.ok(cycle.opponentBelowAlphaPeriods >= cycle.cycleLengths.length);
    assert.ok(cycle.commonBelowReservationPeriods > cycle.periods / 2);
    assert.ok(cycle.commonMeanShare < 0.5);
    assert.deepEqual(scenario('a').laws.algorithm1.settlePeriods, [null]);
  });

  it('the share law settles within 5 periods everywhere without noise and protects the common network', () => {
    for (const id of ['a', 'b', 'c', 'd', 'a+mismatch']) {
      const figures = scenario(id).laws.share;
      for (const settled of figures.settlePeriods) {
        assert.ok(settled !== null && settled <= (id === 'a+mismatch' ? 10 : 5), `${id}: ${String(settled)}`);
      }
    }
    // Only period 0 (before any control), or the step's first period, may push the common network under.
    assert.equal(scenario('a').laws.share.periodsBelowReservation, 1);
    assert.equal(scenario('b').laws.share.periodsBelowReservation, 1);
    const weighted = scenario('c').laws.share.meanCarriedShare;
    assert.ok(Math.abs((weighted[1] - 0.1) / (weighted[0] - 0.1) - 9) < 0.5);
  });

  it('is deterministic', () => {
    assert.deepEqual(compareLaws(), report);
  });
});

describe('cost of one controller period', () => {
  it('takes well under 5 ms for 1,000 networks x 10 resources', () => {
    for (const law of [shareLaw({ beta: 0.9 }), algorithm1Law({ beta: 0.9, phiInitial: 0.1 })]) {
      const timing = timeControllerPeriod(law, 1000, 10, 50);
      assert.ok(timing.medianMs < 5, `${law.name}: ${timing.medianMs} ms`);
    }
  });
});
