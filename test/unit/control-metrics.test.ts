// /metrics follows Prometheus' rules: `promtool check metrics` (Debian's prometheus package,
// installed by `make deps`) finds no problem in what the endpoint serves, the data plane's
// cumulative counters are counters with `_total` whose value is the data plane's own, and
// traffic of no network is there under network="(none)".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Metrics, NO_NETWORK_LABEL } from '../../src/control/metrics.js';
import { REASONS, PATHS } from '../../src/loader/index.js';
import type { NetCounters } from '../../src/dataplane/index.js';
import type { PeriodReport } from '../../src/control/controller.js';
import type { QuotaStatus } from '../../src/manager/index.js';
import { documentedMetrics, exposedMetrics, metricDrift } from '../support/metrics-doc.js';

function counters(netId: number, forward: bigint, linkOffered: bigint, linkCarried: bigint): NetCounters {
  const zero = <K extends string>(keys: readonly K[]) =>
    Object.fromEntries(keys.map((k) => [k, 0n])) as Record<K, bigint>;
  return {
    netId,
    verdicts: { ...zero(REASONS), forward, pass_host: 7n },
    pathPackets: { ...zero(PATHS), ext_ext: forward },
    pathBytes: { ...zero(PATHS), ext_ext: forward * 100n },
    cpuOffered: forward * 3n,
    cpuCarried: forward * 2n,
    linkOffered: [linkOffered, 0n],
    linkCarried: [linkCarried, 0n],
  };
}

const report: PeriodReport = {
  period: 12,
  at: 0,
  durationMs: 0.4,
  resources: [
    {
      resource: 'cpu',
      capacity: 1000,
      total: 900,
      networks: [
        { netId: 1, name: 'blue', reserved: 500, offered: 1200, carried: 900, target: 600, dropProbability: 0.25 },
      ],
    },
    {
      resource: 'link:ext0',
      capacity: 125_000,
      total: 0,
      networks: [{ netId: 1, name: 'blue', reserved: 62_500, offered: 0, carried: 0, target: 0, dropProbability: 0 }],
    },
    {
      resource: 'fib',
      capacity: 1000,
      total: 3,
      networks: [{ netId: 1, name: 'blue', reserved: 400, offered: 3, carried: 3, target: 3, dropProbability: 0 }],
    },
  ],
  // The measured CPU model's view (src/cpu), so that its gauges have series too.
  cpu: {
    source: 'measured',
    fallbackReason: null,
    unit: 'ns',
    costs: Object.fromEntries(PATHS.map((path, i) => [path, 100 + i])) as Record<(typeof PATHS)[number], number>,
    costPerKib: 3,
    capacityPerS: 1.5e9,
    cores: 2,
    share: 0.75,
    fit: { rSquared: 0.9, rmseNs: 1000, samples: 50, converged: true },
    fittedCosts: Object.fromEntries(PATHS.map((path, i) => [path, 110 + i])) as Record<(typeof PATHS)[number], number>,
    fittedCostPerKib: 3,
    measuredNsPerS: 2e8,
    unattributedNsPerS: 1e7,
    bpfRunTimeNsPerS: 5e7,
  },
};

const quotas = (rejections: number): QuotaStatus =>
  ({
    routes4: { used: 3, quota: 100, rejections },
    routes6: { used: 0, quota: 100, rejections: 0 },
    nexthops: { used: 1, quota: 10, rejections: 0 },
    neighbours: { used: 1, quota: 10, rejections: 0 },
    filterRules: { used: 0, quota: 32, rejections: 0 },
    mapWriteFailures: 0,
  }) as unknown as QuotaStatus;

async function scrape(metrics: Metrics): Promise<string> {
  const { port } = await metrics.listen('127.0.0.1:0');
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    return await res.text();
  } finally {
    await metrics.close();
  }
}

function fed(): Metrics {
  const names = new Map([[1, 'blue']]);
  const links = [{ name: 'ext0', slot: 0 }];
  let reads = 0;
  const metrics = new Metrics({
    // As the daemon does: each scrape reads the counters, which only grow.
    beforeScrape: () => {
      reads++;
      metrics.observeCounters(
        [counters(0, 0n, 0n, 0n), counters(1, 1000n * BigInt(reads), 90_000n, 80_000n)],
        names,
        links,
      );
    },
  });
  metrics.observePeriod(report, 100);
  metrics.observeQuotas('blue', quotas(2));
  metrics.observeControllerFailures({ period: 1 });
  metrics.observeRoutes('blue', 3);
  metrics.observeSessions(1);
  metrics.observeChannelRejections({ mac1: 0, message_rate: 3 });
  return metrics;
}

test('promtool check metrics finds no problem in /metrics', async () => {
  const text = await scrape(fed());
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(
    check.error,
    undefined,
    `promtool runs (make deps installs Debian's prometheus): ${check.error?.message}`,
  );
  assert.equal(check.status, 0, `promtool: ${check.stdout}${check.stderr}`);
  assert.equal(`${check.stdout}${check.stderr}`.trim(), '', 'no lint problem');
});

test('promtool would catch a broken rule (the check can fail)', () => {
  const bad =
    '# HELP xnetmon_packets Packets\n# TYPE xnetmon_packets gauge\nxnetmon_packets_total 1\n# HELP x_total y\n# TYPE x_total gauge\nx_total 1\n';
  const check = spawnSync('promtool', ['check', 'metrics'], { input: bad, encoding: 'utf8' });
  assert.notEqual(check.status, 0, 'a gauge named _total is refused');
});

