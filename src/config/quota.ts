// Quotas on the tables every network shares: without them one network could take every slot
// of xnm_nexthops or xnm_routes4 and leave the others with ERR_MAP_FULL. Each network gets a
// limit per table; the limits of all networks together never exceed the table, so a network
// that stays within its quota always finds room. Defaults follow the network's reservation
// (paper IV-A: a fixed share alpha, and a part of the rest by weight W).

import { firstOverLimit, type ConfigIssue } from './issues.js';
import type { ConfigChecks, NetworkDefinition, QuotaSettings, TableCapacities, XnetmonConfig } from './types.js';

export type QuotaTable = keyof TableCapacities;
export const QUOTA_TABLES: readonly QuotaTable[] = ['routes4', 'routes6', 'nexthops', 'neighbours'];

/** The map (or manager table) behind each quota, for error messages. */
export const QUOTA_TABLE_NAMES: Readonly<Record<QuotaTable, string>> = Object.freeze({
  routes4: 'xnm_routes4',
  routes6: 'xnm_routes6',
  nexthops: 'xnm_nexthops',
  neighbours: 'the neighbour table',
});

/**
 * The tables' sizes as bpf/xnetmon.h builds them (XNM_MAX_ROUTES4, XNM_MAX_ROUTES6,
 * XNM_MAX_NEXTHOPS). Next hop id 0 means "none", so 65,535 ids are usable. Neighbours live in
 * the manager's memory; each resolved one may need a next hop, so they get the same bound.
 */
export const DEFAULT_TABLE_CAPACITIES: TableCapacities = Object.freeze({
  routes4: 4_194_304,
  routes6: 1_048_576,
  nexthops: 65_535,
  neighbours: 65_535,
});

/** Per-network and host-wide bounds fixed by the map layout (bpf/xnetmon.h). */
export const LAYOUT_LIMITS = Object.freeze({
  /** XNM_MAX_FILTER_RULES: filter slots per network, the filter's default rules included. */
  filterRules: 32,
  /** xnm_classify holds XNM_MAX_IFACES * 4 classification keys (attachments) for all networks. */
  attachments: 4096,
  /** xnm_ifaces holds XNM_MAX_IFACES interfaces: host links and vifs. */
  interfaces: 1024,
});

export function tableCapacities(checks: ConfigChecks = {}): TableCapacities {
  return { ...DEFAULT_TABLE_CAPACITIES, ...checks.tableCapacities };
}

/**
 * Each network's share of a shared table: alpha_i + (1 - sum alpha) * W_i / sum W, with alpha
 * the FIB reservation (`reserve.fib`). The shares of all networks sum to 1.
 */
export function quotaShares(networks: readonly NetworkDefinition[]): number[] {
  const reserved = networks.reduce((sum, n) => sum + n.reserve.fib, 0);
  const weights = networks.reduce((sum, n) => sum + n.weight, 0);
  const idle = Math.max(0, 1 - reserved);
  return networks.map((n) => n.reserve.fib + (weights > 0 ? (idle * n.weight) / weights : 0));
}

/**
 * Every network's effective quota per table. Explicit quotas are kept; the networks without
 * one share what the explicit ones leave, in proportion to their quotaShares:
 * floor((C - sum explicit) * share_i / sum of the defaulted shares). With no explicit quota this
 * is floor(C * share_i). The sum over all networks never exceeds C when the explicit ones fit.
 */
