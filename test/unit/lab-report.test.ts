// The lab report's charts: axis ticks a reader counts in (1, 2, 5 x 10^k), a reference line
// for the configured R, and data above the top tick never drawn off the chart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { niceStep, niceTicks, lineChart } from '../../src/lab/report.js';

const isNice = (step: number): boolean => {
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-12);
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9);
};

test('ticks of the charts that had 3.22, 6.44, 0.365 and 0.73', () => {
  assert.deepEqual(niceTicks(0, 16.1, 6), [0, 5, 10, 15, 20]);
  assert.deepEqual(niceTicks(0, 1.46), [0, 0.5, 1, 1.5]);
  assert.deepEqual(niceTicks(0, 0.73), [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 0.3), [0, 0.1, 0.2, 0.3]);
  assert.equal(niceStep(0, 0), 1, 'an empty range still has a step');
});

test('any range: a 1-2-5 step, ticks covering it, at most the intervals asked for', () => {
  // Charts' ranges: a span under a ten-millionth of the values would be below the labels' 12 digits.
  fc.assert(
    fc.property(
      fc.double({ min: -1e4, max: 1e4, noNaN: true }),
      fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
      fc.integer({ min: 2, max: 10 }),
      (min, span, intervals) => {
        const max = min + span;
        const step = niceStep(min, max, intervals);
        const ticks = niceTicks(min, max, intervals);
        assert.ok(isNice(step), `step ${step}`);
        assert.ok(
          ticks[0] <= min + step * 1e-6 && ticks[ticks.length - 1] >= max - step * 1e-6,
          `${ticks} covers ${min}..${max}`,
        );
        assert.ok(ticks.length - 1 <= intervals + 1, `${ticks.length - 1} intervals for ${intervals} asked`);
      },
    ),
  );
});

test('the chart prints its nice ticks and the reference line, and keeps every point inside', () => {
  const svg = lineChart(
    'CPU used',
    'time (s)',
    'share of configured R',
    [
      {
        name: 'blue',
        points: [
          [0, 0.2],
          [8.05, 1.14],
          [16.1, 0.9],
        ],
      },
    ],
    { references: [{ y: 1, label: 'configured R' }] },
  );
  const labels = [...svg.matchAll(/class="tick-y"[^>]*>([^<]+)</g)].map((m) => m[1]);
  assert.deepEqual(labels, ['0', '0.5', '1', '1.5']);
  assert.match(svg, /configured R/);
  const ys = [...svg.matchAll(/points="([^"]+)"/g)].flatMap((m) => m[1].split(' ').map((p) => Number(p.split(',')[1])));
  assert.ok(
    ys.every((y) => y >= 30 && y <= 260),
    `inside the plot: ${ys}`,
  );
});
