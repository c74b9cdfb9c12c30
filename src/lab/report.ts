// Plots for lab reports: small self-contained SVG line charts (no plotting library).
export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
}

const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#ff7f0e', '#9467bd', '#8c564b'];

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lineChart(title: string, xLabel: string, yLabel: string, series: readonly Series[], options: { yMax?: number; marks?: { x: number; label: string }[] } = {}): string {
  const width = 720, height = 300, left = 60, right = 150, top = 30, bottom = 40;
  const all = series.flatMap((s) => s.points);
  const xMin = Math.min(...all.map((p) => p[0]), 0);
  const xMax = Math.max(...all.map((p) => p[0]), 1);
  const yMax = options.yMax ?? Math.max(...all.map((p) => p[1]), 1e-9) * 1.1;
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
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    parts.push(`<text x="${left - 5}" y="${sy(y) + 4}" text-anchor="end">${Number(y.toPrecision(3))}</text>`);
    parts.push(`<line x1="${left}" y1="${sy(y)}" x2="${width - right}" y2="${sy(y)}" stroke="#eee"/>`);
  }
  for (let i = 0; i <= 5; i++) {
    const x = xMin + ((xMax - xMin) * i) / 5;
    parts.push(`<text x="${sx(x)}" y="${height - bottom + 14}" text-anchor="middle">${Number(x.toPrecision(3))}</text>`);
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
