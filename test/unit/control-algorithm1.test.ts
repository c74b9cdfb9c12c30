// Algorithm 1 (Paper IV-A) as a pure function: the properties the paper states, the edge cases it
// leaves open, and input validation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { ValidationError, XnetmonError } from '../../src/errors/index.js';
import { algorithm1 } from '../../src/control/law/index.js';
import type { Algorithm1Input } from '../../src/control/law/index.js';

const R = 1000;

/** Two networks, alpha 0.5 and 0.3, so D = 0.2 R; the fields a test does not care about. */
function input(overrides: Partial<Algorithm1Input>): Algorithm1Input {
  return {
    phi: 0,
    weight: 500,
    alpha: 0.3,
    capacity: R,
    totalUsage: 0,
    usage: 0,
    idle: 0.2 * R,
    beta: 0.9,
    phiInitial: 0.1,
    ...overrides,
  };
}

/** Random valid inputs, consistent with the paper's definitions (U >= U_i, D = R (1 - sum alpha)). */
const validInput = fc
  .record({
    phi: fc.double({ min: 0, max: 1, noNaN: true }),
    weight: fc.integer({ min: 1, max: 1000 }),
    alpha: fc.double({ min: 0, max: 1, noNaN: true }),
    otherAlpha: fc.double({ min: 0, max: 1, noNaN: true }),
    capacity: fc.double({ min: 0, max: 1e9, noNaN: true }),
    usageShare: fc.double({ min: 0, max: 1.5, noNaN: true }),
    othersShare: fc.double({ min: 0, max: 1.5, noNaN: true }),
    beta: fc.double({ min: 0, max: 1, noNaN: true }),
    phiInitial: fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true }),
  })
  .map(({ phi, weight, alpha, otherAlpha, capacity, usageShare, othersShare, beta, phiInitial }) => {
    const others = otherAlpha * (1 - alpha);
    const usage = usageShare * capacity;
    return {
      phi,
      weight,
      alpha,
      capacity,
      usage,
      beta,
      phiInitial,
      totalUsage: usage + othersShare * capacity,
      idle: Math.max(0, capacity * (1 - alpha - others)),
    } satisfies Algorithm1Input;
  });

