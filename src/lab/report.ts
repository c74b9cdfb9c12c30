// Lab reports: small self-contained SVG line charts (no plotting library), and the lab demo's
// report page, whose summary figures are computed from the very points its charts draw.
export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#ff7f0e', '#9467bd', '#8c564b'];

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The step of at most `maxIntervals` intervals over [min, max] that a reader counts in:
 * 1, 2 or 5 times a power of ten (0.1, 0.2, 0.5, 1, 2, 5, 10, ...).
 */
export function niceStep(min: number, max: number, maxIntervals = 5): number {
  const range = max - min;
  if (!(range > 0) || !Number.isFinite(range)) return 1;
  const raw = range / Math.max(1, maxIntervals);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * power;
  return step;
}

/** Ticks on multiples of niceStep() from at or below `min` to at or above `max`. */
export function niceTicks(min: number, max: number, maxIntervals = 5): number[] {
  const step = niceStep(min, max, maxIntervals);
  const first = Math.floor(min / step + 1e-9),
    last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  // toPrecision drops the float noise of i * step (0.30000000000000004).
  for (let i = first; i <= Math.max(last, first + 1); i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

export interface ChartOptions {
  /** The chart's id on the page: the summary cells that sum it up name it (data-chart). */
  id?: string;
  /** The y axis reaches at least this (e.g. 1 for a probability). */
  yMax?: number;
  /** Vertical dashed lines at events. */
  marks?: { x: number; label: string }[];
  /** Horizontal reference lines, e.g. y = 1 for the configured R on a share of R. */
  references?: { y: number; label: string }[];
}

export function lineChart(
  title: string,
  xLabel: string,
  yLabel: string,
  series: readonly Series[],
  options: ChartOptions = {},
): string {
  const width = 720,
    height = 300,
    left = 60,
    right = 150,
    top = 30,
    bottom = 40;
  const all = series.flatMap((s) => s.points);
  const xTicks = niceTicks(Math.min(...all.map((p) => p[0]), 0), Math.max(...all.map((p) => p[0]), 1e-9), 6);
  const xMin = xTicks[0],
    xMax = xTicks[xTicks.length - 1];
  const dataMax = Math.max(...all.map((p) => p[1]), ...(options.references ?? []).map((r) => r.y), 1e-9);
  const yTicks = niceTicks(0, Math.max(dataMax, options.yMax ?? 0), 5);
  const yMax = yTicks[yTicks.length - 1];
  const sx = (x: number): number => left + ((x - xMin) / (xMax - xMin || 1)) * (width - left - right);
  const sy = (y: number): number => height - bottom - (y / yMax) * (height - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg"${options.id ? ` id="${escapeHtml(options.id)}"` : ''} width="${width}" height="${height}" ` +
      'font-family="sans-serif" font-size="11">',
    `<text x="${(left + width - right) / 2}" y="18" font-size="13" text-anchor="middle">${escapeHtml(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#333"/>`,
    `<text x="${(width - right) / 2}" y="${height - 8}">${escapeHtml(xLabel)}</text>`,
    `<text x="12" y="${top + (height - top - bottom) / 2}" transform="rotate(-90 12 ${top + (height - top - bottom) / 2})">${escapeHtml(yLabel)}</text>`,
  ];
  for (const y of yTicks) {
    parts.push(`<text class="tick-y" x="${left - 5}" y="${sy(y) + 4}" text-anchor="end">${y}</text>`);
    parts.push(`<line x1="${left}" y1="${sy(y)}" x2="${width - right}" y2="${sy(y)}" stroke="#eee"/>`);
  }
  for (const x of xTicks) {
    parts.push(`<text class="tick-x" x="${sx(x)}" y="${height - bottom + 14}" text-anchor="middle">${x}</text>`);
  }
  for (const ref of options.references ?? []) {
    parts.push(
      `<line x1="${left}" y1="${sy(ref.y)}" x2="${width - right}" y2="${sy(ref.y)}" stroke="#555" stroke-dasharray="6 3"/>`,
    );
    // In the right margin, beside the line's end: over the plot it would sit on the data.
    parts.push(`<text x="${width - right + 6}" y="${sy(ref.y) + 4}" fill="#555">${escapeHtml(ref.label)}</text>`);
  }
  for (const mark of options.marks ?? []) {
    parts.push(
      `<line x1="${sx(mark.x)}" y1="${top}" x2="${sx(mark.x)}" y2="${height - bottom}" stroke="#999" stroke-dasharray="4 3"/>`,
    );
    parts.push(`<text x="${sx(mark.x) + 3}" y="${top + 10}" fill="#666">${escapeHtml(mark.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    // data-values: the plotted values themselves, so that a reader (or a test) can check the
    // summary against the chart without inverting the axes.
    if (s.points.length) {
      const values = s.points.map((p) => `${p[0]},${p[1]}`).join(' ');
      const drawn = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.8" data-series="${escapeHtml(s.name)}" data-values="${values}" points="${drawn}"/>`,
      );
    }
    parts.push(`<rect x="${width - right + 10}" y="${top + i * 16}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${width - right + 25}" y="${top + i * 16 + 9}">${escapeHtml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

// ---- the lab demo's report page ----

/** A resource of a network in one sample: the CPU's is charted. */
export interface ReportResource {
  resource: string;
  capacity: number;
  reserved: number;
  carried: number;
  dropProbability: number;
}

/** What the report needs of one `xnetmon status` sample (a structural subset of the CLI's view). */
export interface ReportSample {
  /** Seconds since the contention started. */
  t: number;
  status: { networks: readonly { name: string; resources: readonly ReportResource[] }[] };
}

export interface LabReportInput {
  prefix: string;
  createdAt: string;
  samples: readonly ReportSample[];
  /** When the operator retuned the reservations (s): the summary's two windows meet there. */
  tuneAt: number;
  tuneLabel: string;
  /** One paragraph of plain text: what happened. */
  story: string;
  /** Per network, totals at the end of the run. */
  totals: readonly { name: string; forwarded: number; drops: Readonly<Record<string, number>> }[];
  /** Plain-text lines printed under the summary. */
  notes: readonly string[];
}

export interface LabReport {
  /** index.html: the story, the summary table, the charts. */
  html: string;
  /** The summary as the console shows it. */
  text: string;
  /** The charts as files of their own (name -> SVG). */
  charts: Record<string, string>;
}

/** A summary window: samples with from <= t < to. */
interface Window {
  from: number;
  to: number;
}

/** The mean of the points of a series whose x lies in [from, to); 0 for none. */
export function windowMean(points: readonly (readonly [number, number])[], window: Window): number {
  const inside = points.filter(([t]) => t >= window.from && t < window.to);
  return inside.reduce((a, [, v]) => a + v, 0) / Math.max(1, inside.length);
}

const DIGITS = 2;

/** A summary figure: the mean of a series' points over a window, as printed. */
const figure = (series: Series, window: Window): string => windowMean(series.points, window).toFixed(DIGITS);

/**
 * The demo's report. Each summary figure is the mean of the points its chart draws over one of
 * two windows (before and after the retuning), so the page cannot say one thing and draw another;
 * each figure's cell names its chart, series and window (data-*), for a reader's tools to check.
 */
export function labReport(input: LabReportInput): LabReport {
  const { samples, tuneAt } = input;
  const endAt = samples.length ? samples[samples.length - 1]!.t : tuneAt;
  // The second window includes the last sample: to is just past it.
  const windows: Window[] = [
    { from: 0, to: tuneAt },
    { from: tuneAt, to: endAt + 1e-6 },
  ];
  const names = samples[0]?.status.networks.map((n) => n.name) ?? input.totals.map((n) => n.name);
  const cpu = (i: number, s: ReportSample) => s.status.networks[i]?.resources.find((r) => r.resource === 'cpu');
  const series = (value: (r: NonNullable<ReturnType<typeof cpu>>) => number): Series[] =>
    names.map((name, i) => ({
      name,
      points: samples.map((s) => {
        const r = cpu(i, s);
        return [s.t, r ? value(r) : 0] as const;
      }),
    }));
  const reserved = series((r) => (r.capacity ? r.reserved / r.capacity : 0));
  const used = series((r) => (r.capacity ? r.carried / r.capacity : 0));
  const probability = series((r) => r.dropProbability);
  const marks = [{ x: tuneAt, label: input.tuneLabel }];
  // R is the configured cpu_capacity, set below what this machine's CPU does so that the demo
  // has contention: the real CPU can carry more than R, so shares above 1 are real, not a bug.
  const charts: Record<string, string> = {
    'cpu-usage.svg': lineChart(
      'CPU used per network (share of the configured R)',
      'time (s)',
      'share of configured R',
      used,
      { id: 'cpu-usage', marks, references: [{ y: 1, label: 'configured R' }] },
    ),
    'drop-probability.svg': lineChart('CPU drop probability per network', 'time (s)', 'drop probability', probability, {
      id: 'drop-probability',
      yMax: 1,
      marks,
    }),
  };
  const columns: { head: string; chart?: string; data: Series[] }[] = [
    { head: 'reserved CPU', data: reserved },
    { head: 'CPU used', chart: 'cpu-usage', data: used },
    { head: 'drop p', chart: 'drop-probability', data: probability },
  ];
  const span = (w: Window): string => `${w.from.toFixed(1)}-${Math.min(w.to, endAt).toFixed(1)} s`;
  const caption =
    `means over the charted samples, ${span(windows[0]!)} -> ${span(windows[1]!)}; ` +
    'CPU as a share of the configured R (R is set below what this machine can do, so that the demo has contention: ' +
    'above 1, the host carried more than R); forwarded and drops: totals at the end';
  const dropsOf = (name: string): string =>
    Object.entries(input.totals.find((t) => t.name === name)?.drops ?? {})
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k.replace('drop_', '')}=${v}`)
      .join(' ') || '-';
  const forwardedOf = (name: string): number => input.totals.find((t) => t.name === name)?.forwarded ?? 0;

  const textRows = names.map((name, i) =>
    [
      name.padEnd(7),
      ...columns.map((c) =>
        windows
          .map((w) => figure(c.data[i]!, w))
          .join(' -> ')
          .padStart(12),
      ),
      String(forwardedOf(name)).padStart(10),
      ` ${dropsOf(name)}`,
    ].join(' '),
  );
  const head = [
    'network'.padEnd(7),
    ...columns.map((c) => c.head.padStart(12)),
    'forwarded'.padStart(10),
    ' drops by reason',
  ];
  const text = [caption, head.join(' '), ...textRows, ...input.notes].join('\n');

  const cell = (c: (typeof columns)[number], i: number, w: Window): string => {
    const data = c.chart
      ? ` data-chart="${c.chart}" data-series="${escapeHtml(names[i]!)}" data-from="${w.from}" data-to="${w.to}" data-digits="${DIGITS}"`
      : '';
    return `<td class="num"${data}>${figure(c.data[i]!, w)}</td>`;
  };
  const htmlRows = names.map(
    (name, i) =>
      `<tr><th>${escapeHtml(name)}</th>` +
      `${columns.map((c) => windows.map((w) => cell(c, i, w)).join('')).join('')}` +
      `<td class="num">${forwardedOf(name)}</td><td>${escapeHtml(dropsOf(name))}</td></tr>`,
  );
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>XNetMon lab report</title>
<style>
body { font-family: sans-serif; margin: 24px; max-width: 760px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { padding: 3px 6px; border-bottom: 1px solid #ddd; text-align: left; }
thead th, td.num { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; font-size: 12px; color: #555; text-align: left; padding-top: 6px; }
svg { display: block; margin: 16px 0; }
</style></head><body>
<h1>XNetMon lab report</h1>
<p>Lab ${escapeHtml(input.prefix)}, ${escapeHtml(input.createdAt)}. ${escapeHtml(input.story)}</p>
<table id="summary">
<caption>${escapeHtml(caption)}</caption>
<thead><tr><th rowspan="2">network</th>${columns.map((c) => `<th colspan="2">${escapeHtml(c.head)}</th>`).join('')}
<th rowspan="2">forwarded</th><th rowspan="2">drops by reason</th></tr>
<tr>${columns.map(() => windows.map((w) => `<th>${span(w)}</th>`).join('')).join('')}</tr></thead>
<tbody>
${htmlRows.join('\n')}
</tbody></table>
${input.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join('\n')}
${charts['cpu-usage.svg']}
${charts['drop-probability.svg']}
</body></html>
`;
  return { html, text, charts };
}
