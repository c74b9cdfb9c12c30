// Plots for lab reports: small self-contained SVG line charts (no plotting library).
export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#ff7f0e', '#9467bd', '#8c564b'];

function escape(text: string): string {
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
  const first = Math.floor(min / step + 1e-9), last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  // toPrecision drops the float noise of i * step (0.30000000000000004).
  for (let i = first; i <= Math.max(last, first + 1); i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

export interface ChartOptions {
  /** The y axis reaches at least this (e.g. 1 for a probability). */
  yMax?: number;
  /** Vertical dashed lines at events. */
  marks?: { x: number; label: string }[];
  /** Horizontal reference lines, e.g. y = 1 for the configured R on a share of R. */
  references?: { y: number; label: string }[];
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: readonly Series[], options: ChartOptions = {}): string {
  const width = 720, height = 300, left = 60, right = 150, top = 30, bottom = 40;
  const all = series.flatMap((s) => s.points);
  const xTicks = niceTicks(Math.min(...all.map((p) => p[0]), 0), Math.max(...all.map((p) => p[0]), 1e-9), 6);
  const xMin = xTicks[0], xMax = xTicks[xTicks.length - 1];
  const dataMax = Math.max(...all.map((p) => p[1]), ...(options.references ?? []).map((r) => r.y), 1e-9);
  const yTicks = niceTicks(0, Math.max(dataMax, options.yMax ?? 0), 5);
  const yMax = yTicks[yTicks.length - 1];
  const sx = (x: number): number => left + ((x - xMin) / (xMax - xMin || 1)) * (width - left - right);
  const sy = (y: number): number => height - bottom - (y / yMax) * (height - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="${width / 2 - 60}" y="18" font-size="13">${escape(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#333"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#333"/>`,
    `<text x="${(width - right) / 2}" y="${height - 8}">${escape(xLabel)}</text>`,
    `<text x="12" y="${top + (height - top - bottom) / 2}" transform="rotate(-90 12 ${top + (height - top - bottom) / 2})">${escape(yLabel)}</text>`,
  ];
  for (const y of yTicks) {
    parts.push(`<text x="${left - 5}" y="${sy(y) + 4}" text-anchor="end">${y}</text>`);
    parts.push(`<line x1="${left}" y1="${sy(y)}" x2="${width - right}" y2="${sy(y)}" stroke="#eee"/>`);
  }
  for (const x of xTicks) {
    parts.push(`<text x="${sx(x)}" y="${height - bottom + 14}" text-anchor="middle">${x}</text>`);
  }
  for (const ref of options.references ?? []) {
    parts.push(`<line x1="${left}" y1="${sy(ref.y)}" x2="${width - right}" y2="${sy(ref.y)}" stroke="#555" stroke-dasharray="6 3"/>`);
    parts.push(`<text x="${left + 4}" y="${sy(ref.y) - 4}" fill="#555">${escape(ref.label)}</text>`);
  }
  for (const mark of options.marks ?? []) {
    parts.push(`<line x1="${sx(mark.x)}" y1="${top}" x2="${sx(mark.x)}" y2="${height - bottom}" stroke="#999" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${sx(mark.x) + 3}" y="${top + 10}" fill="#666">${escape(mark.label)}</text>`);
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    if (s.points.length) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.8" points="${s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ')}"/>`);
    parts.push(`<rect x="${width - right + 10}" y="${top + i * 16}" width="10" height="10" fill="${color}"/>`);
    parts.push(`<text x="${width - right + 25}" y="${top + i * 16 + 9}">${escape(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
