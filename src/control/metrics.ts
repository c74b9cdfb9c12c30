// Prometheus metrics over HTTP, after Prometheus' naming rules: what the data plane counts is
// a counter with `_total` and its unit in the name (read with rate()); the controller's state is
// gauges with a unit (ratios, per second); the controller's run time is a histogram. Every
// metric and its labels are listed in docs/operations.md; `promtool check metrics` checks them
// (test/unit/control-metrics.test.ts).
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { Gauge, Histogram, Registry, Counter } from 'prom-client';
import type { NetCounters } from '../dataplane/index.js';
import { REASONS, PATHS } from '../loader/index.js';
import { parseListenAddress } from '../config/index.js';
import type { PeriodReport } from './controller.js';
import type { QuotaStatus } from '../manager/index.js';
import { CumulativeCounter } from './cumulative.js';

/** The label value of traffic that belongs to no network (net id 0: unclassified, the host's own). */
export const NO_NETWORK_LABEL = '(none)';

const QUOTA_TABLES = ['routes4', 'routes6', 'nexthops', 'neighbours', 'filterRules'] as const;

function packageVersion(): string {
  // dist/src/control/metrics.js or src/control/metrics.ts: package.json is above either.
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name: string; version: string })
        .version;
    } catch {
      /* try the next */
    }
  }
  return 'unknown';
}

export interface MetricsOptions {
  /** Called before each scrape, so that counters are as fresh as the scrape (the daemon reads the maps). */
  beforeScrape?: () => void;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly packets = new CumulativeCounter(
    'xnetmon_packets_total',
    'Packets by verdict reason since the data plane\'s maps were created; network "(none)" is traffic of no network',
    ['network', 'reason'],
    this.registry,
  );
  private readonly pathPackets = new CumulativeCounter(
    'xnetmon_path_packets_total',
    'Packets past the CPU drop decision, by the path they took (each path has its own CPU cost)',
    ['network', 'path'],
    this.registry,
  );
  private readonly pathBytes = new CumulativeCounter(
    'xnetmon_path_bytes_total',
    'Bytes past the CPU drop decision, by the path they took',
    ['network', 'path'],
    this.registry,
  );
  private readonly cpuCost = new CumulativeCounter(
    'xnetmon_cpu_cost_units_total',
    'CPU cost units charged to a network: offered (before the CPU drop decision) and carried (costed by the path the packet took)',
    ['network', 'stage'],
    this.registry,
  );
  private readonly linkBytes = new CumulativeCounter(
    'xnetmon_link_bytes_total',
    'Bytes of a network towards a physical link: offered (before the link drop decision), carried (sent), dropped (offered - carried)',
    ['network', 'link', 'stage'],
    this.registry,
  );
  private readonly quotaRejections = new CumulativeCounter(
    'xnetmon_quota_rejections_total',
    'Batches refused because they would take a network over its quota of a table',
    ['network', 'table'],
    this.registry,
  );
  private readonly mapWriteFailures = new CumulativeCounter(
    'xnetmon_map_write_failures_total',
    'Map writes of a network the kernel refused (a full map), survived',
    ['network'],
    this.registry,
  );
  private readonly channelRejections = new CumulativeCounter(
    'xnetmon_channel_rejections_total',
    'Secure-channel connections refused and sessions cut off by the host, by reason (bad_mac, replay, message_rate, ...)',
    ['reason'],
    this.registry,
  );
  private readonly controllerFailures = new CumulativeCounter(
    'xnetmon_controller_failures_total',
    'Controller periods or memory control actions that failed and were survived, by kind',
    ['kind'],
    this.registry,
  );

