// The lab report read in a browser (issue 17): Debian's headless Chromium renders the page that
// the lab demo's report writer makes from a recorded run (test/fixtures/lab-report.json, the
// report.json of `xnetmon lab demo`). The screenshot shows a page with its charts drawn, not a
// blank one; and each summary figure, read from the DOM Chromium built, is the mean of its
// chart's points over the window its cell names, points the chart draws where its axes say.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labReport, windowMean, type LabReportInput } from '../../src/lab/index.js';
import { decodePng, countColour } from '../support/png.js';
import { margin } from '../support/timing.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'test', 'fixtures', 'lab-report.json');
let dir: string;
let page: string;
let input: LabReportInput;

/** Debian's chromium, headless, as root in a container: no sandbox, no GPU, nothing fetched. */
function chromium(args: readonly string[]): string {
  return execFileSync(
    'chromium',
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      `--user-data-dir=${join(dir, 'profile')}`,
      ...args,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: margin(60_000) },
  );
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'xnm-report-'));
  input = JSON.parse(readFileSync(FIXTURE, 'utf8')) as LabReportInput;
  const report = labReport(input);
  page = join(dir, 'index.html');
  writeFileSync(page, report.html);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An element's attributes, and its text under the key `text`. */
const attributes = (tag: string, text = ''): Record<string, string> => ({
  ...Object.fromEntries([...tag.matchAll(/([\w-]+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!])),
  text,
});

/** The <svg> element with this id, as Chromium serialised it. */
function svgOf(dom: string, id: string): string {
  const m = new RegExp(`<svg[^>]*\\bid="${id}"[\\s\\S]*?</svg>`).exec(dom);
  assert.ok(m, `chart ${id} is in the page`);
  return m[0];
}

/** value -> pixel along one axis, from two of its tick labels (label text and position). */
function axis(ticks: { value: number; pixel: number }[]): (v: number) => number {
  assert.ok(ticks.length >= 2, 'an axis has at least two ticks');
  const [a, b] = [ticks[0]!, ticks[ticks.length - 1]!];
  return (v) => a.pixel + ((v - a.value) / (b.value - a.value)) * (b.pixel - a.pixel);
}

test("the page renders: a screenshot that is not blank, with every network's line drawn", () => {
  const shot = join(dir, 'report.png');
  chromium([`--screenshot=${shot}`, '--window-size=800,1300', `file://${page}`]);
  const image = decodePng(readFileSync(shot));
  assert.deepEqual([image.width, image.height], [800, 1300]);
  const white = countColour(image, '#ffffff', 8);
  const inked = image.width * image.height - white;
  assert.ok(
    inked > image.width * image.height * 0.02,
    `${inked} of ${image.width * image.height} pixels are not background`,
  );
  // Each series' colour (src/lab/report.ts COLORS) is on the screen: the lines were drawn.
  for (const [name, colour] of [
    ['blue', '#1f77b4'],
    ['green', '#2ca02c'],
    ['red', '#d62728'],
  ] as const) {
    assert.ok(countColour(image, colour, 40) > 200, `${name}'s lines (${colour}) are on the screenshot`);
  }
});

test("each summary figure is the mean of its chart's points over its window, and the chart draws those points", () => {
  const dom = chromium(['--dump-dom', `file://${page}`]);
  const cells = [...dom.matchAll(/<td[^>]*data-chart="[^"]*"[^>]*>([^<]*)<\/td>/g)].map((m) => attributes(m[0], m[1]));
  const charts = ['cpu-usage', 'drop-probability'];
  const networks = input.samples[0]!.status.networks.map((n) => n.name);
  assert.equal(cells.length, charts.length * networks.length * 2, 'two windows per network and chart');
  const windows = new Set(cells.map((c) => `${c['data-from']}-${c['data-to']}`));
  assert.equal(windows.size, 2, `the same two windows for every figure: ${[...windows]}`);
  assert.ok(
    cells.some((c) => Number(c['data-from']) === input.tuneAt),
    'the windows meet at the retuning',
  );

  for (const id of charts) {
    const svg = svgOf(dom, id);
    const texts = [...svg.matchAll(/<text([^>]*)>([^<]*)<\/text>/g)].map((m) => attributes(m[1]!, m[2]));
    const y = axis(
      texts.filter((t) => t.class === 'tick-y').map((t) => ({ value: Number(t.text), pixel: Number(t.y) - 4 })),
    );
    const x = axis(
      texts.filter((t) => t.class === 'tick-x').map((t) => ({ value: Number(t.text), pixel: Number(t.x) })),
    );
    const lines = [...svg.matchAll(/<polyline[^>]*>/g)].map((m) => attributes(m[0]));
    assert.deepEqual(
      lines.map((l) => l['data-series']),
      networks,
      `${id}: one line per network`,
    );
    for (const line of lines) {
      const values = line['data-values']!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
      const drawn = line.points!.split(' ').map((p) => p.split(',').map(Number));
      assert.equal(drawn.length, input.samples.length, `${id} ${line['data-series']}: every sample drawn`);
      values.forEach(([t, v], i) => {
        assert.ok(
          Math.abs(drawn[i]![0]! - x(t)) < 0.6 && Math.abs(drawn[i]![1]! - y(v)) < 0.6,
          `${id} ${line['data-series']}: point ${i} (${t}, ${v}) drawn at ${drawn[i]} where the axes put ${x(t).toFixed(1)},${y(v).toFixed(1)}`,
        );
      });
      for (const cell of cells.filter((c) => c['data-chart'] === id && c['data-series'] === line['data-series'])) {
        const mean = windowMean(values, { from: Number(cell['data-from']), to: Number(cell['data-to']) });
        const digits = Number(cell['data-digits']);
        assert.ok(
          Math.abs(Number(cell.text) - mean) <= 0.5 * 10 ** -digits + 1e-9,
          `${id} ${line['data-series']} ${cell['data-from']}-${cell['data-to']} s: the summary says ${cell.text}, the chart's points average ${mean}`,
        );
      }
    }
  }
});
