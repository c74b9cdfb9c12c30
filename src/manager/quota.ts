// Quotas: one network cannot fill a shared table (docs/manager.md, "Quotas"). A staged change
// that would take a network over its share of a table is refused whole, before any map write.
import { LAYOUT_LIMITS, type QuotaTable } from '../config/index.js';
import type { Family } from '../net/index.js';
import { FAMILIES, type ManagerContext, type NeighbourEntry, type NetworkState } from './state.js';
import { ORIGIN_ROUTER, type RouteTable } from './table.js';
import { QUOTA_TABLE_LIST, QuotaExceededError, type QuotaStatus, type QuotaTableName } from './types.js';

/** Entries a network has in one family's route map, or will have when its evicted routes return. */
function familyUse(state: NetworkState, family: Family): number {
  return state.tables[family].used + (state.syntheticDefaults.has(family) ? 1 : 0);
}

/** Live entries of a table once the staged rows are applied. */
export function liveAfter(table: RouteTable): number {
  let live = table.used;
  const rows = table.rows;
  for (let r = 0; r < rows.count; r++) {
    const before = table.isLive(rows.slot[r]!);
    const after = rows.origin[r]! >= ORIGIN_ROUTER;
    if (before !== after) live += after ? 1 : -1;
  }
  return live;
}

/**
 * Refuses a staged change that would take a family's routes over the quota. A change that
 * does not grow the table passes even over the quota (after the quota was lowered, the
 * router can still withdraw and replace routes).
 */
export function checkRouteQuotas(ctx: ManagerContext, state: NetworkState): void {
  for (const family of FAMILIES) {
    const table: QuotaTable = family === 4 ? 'routes4' : 'routes6';
    const before = familyUse(state, family);
    const after = liveAfter(state.tables[family]) + (state.syntheticDefaults.has(family) ? 1 : 0);
    const quota = ctx.quota(state, table);
    if (after > quota && after > before) throw new QuotaExceededError(state.definition.name, table, quota, after);
  }
}

export function checkNeighbourQuota(
  ctx: ManagerContext,
  state: NetworkState,
  touched: ReadonlyMap<string, NeighbourEntry | null>,
): void {
  const before = state.neighbours.size;
  let after = before;
  for (const [key, entry] of touched) {
    const known = state.neighbours.has(key);
    if (entry && !known) after++;
    else if (!entry && known) after--;
  }
  const quota = ctx.quota(state, 'neighbours');
  if (after > quota && after > before) throw new QuotaExceededError(state.definition.name, 'neighbours', quota, after);
}

/** A network's use of each shared table against its quota, and the batches refused for it. */
export function quotaStatus(ctx: ManagerContext, state: NetworkState): QuotaStatus {
  const quota = ctx.quotas.get(state.definition.id) ?? { routes4: 0, routes6: 0, nexthops: 0, neighbours: 0 };
  const filterRules = (state.filterRules?.length ?? 0) + (state.definition.filterDefault === 'drop' ? 2 : 0);
  const used: Record<QuotaTableName, number> = {
    routes4: familyUse(state, 4),
    routes6: familyUse(state, 6),
    nexthops: state.nexthopIds.size,
    neighbours: state.neighbours.size,
    filterRules,
  };
  const limit: Record<QuotaTableName, number> = { ...quota, filterRules: LAYOUT_LIMITS.filterRules };
  const out = Object.fromEntries(
    QUOTA_TABLE_LIST.map((t) => [t, { used: used[t], quota: limit[t], rejections: state.quotaRejections[t] }]),
  );
  return { ...out, mapWriteFailures: state.mapWriteFailures } as QuotaStatus;
}