  private readonly probability = new Gauge({
    name: 'xnetmon_drop_probability',
    help: 'Drop probability the controller set (for fib: the fraction of routes evicted)',
    labelNames: ['network', 'resource'],
    registers: [this.registry],
  });
  private readonly reservation = new Gauge({
    name: 'xnetmon_reservation_ratio',
    help: "A network's fixed reservation alpha: its guaranteed share of the resource",
    labelNames: ['network', 'resource'],
    registers: [this.registry],
  });
  private readonly targetRatio = new Gauge({
    name: 'xnetmon_target_ratio',
    help: 'The share of the resource the control law gives a network for its offered load in the last period',
    labelNames: ['network', 'resource'],
    registers: [this.registry],
  });
  private readonly cpuCapacity = new Gauge({
    name: 'xnetmon_cpu_capacity_cost_units_per_second',
    help: 'R of the CPU: the cost units the host carries per second (configured or measured)',
    registers: [this.registry],
  });
  private readonly cpuMeasured = new Gauge({
    name: 'xnetmon_cpu_model_measured',
    registers: [this.registry],
    help: '1 while R and the cost table come from the measured CPU (cost units are then ns), 0 while the constant table and cpu_capacity apply',
  });
  private readonly cpuPathCost = new Gauge({
    name: 'xnetmon_cpu_path_cost',
    labelNames: ['path', 'source'],
    registers: [this.registry],
    help: 'Cost per packet by path (ns when measured): source="in_use" is what the data plane charges, "fitted" the measured fit\'s',
  });
  private readonly cpuFitR2 = new Gauge({
    name: 'xnetmon_cpu_fit_r_squared',
    registers: [this.registry],
    help: 'Fit quality of the per-path CPU costs against the measured irq+softirq time (R^2)',
  });
  private readonly cpuMeasuredNs = new Gauge({
    name: 'xnetmon_cpu_measured_seconds_per_second',
    labelNames: ['part'],
    registers: [this.registry],
    help: 'CPU seconds per second (Prometheus base unit; the model works in ns). part="total": U(t), irq + softirq time (smoothed); "unattributed": what no network\'s packets explain; "bpf_programs": the data plane programs\' run time',
  });
  private readonly linkCapacity = new Gauge({
    name: 'xnetmon_link_capacity_bytes_per_second',
    help: 'R of a physical link in bytes per second',
    labelNames: ['link'],
    registers: [this.registry],
  });
  private readonly fibCapacity = new Gauge({
    name: 'xnetmon_fib_capacity_routes',
    help: 'R of the FIB memory: routes the host holds',
    registers: [this.registry],
  });
  private readonly routes = new Gauge({
    name: 'xnetmon_routes',
    help: 'Routes installed per network',
    labelNames: ['network'],
    registers: [this.registry],
  });
  private readonly sessions = new Gauge({
    name: 'xnetmon_sessions',
    help: 'Connected virtual routers',
    registers: [this.registry],
  });
  private readonly quotaUsed = new Gauge({
    name: 'xnetmon_quota_used_entries',
    help: 'Entries a network holds in a shared table',
    labelNames: ['network', 'table'],
    registers: [this.registry],
  });
  private readonly quotaLimit = new Gauge({
    name: 'xnetmon_quota_entries',
    help: "A network's quota of a shared table, in entries",
    labelNames: ['network', 'table'],
    registers: [this.registry],
  });
  private readonly periodSeconds = new Gauge({
    name: 'xnetmon_controller_interval_seconds',
    help: 'T: the configured time between controller periods',
    registers: [this.registry],
  });
  // A histogram, not the last value: a scrape every 15 s sees 150 periods of 100 ms.
  private readonly periodDuration = new Histogram({
    name: 'xnetmon_controller_period_seconds',
    help: 'Time the controller took to run one period (read counters, run the law, write drops)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly periods = new Counter({
    name: 'xnetmon_controller_periods_total',
    help: 'Controller periods run',
    registers: [this.registry],
  });
  private server: Server | undefined;

  constructor(private readonly options: MetricsOptions = {}) {
    new Gauge({
      name: 'xnetmon_build_info',
      help: 'Always 1; the labels say which XNetMon and Node.js run',
      labelNames: ['version', 'nodejs'],
      registers: [this.registry],
    }).set({ version: packageVersion(), nodejs: process.versions.node }, 1);
  }

  /** Every period: the controller's state (gauges) and its run time (histogram). */
  observePeriod(report: PeriodReport, periodMs: number): void {
    this.periodDuration.observe(report.durationMs / 1000);
    this.periods.inc();
    this.periodSeconds.set(periodMs / 1000);
    const perSecond = 1000 / periodMs;
    // Rebuilt each period, so that a removed network or link leaves no stale series.
    for (const gauge of [this.probability, this.reservation, this.targetRatio, this.linkCapacity]) gauge.reset();
    if (report.cpu) {
      const c = report.cpu;
      this.cpuMeasured.set(c.source === 'measured' ? 1 : 0);
      this.cpuPathCost.reset();
      for (const [path, cost] of Object.entries(c.costs)) this.cpuPathCost.set({ path, source: 'in_use' }, cost);
      for (const [path, cost] of Object.entries(c.fittedCosts ?? {})) {
        this.cpuPathCost.set({ path, source: 'fitted' }, cost);
      }
      if (c.fit?.rSquared !== null && c.fit?.rSquared !== undefined) this.cpuFitR2.set(c.fit.rSquared);
      if (c.measuredNsPerS !== null) this.cpuMeasuredNs.set({ part: 'total' }, c.measuredNsPerS / 1e9);
      if (c.unattributedNsPerS !== null) this.cpuMeasuredNs.set({ part: 'unattributed' }, c.unattributedNsPerS / 1e9);
      if (c.bpfRunTimeNsPerS !== null) this.cpuMeasuredNs.set({ part: 'bpf_programs' }, c.bpfRunTimeNsPerS / 1e9);
    }
    for (const r of report.resources) {
      // R is per period in the report; in the metrics it is per second (CPU, links) or a count (fib).
      if (r.resource === 'cpu') this.cpuCapacity.set(r.capacity * perSecond);
      else if (r.resource === 'fib') this.fibCapacity.set(r.capacity);
      else if (r.resource.startsWith('link:'))
        this.linkCapacity.set({ link: r.resource.slice(5) }, r.capacity * perSecond);
      for (const n of r.networks) {
        const labels = { network: n.name, resource: r.resource };
        this.probability.set(labels, n.dropProbability);
        this.reservation.set(labels, r.capacity ? n.reserved / r.capacity : 0);
        this.targetRatio.set(labels, r.capacity ? n.target / r.capacity : 0);
      }
    }
  }

