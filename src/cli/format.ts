// Human output: aligned tables, as `ip` and `ovs-vsctl` print them, of the views the daemon
// answers with (defined once in src/admin).
import type {
  ClientsView,
  CpuStatusView,
  NetworkSummary,
  RoutesView,
  StatusDriftView,
  StatusView,
} from '../admin/index.js';

function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** R, U(t), the fit's quality and the cost table in use (and the fitted one beside it). */
export function formatCpu(c: CpuStatusView): string {
  const r2 = c.fit?.rSquared ?? null;
  const cpuPct = (ns: number | null): string => (ns === null ? '-' : `${((ns / 1e9) * 100).toFixed(1)}% of a core`);
  const rOf =
    c.source === 'measured' ? `${c.cores} cores x share ${c.share}, less the unattributed load` : 'cpu_capacity';
  const fit = c.fit
    ? `fit R^2 ${r2 === null ? '-' : r2.toFixed(3)}, rmse ${Math.round(c.fit.rmseNs)} ns, ${c.fit.samples.toFixed(0)} periods` +
      (c.fit.converged ? '' : ', not converged')
    : 'no fit yet';
  const head =
    `cpu: ${c.source} costs (${c.unit})${c.fallbackReason ? ` - table because ${c.fallbackReason}` : ''}; ` +
    `R ${Math.round(c.capacityPerS)} ${c.unit}/s (${rOf}); U(t) irq+softirq ${cpuPct(c.measuredNsPerS)}, ` +
    `unattributed ${cpuPct(c.unattributedNsPerS)}, data plane programs ${cpuPct(c.bpfRunTimeNsPerS)}; ${fit}`;
  const paths = Object.keys(c.costs);
  const rows = [['in use', ...paths.map((p) => c.costs[p]), c.costPerKib]];
  if (c.fittedCosts) rows.push(['fitted (ns)', ...paths.map((p) => c.fittedCosts![p]), c.fittedCostPerKib ?? '-']);
  return `${head}\n${table(['COSTS', ...paths.map((p) => p.toUpperCase()), 'PER KIB'], rows)}`;
}

/**
 * A share of the configured R. R (host.cpu_capacity, a link's capacity_mbps) can be set below
 * what the host really carries, and then a network's use is above 100 %: marked, and explained
 * under the table, rather than shown as if it were a bug.
 */
const shareOfR = (x: number): string => (x > 1 ? `${pct(x)} >R` : pct(x));

export const OVER_R_NOTE =
  'USED, RESERVED and OFFERED are shares of the configured R; >R: the host carried more than the configured R, which is set below what it can do';

export function formatStatus(s: StatusView): string {
  const head =
    `law ${s.law}, period ${s.periodMs} ms, control ${s.control ? 'on' : 'off (accounting only)'}` +
    (s.lastPeriod ? `, period #${s.lastPeriod.period} took ${s.lastPeriod.durationMs.toFixed(2)} ms` : '');
  const rows: unknown[][] = [];
  for (const n of s.networks) {
    for (const r of n.resources) {
      rows.push([
        n.name,
        r.resource,
        r.capacity ? shareOfR(r.carried / r.capacity) : '-',
        r.capacity ? pct(r.reserved / r.capacity) : '-',
        r.capacity ? pct(r.offered / r.capacity) : '-',
        r.dropProbability.toFixed(3),
      ]);
    }
  }
  const drops = table(
    ['NETWORK', 'W', 'ROUTES', 'FORWARDED', 'TO ROUTER', 'DROPS BY REASON'],
    s.networks.map((n) => [
      n.name,
      n.weight,
      n.routes,
      n.forwarded,
      n.toRouter,
      Object.entries(n.drops)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k.replace('drop_', '')}=${v}`)
        .join(' ') || '-',
    ]),
  );
  const attachments = s.attachments?.length
    ? `\n\n${table(
        ['INTERFACE', 'XDP', 'TC'],
        s.attachments.map((a) => [a.ifname, a.xdp, a.tc === 'none' ? '-' : a.tc]),
      )}`
    : '';
  const none =
    s.noNetwork && Object.keys(s.noNetwork).length
      ? `\n(no network)  ${Object.entries(s.noNetwork)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`
      : '';
  const overR = s.networks.some((n) => n.resources.some((r) => r.capacity && r.carried > r.capacity))
    ? `\n${OVER_R_NOTE}`
    : '';
  const cpu = s.cpu ? `\n${formatCpu(s.cpu)}` : '';
  const drift = driftFound(s.drift) ? `\n\n${formatDrift(s.drift)}` : '';
  const usage = table(['NETWORK', 'RESOURCE', 'USED', 'RESERVED', 'OFFERED', 'DROP P'], rows);
  return `${head}${cpu}\n\n${usage}${overR}\n\n${drops}${none}${attachments}${drift}`;
}

/** True when a reconciliation report (`xnetmon check`, status's `drift`) shows any difference. */
export function driftFound(d: StatusDriftView): boolean {
  return d.entries > 0 || d.networks.length > 0 || Boolean(d.detached?.length) || Boolean(d.missingPrograms?.length);
}

/** A reconciliation report; status's from an older daemon has networks and entries only. */
export function formatDrift(d: StatusDriftView): string {
  if (!driftFound(d)) return 'the data plane matches the configuration';
  const verb = d.trigger === 'check' ? 'would' : 'did';
  const when = d.trigger ? ` (${d.trigger}, ${d.at ?? '?'})` : '';
  const lines = [`drift${when}: ${d.entries} map entries`];
  if (d.networks.length) {
    const ids = d.networks.join(', ');
    lines.push(`networks the configuration does not declare: ${ids} (reconciliation ${verb} remove them)`);
  }
  const rows = Object.entries(d.maps ?? {})
    .filter(([, c]) => c.add + c.change + c.remove > 0)
    .map(([map, c]) => [map, c.add, c.change, c.remove]);
  if (rows.length) lines.push(table(['MAP', 'ADD', 'CHANGE', 'REMOVE'], rows));
  const become = verb === 'would' ? 'would become' : 'became';
  for (const f of d.filters ?? []) lines.push(`filter of ${f.network}: default ${become} ${f.to}`);
  if (d.detached?.length) {
    lines.push(`programs on interfaces the configuration does not name: ${d.detached.join(', ')}`);
  }
  if (d.missingPrograms?.length) {
    lines.push(`declared interfaces without their program: ${d.missingPrograms.join(', ')}`);
  }
  return lines.join('\n');
}

export function formatNetworks(nets: readonly NetworkSummary[]): string {
  return table(
    ['ID', 'NAME', 'WEIGHT', 'CPU', 'FIB', 'LINKS'],
    nets.map((n) => [
      n.id,
      n.name,
      n.weight,
      n.reserve.cpu,
      n.reserve.fib,
      Object.entries(n.reserve.links)
        .map(([l, v]) => `${l}=${v}`)
        .join(' '),
    ]),
  );
}

export function formatRoutes(view: RoutesView): string {
  return table(
    ['PREFIX', 'TARGET'],
    view.routes.map((r) => [r.prefix, r.target.kind === 'nexthop' ? `next hop ${r.target.nexthopId}` : r.target.kind]),
  );
}

export function formatClients(list: ClientsView): string {
  if (!list.length) return 'no virtual router connected';
  const cell = (v: unknown): string => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  return table(
    Object.keys(list[0]).map((k) => k.toUpperCase()),
    list.map((c) => Object.values(c).map(cell)),
  );
}
