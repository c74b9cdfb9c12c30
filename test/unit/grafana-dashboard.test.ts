// docs/grafana-dashboard.json (Grafana itself is not here): it parses, every expression is valid
// PromQL (promtool check rules parses it), names only metrics /metrics serves, and reads each
// counter through rate() or increase(), never as a raw value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { Metrics } from '../../src/control/metrics.js';
import { REASONS, PATHS } from '../../src/loader/index.js';

const DASHBOARD = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'grafana-dashboard.json');

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
}

function expressions(): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));
}

/** Every metric /metrics serves, with its TYPE, from a Metrics fed with every kind of value. */
async function servedTypes(): Promise<Map<string, string>> {
  const metrics = new Metrics();
  const zero = <K extends string>(keys: readonly K[]) =>
    Object.fromEntries(keys.map((k) => [k, 0n])) as Record<K, bigint>;
  metrics.observeCounters(
    [
      {
        netId: 1,
        verdicts: zero(REASONS),
        pathPackets: zero(PATHS),
        pathBytes: zero(PATHS),
        cpuOffered: 0n,
        cpuCarried: 0n,
        linkOffered: [0n],
        linkCarried: [0n],
      },
    ],
    new Map([[1, 'blue']]),
    [{ name: 'ext0', slot: 0 }],
  );
  metrics.observePeriod(
    {
      period: 1,
      at: 0,
      durationMs: 1,
      resources: [
        {
          resource: 'cpu',
          capacity: 1,
          total: 0,
          networks: [{ netId: 1, name: 'blue', reserved: 0, offered: 0, carried: 0, target: 0, dropProbability: 0 }],
        },
        { resource: 'link:ext0', capacity: 1, total: 0, networks: [] },
        { resource: 'fib', capacity: 1, total: 0, networks: [] },
      ],
    },
    100,
  );
  const use = { used: 0, quota: 0, rejections: 0 };
  metrics.observeQuotas('blue', {
    routes4: use,
    routes6: use,
    nexthops: use,
    neighbours: use,
    filterRules: use,
    mapWriteFailures: 0,
  } as never);
  metrics.observeControllerFailures({ period: 0 });
  metrics.observeRoutes('blue', 0);
  metrics.observeSessions(0);
  const types = new Map<string, string>();
  for (const m of (await metrics.text()).matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    types.set(m[1], m[2]);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) types.set(m[1] + s, 'histogram-series');
  }
  return types;
}

test('the dashboard parses and has expressions', () => {
  assert.ok(expressions().length >= 8);
});

test('every expression names only metrics that /metrics serves', async () => {
  const types = await servedTypes();
  for (const { panel, expr } of expressions()) {
    const names = [...expr.matchAll(/\bxnetmon_[a-z0-9_]+/g)].map((m) => m[0]);
    assert.ok(names.length > 0, `${panel}: ${expr} names a metric`);
    for (const name of names) assert.ok(types.has(name), `${panel}: ${name} is not served (${expr})`);
  }
});

test('counters and histogram buckets are read through rate() or increase()', async () => {
  const types = await servedTypes();
  for (const { panel, expr } of expressions()) {
    for (const m of expr.matchAll(/\bxnetmon_[a-z0-9_]+/g)) {
      const type = types.get(m[0]);
      if (type !== 'counter' && !m[0].endsWith('_bucket')) continue;
      assert.match(expr.slice(0, m.index), /(rate|increase)\(\s*$/, `${panel}: ${m[0]} outside rate() in ${expr}`);
    }
  }
});

test('every expression is valid PromQL (promtool check rules)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xnm-dashboard-'));
  try {
    // Grafana's $__rate_interval is no PromQL: a fixed range stands in for it.
    const rules = expressions().map(
      ({ expr }, i) =>
        `      - record: xnetmon:dashboard_${i}\n        expr: ${JSON.stringify(expr.replaceAll('$__rate_interval', '1m'))}`,
    );
    writeFileSync(join(dir, 'rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`);
    const check = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' });
    assert.equal(check.error, undefined, `promtool runs: ${check.error?.message}`);
    assert.equal(check.status, 0, `${check.stdout}${check.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