  /**
   * The data plane's cumulative counters. `links` maps a counter slot to the physical link's
   * name; slots with no link are not emitted.
   */
  observeCounters(
    counters: readonly NetCounters[],
    names: ReadonlyMap<number, string>,
    links: readonly { name: string; slot: number }[] = [],
  ): void {
    const present = new Set(
      counters.map((c) => (c.netId === 0 ? NO_NETWORK_LABEL : (names.get(c.netId) ?? String(c.netId)))),
    );
    const linkNames = new Set(links.map((l) => l.name));
    for (const counter of [this.packets, this.pathPackets, this.pathBytes, this.cpuCost])
      counter.retain((l) => present.has(l.network));
    this.linkBytes.retain((l) => present.has(l.network) && linkNames.has(l.link));
    for (const c of counters) {
      const network = c.netId === 0 ? NO_NETWORK_LABEL : (names.get(c.netId) ?? String(c.netId));
      for (const reason of REASONS) this.packets.set({ network, reason }, c.verdicts[reason] ?? 0n);
      for (const path of PATHS) {
        this.pathPackets.set({ network, path }, c.pathPackets[path] ?? 0n);
        this.pathBytes.set({ network, path }, c.pathBytes[path] ?? 0n);
      }
      this.cpuCost.set({ network, stage: 'offered' }, c.cpuOffered);
      this.cpuCost.set({ network, stage: 'carried' }, c.cpuCarried);
      for (const { name: link, slot } of links) {
        const offered = c.linkOffered[slot] ?? 0n,
          carried = c.linkCarried[slot] ?? 0n;
        this.linkBytes.set({ network, link, stage: 'offered' }, offered);
        this.linkBytes.set({ network, link, stage: 'carried' }, carried);
        this.linkBytes.setMonotonic({ network, link, stage: 'dropped' }, offered > carried ? offered - carried : 0n);
      }
    }
  }

  observeRoutes(network: string, count: number): void {
    this.routes.set({ network }, count);
  }

  observeQuotas(network: string, status: QuotaStatus): void {
    for (const table of QUOTA_TABLES) {
      const labels = { network, table };
      this.quotaUsed.set(labels, status[table].used);
      this.quotaLimit.set(labels, status[table].quota);
      this.quotaRejections.set(labels, status[table].rejections);
    }
    this.mapWriteFailures.set({ network }, status.mapWriteFailures);
  }

  /** Controller.failures.counts(): "period", "evict:<netId>", "restore:<netId>". */
  observeControllerFailures(counts: Readonly<Record<string, number>>): void {
    for (const [kind, count] of Object.entries(counts)) this.controllerFailures.set({ kind }, count);
  }

  /** SecureServer.rejectionCounts(): every reason, zeros included, so a rate() has a series from the start. */
  observeChannelRejections(counts: Readonly<Record<string, number>>): void {
    for (const [reason, count] of Object.entries(counts)) this.channelRejections.set({ reason }, count);
  }

  observeSessions(count: number): void {
    this.sessions.set(count);
  }

  /** The text a scrape gets. */
  async text(): Promise<string> {
    this.options.beforeScrape?.();
    return this.registry.metrics();
  }

  async listen(address: string): Promise<{ host: string; port: number }> {
    const { host, port } = parseListenAddress(address, 'host.metrics_listen');
    this.server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      this.text().then(
        (text) => {
          res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
        },
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const bound = this.server.address();
    return { host, port: typeof bound === 'object' && bound ? bound.port : port };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