test("the data plane counters are counters with _total, with the data plane's own values", async () => {
  const text = await scrape(fed());
  const type = (name: string) => new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(text)?.[1];
  assert.equal(type('xnetmon_packets_total'), 'counter');
  assert.equal(type('xnetmon_link_bytes_total'), 'counter');
  assert.equal(type('xnetmon_cpu_cost_units_total'), 'counter');
  assert.equal(type('xnetmon_quota_rejections_total'), 'counter');
  assert.equal(type('xnetmon_channel_rejections_total'), 'counter');
  assert.match(text, /^xnetmon_channel_rejections_total\{reason="message_rate"\} 3$/m);
  assert.match(text, /^xnetmon_channel_rejections_total\{reason="mac1"\} 0$/m, 'a reason not seen yet has its series');
  assert.equal(type('xnetmon_controller_period_seconds'), 'histogram');
  assert.equal(type('xnetmon_drop_probability'), 'gauge');
  assert.equal(type('xnetmon_build_info'), 'gauge');
  assert.match(text, /^xnetmon_packets_total\{network="blue",reason="forward"\} 1000$/m);
  assert.ok(
    text.includes(`\nxnetmon_packets_total{network="${NO_NETWORK_LABEL}",reason="pass_host"} 7\n`),
    'traffic of no network',
  );
  assert.match(text, /^xnetmon_link_bytes_total\{network="blue",link="ext0",stage="dropped"\} 10000$/m);
  assert.match(text, /^xnetmon_cpu_cost_units_total\{network="blue",stage="carried"\} 2000$/m);
  assert.match(text, /^xnetmon_reservation_ratio\{network="blue",resource="cpu"\} 0.5$/m);
  // R per period of 100 ms: 1000 cost units a period are 10,000 a second.
  assert.match(text, /^xnetmon_cpu_capacity_cost_units_per_second 10000$/m);
  assert.match(text, /^xnetmon_controller_period_seconds_count 1$/m);
  assert.match(text, /^xnetmon_build_info\{version="\d+\.\d+\.\d+",nodejs="[^"]+"\} 1$/m);
  // No old name is left: each broke a rule (a gauge for a count, a unit that changed with a label).
  for (const old of ['xnetmon_packets', 'xnetmon_usage', 'xnetmon_offered', 'xnetmon_reserved', 'xnetmon_capacity']) {
    assert.doesNotMatch(text, new RegExp(`^${old}[{ ]`, 'm'), old);
  }
});

test('a difference of two counters never goes down between scrapes', async () => {
  const metrics = new Metrics();
  const links = [{ name: 'ext0', slot: 0 }];
  metrics.observeCounters([counters(1, 1n, 1000n, 400n)], new Map([[1, 'blue']]), links);
  // The carried count caught up with a frame that was counted as offered only.
  metrics.observeCounters([counters(1, 1n, 1000n, 700n)], new Map([[1, 'blue']]), links);
  const text = await metrics.text();
  assert.match(text, /stage="dropped"\} 600$/m);
});

test('a network removed leaves no series behind', async () => {
  const metrics = new Metrics();
  const links = [{ name: 'ext0', slot: 0 }];
  metrics.observeCounters(
    [counters(1, 5n, 0n, 0n), counters(2, 6n, 0n, 0n)],
    new Map([
      [1, 'blue'],
      [2, 'green'],
    ]),
    links,
  );
  assert.match(await metrics.text(), /network="green"/);
  metrics.observeCounters([counters(1, 5n, 0n, 0n)], new Map([[1, 'blue']]), links);
  const text = await metrics.text();
  assert.doesNotMatch(text, /network="green"/);
  assert.match(text, /xnetmon_packets_total\{network="blue",reason="forward"\} 5/);
});

test('docs/operations.md lists every metric /metrics exposes, with its type and labels', async () => {
  const documented = documentedMetrics();
  assert.ok(documented.size >= 20, `${documented.size} metrics in the table`);
  for (const [name, shape] of documented) {
    assert.ok(
      shape.unit !== undefined && ['counter', 'gauge', 'histogram'].includes(shape.type),
      `${name}: a type and a unit column`,
    );
  }
  const exposed = exposedMetrics(await scrape(fed()));
  assert.deepEqual(
    [...exposed].filter(([, shape]) => !shape.samples).map(([name]) => name),
    [],
    'every metric has a series to read labels from',
  );
  assert.deepEqual(metricDrift(documented, exposed), []);
  // The check can fail: a metric the table forgot, and one whose labels it gets wrong.
  const edited = new Map(documented);
  edited.delete('xnetmon_routes');
  edited.set('xnetmon_sessions', { type: 'gauge', labels: ['network'], unit: 'routers' });
  edited.set('xnetmon_packets_total', { type: 'gauge', labels: ['network', 'reason'], unit: 'packets' });
  assert.deepEqual(metricDrift(edited, exposed).sort(), [
    'xnetmon_packets_total: documented as gauge, exposed as counter',
    'xnetmon_routes is exposed but not in docs/operations.md',
    'xnetmon_sessions: documented labels (network), exposed ()',
  ]);
});
