// Test support: the metrics table of docs/operations.md against what /metrics exposes, so that
// the two cannot drift: every metric in one is in the other, with the same type and labels.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface MetricShape {
  type: string;
  /** Label names, sorted (for a histogram, without `le`). */
  labels: string[];
  unit?: string;
  /** Exposed: how many samples it has (0: declared, no series observed yet). */
  samples?: number;
}

export const OPERATIONS_MD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'operations.md');

/** The rows `| \`xnetmon_...\` | type | unit | labels | meaning |` of docs/operations.md. */
export function documentedMetrics(text = readFileSync(OPERATIONS_MD, 'utf8')): Map<string, MetricShape> {
  const out = new Map<string, MetricShape>();
  for (const line of text.split('\n')) {
    const cells = /^\| `(xnetmon_\w+)` \|/.test(line)
      ? line
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim())
      : undefined;
    if (!cells) continue;
    const [name, type, unit, labels] = cells;
    const labelNames = labels!
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean)
      .sort();
    out.set(name!.replace(/`/g, ''), { type: type!, unit: unit!, labels: labelNames });
  }
  return out;
}

/** Each metric of a Prometheus text exposition: its TYPE and the label names its samples carry. */
export function exposedMetrics(text: string): Map<string, MetricShape> {
  const out = new Map<string, MetricShape>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, { type: m[2]!, labels: [], samples: 0 });
  for (const m of text.matchAll(/^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? \S+/gm)) {
    const isPart = (name: string): boolean =>
      out.get(name)!.type === 'histogram' &&
      m[1]!.startsWith(name) &&
      /^_(bucket|sum|count)$/.test(m[1]!.slice(name.length));
    const family = [...out.keys()].find((name) => m[1] === name || isPart(name));
    if (!family) continue;
    const shape = out.get(family)!;
    const labels = [...(m[2] ?? '').matchAll(/(\w+)="/g)].map((l) => l[1]!).filter((l) => l !== 'le');
    shape.labels = [...new Set([...shape.labels, ...labels])].sort();
    shape.samples = (shape.samples ?? 0) + 1;
  }
  return out;
}

/**
 * What differs between the documented and the exposed metrics. A metric exposed without any
 * sample yet (a labelled series not observed) shows no labels: only its type is compared.
 */
export function metricDrift(documented: Map<string, MetricShape>, exposed: Map<string, MetricShape>): string[] {
  const problems: string[] = [];
  for (const [name, shape] of exposed) {
    if (!name.startsWith('xnetmon_')) continue;
    const doc = documented.get(name);
    if (!doc) {
      problems.push(`${name} is exposed but not in docs/operations.md`);
      continue;
    }
    if (doc.type !== shape.type) problems.push(`${name}: documented as ${doc.type}, exposed as ${shape.type}`);
    if (shape.samples && doc.labels.join(',') !== shape.labels.join(',')) {
      problems.push(`${name}: documented labels (${doc.labels.join(', ')}), exposed (${shape.labels.join(', ')})`);
    }
  }
  for (const name of documented.keys())
    if (!exposed.has(name)) problems.push(`${name} is in docs/operations.md but not exposed`);
  return problems;
}
