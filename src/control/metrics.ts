// Prometheus metrics over HTTP: usage, reservations and drop probabilities per
// network and resource, verdicts by reason, routes, sessions, controller timing.
import { createServer, type Server } from 'node:http';
import { Gauge, Registry, Counter } from 'prom-client';
import type { NetCounters } from '../dataplane/index.js';
import { parseListenAddress } from '../config/index.js';
import type { PeriodReport } from './controller.js';
import type { QuotaStatus } from '../manager/index.js';

export class Metrics {
  readonly registry = new Registry();
  private readonly usage = new Gauge({ name: 'xnetmon_usage', help: 'Resource carried by a network in the last period (cost units, bytes or routes)', labelNames: ['network', 'resource'], registers: [this.registry] });
  private readonly offered = new Gauge({ name: 'xnetmon_offered', help: 'Resource offered by a network in the last period, before drops', labelNames: ['network', 'resource'], registers: [this.registry] });
  private readonly reserved = new Gauge({ name: 'xnetmon_reserved', help: 'Fixed reservation alpha * R of a network per period', labelNames: ['network', 'resource'], registers: [this.registry] });
  private readonly capacity = new Gauge({ name: 'xnetmon_capacity', help: 'R(t): what the resource carries per period', labelNames: ['resource'], registers: [this.registry] });
  private readonly probability = new Gauge({ name: 'xnetmon_drop_probability', help: 'Drop probability set by the controller', labelNames: ['network', 'resource'], registers: [this.registry] });
  private readonly verdicts = new Gauge({ name: 'xnetmon_packets', help: 'Packets by verdict reason since the maps were created', labelNames: ['network', 'reason'], registers: [this.registry] });
  private readonly routes = new Gauge({ name: 'xnetmon_routes', help: 'Routes installed per network', labelNames: ['network'], registers: [this.registry] });
  private readonly sessions = new Gauge({ name: 'xnetmon_sessions', help: 'Connected virtual routers', registers: [this.registry] });
  private readonly period = new Gauge({ name: 'xnetmon_controller_period_seconds', help: 'Duration of the last controller period', registers: [this.registry] });
  private readonly periods = new Counter({ name: 'xnetmon_controller_periods_total', help: 'Controller periods run', registers: [this.registry] });
  private readonly quotaUsed = new Gauge({ name: 'xnetmon_quota_used', help: 'Entries a network holds in a shared table', labelNames: ['network', 'table'], registers: [this.registry] });
  private readonly quotaLimit = new Gauge({ name: 'xnetmon_quota', help: 'A network\'s quota of a shared table', labelNames: ['network', 'table'], registers: [this.registry] });
  private readonly quotaRejections = new Gauge({ name: 'xnetmon_quota_rejections_total', help: 'Batches refused because they would take a network over its quota of a table', labelNames: ['network', 'table'], registers: [this.registry] });
  private readonly mapWriteFailures = new Gauge({ name: 'xnetmon_map_write_failures_total', help: 'Map writes of a network the kernel refused (a full map), survived', labelNames: ['network'], registers: [this.registry] });
  private readonly controllerFailures = new Gauge({ name: 'xnetmon_controller_failures_total', help: 'Controller periods or memory control actions that failed and were survived, by kind', labelNames: ['kind'], registers: [this.registry] });
  private server: Server | undefined;

  observePeriod(report: PeriodReport): void {
    this.period.set(report.durationMs / 1000);
    this.periods.inc();
    for (const r of report.resources) {
      this.capacity.set({ resource: r.resource }, r.capacity);
      for (const n of r.networks) {
        const labels = { network: n.name, resource: r.resource };
        this.usage.set(labels, n.carried);
        this.offered.set(labels, n.offered);
        this.reserved.set(labels, n.reserved);
        this.probability.set(labels, n.dropProbability);
      }
    }
  }

  observeCounters(counters: readonly NetCounters[], names: ReadonlyMap<number, string>): void {
    for (const c of counters) {
      const network = names.get(c.netId) ?? (c.netId === 0 ? 'none' : String(c.netId));
      for (const [reason, value] of Object.entries(c.verdicts)) this.verdicts.set({ network, reason }, Number(value));
    }
  }

  observeRoutes(network: string, count: number): void {
    this.routes.set({ network }, count);
  }

  observeQuotas(network: string, status: QuotaStatus): void {
    for (const table of ['routes4', 'routes6', 'nexthops', 'neighbours', 'filterRules'] as const) {
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

  observeSessions(count: number): void {
    this.sessions.set(count);
  }

  async listen(address: string): Promise<{ host: string; port: number }> {
    const { host, port } = parseListenAddress(address, 'host.metrics_listen');
    this.server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('see /metrics\n');
        return;
      }
      this.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': this.registry.contentType }).end(text);
      }, (err: Error) => res.writeHead(500).end(`${err.message}\n`));
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