describe('algorithm1: properties stated in Paper IV-A', () => {
  it('never punishes a network at or under its reservation that was not punished', () => {
    fc.assert(
      fc.property(validInput, fc.double({ min: 0, max: 1, noNaN: true }), (generated, fraction) => {
        const usage = fraction * generated.alpha * generated.capacity;
        assert.equal(algorithm1({ ...generated, phi: 0, usage, totalUsage: Math.max(generated.totalUsage, usage) }), 0);
      }),
    );
  });

  it('starts punishing at Phi_initial once over its reservation with no idle resources', () => {
    assert.equal(algorithm1(input({ usage: 700, totalUsage: 950 })), 0.1);
  });

  it('only decreases punishment while there are idle resources (U < beta R), for Upsilon <= 2', () => {
    fc.assert(
      fc.property(validInput, (generated) => {
        fc.pre(generated.totalUsage < generated.beta * generated.capacity);
        const reserved = generated.alpha * generated.capacity;
        // Upsilon > 2 is the printed formula's oddity, tested on its own below.
        fc.pre(generated.usage <= reserved || generated.usage - reserved <= 2 * generated.idle);
        assert.ok(algorithm1(generated) <= generated.phi);
      }),
    );
  });

  it('raises punishment in the "reduce" branch when Upsilon > 2 (oddity of the printed formula)', () => {
    // alpha 0.3, D = 0.2 R, U_i = 0.8 R: Upsilon = 2.5; U = 0.85 R < beta R = 0.9 R.
    const next = algorithm1(input({ phi: 0.5, usage: 800, totalUsage: 850 }));
    const expected = 0.5 - ((1 + (1 - 2.5)) * (1 - 1 / 500) * 0.5) / (3 + 1 / 500);
    assert.ok(next > 0.5);
    assert.ok(Math.abs(next - expected) < 1e-12);
  });

  it('grows punishment while contention lasts (U >= beta R and U_i > alpha R)', () => {
    fc.assert(
      fc.property(validInput, (generated) => {
        const reserved = generated.alpha * generated.capacity;
        fc.pre(generated.usage > reserved && generated.totalUsage >= generated.beta * generated.capacity);
        fc.pre(generated.phi > 1e-12 && generated.phi < 1); // a subnormal Phi cannot visibly grow
        const next = algorithm1(generated);
        assert.ok(next > generated.phi || next === 1, `${next} after ${generated.phi}`);
      }),
    );
    let phi = 0;
    const history: number[] = [];
    for (let period = 0; period < 8; period++) {
      phi = algorithm1(input({ phi, usage: 700, totalUsage: 1000 }));
      history.push(phi);
    }
    for (let index = 1; index < history.length; index++) assert.ok(history[index] >= history[index - 1]);
    assert.equal(history[history.length - 1], 1);
  });

  it('decays without resetting at once: "fast reduce" is Phi / W', () => {
    for (const weight of [2, 10, 500, 1000]) {
      const next = algorithm1(input({ phi: 0.6, weight, usage: 100, totalUsage: 950 }));
      assert.ok(next > 0, `W ${weight} reset to 0`);
      assert.ok(Math.abs(next - 0.6 / weight) < 1e-15);
    }
  });

  it('keeps the punishment of a W = 1 network for ever (oddity: both reduce factors are 0)', () => {
    assert.equal(algorithm1(input({ phi: 0.6, weight: 1, usage: 100, totalUsage: 950 })), 0.6);
    assert.equal(algorithm1(input({ phi: 0.6, weight: 1, usage: 400, totalUsage: 500 })), 0.6);
  });

  it('with W = 1000 the fast reduce is almost a reset, and increases are nearly weight-free', () => {
    assert.ok(Math.abs(algorithm1(input({ phi: 0.5, weight: 1000, usage: 100 })) - 0.0005) < 1e-15);
    const heavy = algorithm1(input({ phi: 0.2, weight: 1000, usage: 700, totalUsage: 1000 }));
    const light = algorithm1(input({ phi: 0.2, weight: 100, usage: 700, totalUsage: 1000 }));
    assert.ok(Math.abs(heavy - light) < 0.002);
  });

  it('always returns a probability in [0, 1]', () => {
    fc.assert(
      fc.property(validInput, (generated) => {
        const next = algorithm1(generated);
        assert.ok(next >= 0 && next <= 1, String(next));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('algorithm1: edge cases', () => {
  it('D(t) = 0 takes Upsilon = 1 (documented choice) instead of dividing by zero', () => {
    const weight = 500;
    const increased = algorithm1(input({ phi: 0.2, idle: 0, usage: 400, totalUsage: 1000, weight }));
    assert.ok(Math.abs(increased - (0.2 + (2 * (1 + 1 / weight) * 0.2) / (3 + 1 / weight))) < 1e-12);
    const reduced = algorithm1(input({ phi: 0.2, idle: 0, usage: 400, totalUsage: 500, weight }));
    assert.ok(Math.abs(reduced - (0.2 - (1 * (1 - 1 / weight) * 0.2) / (3 + 1 / weight))) < 1e-12);
    assert.equal(algorithm1(input({ phi: 0, idle: 0, usage: 400, totalUsage: 1000 })), 0.1);
  });

  it('all networks idle: nothing is punished, an old punishment decays', () => {
    assert.equal(algorithm1(input({ phi: 0, usage: 0, totalUsage: 0 })), 0);
    assert.ok(Math.abs(algorithm1(input({ phi: 0.5, usage: 0, totalUsage: 0, weight: 10 })) - 0.05) < 1e-15);
  });

  it('one network alone with alpha = 1 is never punished for using the whole resource', () => {
    assert.equal(algorithm1(input({ alpha: 1, idle: 0, usage: R, totalUsage: R })), 0);
  });

  it('alpha = 0: any usage is over the reservation', () => {
    assert.equal(algorithm1(input({ alpha: 0, idle: R, usage: 1, totalUsage: 950 })), 0.1);
    assert.equal(algorithm1(input({ alpha: 0, idle: R, usage: 0, totalUsage: 950 })), 0);
  });

  it('capacity 0: any usage is over, D = 0, the critical level is reached', () => {
    assert.equal(algorithm1(input({ capacity: 0, idle: 0, usage: 1, totalUsage: 1 })), 0.1);
  });
});

describe('algorithm1: input validation', () => {
  const cases: [string, Partial<Algorithm1Input>][] = [
    ['weight', { weight: 0 }],
    ['weight', { weight: 1001 }],
    ['weight', { weight: 1.5 }],
    ['weight', { weight: Number.NaN }],
    ['alpha', { alpha: -0.1 }],
    ['alpha', { alpha: 1.01 }],
    ['alpha', { alpha: Number.NaN }],
    ['phi', { phi: 1.5 }],
    ['phi', { phi: -0 - 1e-9 }],
    ['capacity', { capacity: -1 }],
    ['capacity', { capacity: Number.POSITIVE_INFINITY }],
    ['totalUsage', { totalUsage: Number.NaN }],
    ['usage', { usage: -5 }],
    ['idle', { idle: -1 }],
    ['beta', { beta: 1.2 }],
    ['phiInitial', { phiInitial: 0 }],
    ['phiInitial', { phiInitial: 2 }],
  ];
  for (const [field, overrides] of cases) {
    it(`rejects ${field} = ${String(Object.values(overrides)[0])} naming the field`, () => {
      assert.throws(
        () => algorithm1(input(overrides)),
        (error: unknown) => {
          assert.ok(error instanceof ValidationError);
          assert.ok(error instanceof XnetmonError);
          assert.equal(error.code, 'ERR_INVALID');
          assert.equal(error.path, field);
          assert.match(error.message, new RegExp(`^${field}: `));
          return true;
        },
      );
    });
  }

  it('accepts the extremes W = 1, W = 1000, alpha = 0, alpha = 1', () => {
    for (const overrides of [{ weight: 1 }, { weight: 1000 }, { alpha: 0 }, { alpha: 1, idle: 0 }]) {
      const next = algorithm1(input({ ...overrides, phi: 0.3, usage: 700, totalUsage: 1000 }));
      assert.ok(next >= 0 && next <= 1);
    }
  });
});
