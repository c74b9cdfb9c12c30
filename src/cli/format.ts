// Human output: aligned tables, as `ip` and `ovs-vsctl` print them.
export function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

/** What the daemon's `status` returns, as the CLI reads it. */
export interface StatusView {
  law: string;
  periodMs: number;
  control: boolean;
  lastPeriod: { period: number; durationMs: number } | null;
  attachments?: { ifname: string; xdp: string; tc: string }[];
  /** Verdicts of frames that belong to no network, by reason (non-zero only). */
  noNetwork?: Record<string, number>;
  /** The last reconciliation that changed anything. */
  drift?: DriftView;
  networks: {
    name: string;
    weight: number;
    routes: number;
    forwarded: number;
    toRouter: number;
    resources: { resource: string; capacity: number; reserved: number; offered: number; carried: number; dropProbability: number }[];
    drops: Record<string, number>;
  }[];
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/**
 * A share of the configured R. R (host.cpu_capacity, a link's capacity_mbps) can be set below
 * what the host really carries, and then a network's use is above 100 %: marked, and explained
 * under the table, rather than shown as if it were a bug.
 */
const shareOfR = (x: number): string => (x > 1 ? `${pct(x)} >R` : pct(x));

export const OVER_R_NOTE = 'USED, RESERVED and OFFERED are shares of the configured R; >R: the host carried more than the configured R, which is set below what it can do';

export function formatStatus(s: StatusView): string {
  const head = `law ${s.law}, period ${s.periodMs} ms, control ${s.control ? 'on' : 'off (accounting only)'}` +
    (s.lastPeriod ? `, period #${s.lastPeriod.period} took ${s.lastPeriod.durationMs.toFixed(2)} ms` : '');
  const rows: unknown[][] = [];
  for (const n of s.networks) {
    for (const r of n.resources) {
      rows.push([n.name, r.resource, r.capacity ? shareOfR(r.carried / r.capacity) : '-', r.capacity ? pct(r.reserved / r.capacity) : '-', r.capacity ? pct(r.offered / r.capacity) : '-', r.dropProbability.toFixed(3)]);
    }
  }
  const drops = table(['NETWORK', 'W', 'ROUTES', 'FORWARDED', 'TO ROUTER', 'DROPS BY REASON'], s.networks.map((n) => [
    n.name, n.weight, n.routes, n.forwarded, n.toRouter,
    Object.entries(n.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k.replace('drop_', '')}=${v}`).join(' ') || '-',
  ]));
  const attachments = s.attachments?.length
    ? `\n\n${table(['INTERFACE', 'XDP', 'TC'], s.attachments.map((a) => [a.ifname, a.xdp, a.tc === 'none' ? '-' : a.tc]))}`
    : '';
  const none = s.noNetwork && Object.keys(s.noNetwork).length
    ? `\n(no network)  ${Object.entries(s.noNetwork).map(([k, v]) => `${k}=${v}`).join(' ')}`
    : '';
  const overR = s.networks.some((n) => n.resources.some((r) => r.capacity && r.carried > r.capacity)) ? `\n${OVER_R_NOTE}` : '';
  const drift = s.drift && driftFound(s.drift) ? `\n\n${formatDrift(s.drift)}` : '';
  return `${head}\n\n${table(['NETWORK', 'RESOURCE', 'USED', 'RESERVED', 'OFFERED', 'DROP P'], rows)}${overR}\n\n${drops}${none}${attachments}${drift}`;
}

/** A reconciliation report (`xnetmon check`, status's `drift`), as the CLI reads it. */
export interface DriftView {
  trigger: string;
  at: string;
  networks: number[];
  entries: number;
  maps: Record<string, { add: number; change: number; remove: number }>;
  filters: { network: string; to: string }[];
  detached: string[];
  missingPrograms: string[];
}

export function driftFound(d: DriftView): boolean {
  return d.entries > 0 || d.networks.length > 0 || d.detached.length > 0 || d.missingPrograms.length > 0;
}

export function formatDrift(d: DriftView): string {
  if (!driftFound(d)) return 'the data plane matches the configuration';
  const verb = d.trigger === 'check' ? 'would' : 'did';
  const lines = [`drift (${d.trigger}, ${d.at}): ${d.entries} map entries`];
  if (d.networks.length) lines.push(`networks the configuration does not declare: ${d.networks.join(', ')} (reconciliation ${verb} remove them)`);
  const rows = Object.entries(d.maps).filter(([, c]) => c.add + c.change + c.remove > 0).map(([map, c]) => [map, c.add, c.change, c.remove]);
  if (rows.length) lines.push(table(['MAP', 'ADD', 'CHANGE', 'REMOVE'], rows));
  for (const f of d.filters) lines.push(`filter of ${f.network}: default ${verb === 'would' ? 'would become' : 'became'} ${f.to}`);
  if (d.detached.length) lines.push(`programs on interfaces the configuration does not name: ${d.detached.join(', ')}`);
  if (d.missingPrograms.length) lines.push(`declared interfaces without their program: ${d.missingPrograms.join(', ')}`);
  return lines.join('\n');
}
