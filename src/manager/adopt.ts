// Restart adoption: after a host daemon restart (even kill -9) the pinned maps still forward;
// the manager takes their routes over as stale, the router's resync then replaces them with no
// gap in forwarding (docs/manager.md, "Graceful restart").
import type { InstalledRoute } from '../dataplane/index.js';
import { parsePrefixText } from '../net/index.js';
import { armAdoptionTimer, trySweep } from './resync.js';
import { errorText, type ManagerContext, type NetworkState } from './state.js';
import { ORIGIN_ADOPTED, STALE } from './table.js';
import { codeOf } from './targets.js';

/** After a host daemon restart: the pinned maps are the replica; take them over as stale. */
export function adopt(ctx: ManagerContext, state: NetworkState): void {
  let listed: InstalledRoute[];
  try {
    listed = ctx.dp.listRoutes(state.definition.id);
  } catch (error) {
    ctx.logger.warn({ network: state.definition.name, err: errorText(error) }, 'cannot read installed routes');
    return;
  }
  const { 4: t4, 6: t6 } = state.tables;
  t4.begin();
  t6.begin();
  for (const route of listed) {
    const p = parsePrefixText(route.prefix, 'listRoutes');
    const table = state.tables[p.family];
    if (table.find(p.addr, 0, p.length) >= 0) continue;
    const row = table.create(p.addr, 0, p.length);
    // What made the route is unknown: no kind, via or interface; the target is what the map holds.
    table.setRow(row, ORIGIN_ADOPTED, 0, -1, -1, STALE);
    table.resolveRow(row, STALE, codeOf(route.target));
    if (route.target.kind === 'nexthop') ctx.holdNexthop(state, route.target.nexthopId);
  }
  // Nothing to write: the maps already hold these (their next hops are re-used by identity).
  t4.commit(state.hooks[4]);
  t6.commit(state.hooks[6]);
  const adopted = t4.used + t6.used;
  if (adopted > 0) {
    ctx.logger.info(
      { network: state.definition.name, routes: adopted },
      'adopted installed routes as stale until the router resyncs',
    );
    // Several routers: the adopted entries stay until every router resynced (none knows the others').
    for (const router of state.routers.values()) {
      router.disconnectedSince = ctx.clock.now();
      state.adoptedPending.add(router.key);
    }
    if (ctx.config.host.staleRouteTimeoutS === 0) {
      state.adoptedPending.clear();
      trySweep(ctx, state, null, 'graceful restart is off');
    } else armAdoptionTimer(ctx, state);
  }
}
