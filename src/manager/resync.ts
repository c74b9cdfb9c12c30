// Graceful restart (RFC 4724 style, docs/manager.md): when a router's session ends, or it starts
// a resync, its routes and neighbours go stale but stay in the maps; the router's EndOfSync
// sweeps what it did not announce again, and a router that does not come back within the hold
// time loses its replica.
import { BatchRejectedError } from './types.js';
import {
  forgetNeighbour, mayHoldNeighbour, neighbourAddresses, stageDependents, stageNeighbourRoutes,
} from './neighbours.js';
import { liveAfter } from './quota.js';
import { errorText, Operation, type ManagerContext, type NetworkState } from './state.js';
import { ORIGIN_ROUTER, STALE } from './table.js';
import { operate } from './writes.js';

export function sessionEnded(ctx: ManagerContext, state: NetworkState): void {
  state.session = null;
  state.helloSeen = false;
  state.resyncing = false;
  state.disconnectedSince = ctx.clock.now();
  // Paper IV-B with RFC 4724: the replica keeps forwarding while the router is away.
  markAllStale(state);
  const stale = state.tables[4].stale + state.tables[6].stale;
  ctx.logger.info({ network: state.definition.name, stale, holdS: ctx.config.host.staleRouteTimeoutS }, 'update session closed; routes kept as stale');
  if (ctx.config.host.staleRouteTimeoutS === 0) trySweep(ctx, state, 'graceful restart is off (stale_route_timeout_s = 0)');
  else armStaleTimer(ctx, state);
}

export function beginResync(ctx: ManagerContext, state: NetworkState): void {
  markAllStale(state);
  state.resyncing = true;
  state.resyncFailed = false;
  if (ctx.config.host.staleRouteTimeoutS > 0) armStaleTimer(ctx, state);
  else {
    ctx.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
  }
}

export function endResync(ctx: ManagerContext, state: NetworkState): void {
  if (!state.resyncing) return;
  state.resyncing = false;
  if (state.resyncFailed) {
    // Routes of a refused batch are still in the router's FIB: keep them stale rather than
    // sweep them, for as long as the router stays connected (it retries the resync).
    ctx.clock.clearTimeout(state.staleTimer);
    state.staleTimer = undefined;
    throw new BatchRejectedError('ERR_RESYNC_INCOMPLETE', 'a batch of this resync was refused: stale routes are kept until a complete resync');
  }
  sweepStale(ctx, state, 'end of resync');
}

export function markAllStale(state: NetworkState): void {
  state.tables[4].markAllStale();
  state.tables[6].markAllStale();
  for (const neighbour of state.neighbours.values()) neighbour.stale = true;
}

export function armStaleTimer(ctx: ManagerContext, state: NetworkState): void {
  ctx.clock.clearTimeout(state.staleTimer);
  state.staleTimer = ctx.clock.setTimeout(() => {
    state.staleTimer = undefined;
    // Paper IV-B with RFC 4724: a router that does not come back loses its replica.
    trySweep(ctx, state, `no complete resync within ${ctx.config.host.staleRouteTimeoutS} s`);
  }, ctx.config.host.staleRouteTimeoutS * 1000);
}

/** sweepStale for timers and other callers that cannot take an exception (it is logged, and retried). */
export function trySweep(ctx: ManagerContext, state: NetworkState, reason: string): void {
  try {
    sweepStale(ctx, state, reason);
  } catch {
    // sweepStale logged it and re-armed the timer.
  }
}

/**
 * Deletes every stale route and neighbour: routes that used the neighbours go to the VM,
 * host routes of the neighbours go, and host routes of neighbours inside a withdrawn
 * router route are decided again (a withdrawn connected route takes them along).
 */
function sweepStale(ctx: ManagerContext, state: NetworkState, reason: string): void {
  ctx.clock.clearTimeout(state.staleTimer);
  state.staleTimer = undefined;
  const gone = [...state.neighbours.values()].filter((n) => n.stale);
  const op = new Operation((key) => {
    const n = state.neighbours.get(key);
    return n && !n.stale ? n : undefined;
  });
  let withdrawn = 0;
  try {
    operate(ctx, state, op, () => {
      const addresses = neighbourAddresses(state);
      for (const table of [state.tables[4], state.tables[6]]) {
        const track = addresses.has(table.family);
        for (let slot = 0; slot < table.top; slot++) {
          if (!table.isLive(slot) || !(table.bits[slot]! & STALE)) continue;
          const row = table.stage(slot);
          if (track && table.origin[slot] === ORIGIN_ROUTER && mayHoldNeighbour(addresses, table, slot)) op.changed[table.family].push(slot);
          table.withdrawRow(row);
          withdrawn++;
        }
      }
      for (const n of gone) stageDependents(state, n.family, n.key);
      stageNeighbourRoutes(ctx, state, op, gone);
      if (liveAfter(state.tables[4]) + liveAfter(state.tables[6]) === 0) op.removeDefaults = [...state.syntheticDefaults];
    }, () => {
      for (const n of gone) forgetNeighbour(state, n);
      for (const family of op.removeDefaults) state.syntheticDefaults.delete(family);
      if (state.tables[4].used + state.tables[6].used === 0) state.coverIndex = null;
    });
  } catch (error) {
    ctx.logger.error({ network: state.definition.name, err: errorText(error) }, 'sweeping stale routes failed; retrying after the hold time');
    armStaleTimer(ctx, state);
    throw error;
  }
  if (withdrawn > 0) ctx.logger.info({ network: state.definition.name, withdrawn, reason }, 'stale routes withdrawn');
}

export function withdrawAll(ctx: ManagerContext, state: NetworkState, reason: string): void {
  markAllStale(state);
  trySweep(ctx, state, reason);
  ctx.clock.clearTimeout(state.staleTimer);
  state.staleTimer = undefined;
}