export function networkQuotas(
  config: XnetmonConfig,
  capacities: TableCapacities = DEFAULT_TABLE_CAPACITIES,
): Map<number, Record<QuotaTable, number>> {
  const { networks } = config;
  const shares = quotaShares(networks);
  const result = new Map<number, Record<QuotaTable, number>>(
    networks.map((n) => [n.id, { routes4: 0, routes6: 0, nexthops: 0, neighbours: 0 }]),
  );
  for (const table of QUOTA_TABLES) {
    const explicit = networks.map((n) => quotaOf(n.quota, table));
    const free = Math.max(0, capacities[table] - explicit.reduce<number>((sum, q) => sum + (q ?? 0), 0));
    const defaultedShare = networks.reduce((sum, _, i) => sum + (explicit[i] === undefined ? shares[i]! : 0), 0);
    const quotas = networks.map(
      (_, i) => explicit[i] ?? (defaultedShare > 0 ? Math.floor((free * shares[i]!) / defaultedShare) : 0),
    );
    // Float sums of shares may land a hair over 1: never hand out more than the table holds.
    let excess = quotas.reduce((sum, q, i) => sum + (explicit[i] === undefined ? q : 0), 0) - free;
    for (let i = quotas.length - 1; excess > 0 && i >= 0; i--) {
      if (explicit[i] !== undefined || quotas[i]! === 0) continue;
      quotas[i]!--;
      excess--;
    }
    networks.forEach((n, i) => {
      result.get(n.id)![table] = quotas[i]!;
    });
  }
  return result;
}

function quotaOf(quota: QuotaSettings, table: QuotaTable): number | undefined {
  return Object.hasOwn(quota, table) ? quota[table] : undefined;
}

/**
 * Rules on quotas and on what the maps can hold: explicit quotas of a table sum to at most its
 * capacity, fib_capacity fits in the two route maps, attachments and interfaces fit their maps.
 */
export function quotaIssues(config: XnetmonConfig, checks: ConfigChecks = {}, blameNetwork?: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const capacities = tableCapacities(checks);
  const { host, networks } = config;
  const routeMaps = capacities.routes4 + capacities.routes6;
  if (host.fibCapacity > routeMaps) {
    issues.push({
      segments: ['host', 'fib_capacity'],
      message: `${host.fibCapacity} routes is more than the route maps hold: ${routeMaps} (xnm_routes4 ${capacities.routes4} + xnm_routes6 ${capacities.routes6})`,
    });
  }
  for (const table of QUOTA_TABLES) {
    const explicit = networks.map((n) => quotaOf(n.quota, table) ?? 0);
    const total = explicit.reduce((sum, q) => sum + q, 0);
    if (total <= capacities[table]) continue;
    let culprit = networks.findIndex((n, i) => n.name === blameNetwork && explicit[i]! > 0);
    if (culprit < 0) culprit = firstOverLimit(explicit, capacities[table]);
    const terms = networks
      .map((n, i) => ({ n, q: explicit[i]! }))
      .filter(({ q }) => q > 0)
      .map(({ n, q }) => `${n.name} ${q}`)
      .join(' + ');
    issues.push({
      segments: ['networks', culprit, 'quota', table],
      message: `${explicit[culprit]} makes the ${table} quotas sum to ${total} (${terms}); ${QUOTA_TABLE_NAMES[table]} holds ${capacities[table]} entries for all networks`,
    });
  }
  const attachments = networks.reduce((sum, n) => sum + n.attachments.length, 0);
  if (attachments > LAYOUT_LIMITS.attachments) {
    const culprit = firstOverLimit(
      networks.map((n) => n.attachments.length),
      LAYOUT_LIMITS.attachments,
    );
    issues.push({
      segments: ['networks', culprit, 'attachments'],
      message: `${attachments} attachments over all networks; xnm_classify holds ${LAYOUT_LIMITS.attachments}`,
    });
  }
  const interfaces = new Set([
    ...host.links.map((l) => l.name),
    ...networks.flatMap((n) => [
      ...n.routers.map((r) => r.vif),
      ...n.attachments.flatMap((a) => (a.vif ? [a.vif] : [])),
    ]),
  ]);
  if (interfaces.size > LAYOUT_LIMITS.interfaces) {
    issues.push({
      segments: ['networks'],
      message: `${interfaces.size} interfaces (host links and vifs); xnm_ifaces holds ${LAYOUT_LIMITS.interfaces}`,
    });
  }
  return issues;
}
