// Graceful restart (RFC 4724 style, docs/manager.md): when a router's session ends, or it starts
// a resync, its routes and neighbours go stale but stay in the maps; the router's EndOfSync
// sweeps what it did not announce again, and a router that does not come back within the hold
// time loses its replica. Each router of a network is on its own here (docs/manager.md, "Several
// routers"): its staleness, sweep and timer touch only what it announced; an entry another
// router still announces stays.
import { BatchRejectedError } from './types.js';
import {
  forgetNeighbour,
  mayHoldNeighbour,
  neighbourAddresses,
  stageDependents,
  stageNeighbourRoutes,
} from './neighbours.js';
import { liveAfter } from './quota.js';
import {
  errorText,
  Operation,
  type ManagerContext,
  type NeighbourEntry,
  type NetworkState,
  type RouterState,
} from './state.js';
import { EVICTED, KIND_VIA_VM, NO_ANNOUNCER, ORIGIN_ADOPTED, ORIGIN_ROUTER, STALE } from './table.js';
import { operate } from './writes.js';

/** Every router bit: what a sweep of the whole network (a removed network) covers. */
const ALL_ROUTERS = 0xffffffff;

export function sessionEnded(ctx: ManagerContext, state: NetworkState, router: RouterState): void {
  router.session = null;
  router.helloSeen = false;
  router.resyncing = false;
  router.disconnectedSince = ctx.clock.now();
  // Paper IV-B with RFC 4724: the replica keeps forwarding while the router is away.
  markRouterStale(state, router.bit);
  const stale = state.tables[4].stale + state.tables[6].stale;
  ctx.logger.info(
    { network: state.definition.name, router: router.vif, stale, holdS: ctx.config.host.staleRouteTimeoutS },
    'update session closed; routes kept as stale',
  );
  if (ctx.config.host.staleRouteTimeoutS === 0)
    trySweep(ctx, state, router, 'graceful restart is off (stale_route_timeout_s = 0)');
  else {
    armStaleTimer(ctx, state, router);
    // A failed resync stopped the adopted entries' hold time: it runs again once the router is gone.
    if (state.adoptedPending.size > 0 && state.adoptionTimer === undefined) armAdoptionTimer(ctx, state);
  }
}

export function beginResync(ctx: ManagerContext, state: NetworkState, router: RouterState): void {
  markRouterStale(state, router.bit);
  router.resyncing = true;
  router.resyncFailed = false;
  if (ctx.config.host.staleRouteTimeoutS > 0) armStaleTimer(ctx, state, router);
  else {
    ctx.clock.clearTimeout(router.staleTimer);
    router.staleTimer = undefined;
  }
}

export function endResync(ctx: ManagerContext, state: NetworkState, router: RouterState): void {
  if (!router.resyncing) return;
  router.resyncing = false;
  if (router.resyncFailed) {
    // Routes of a refused batch are still in the router's FIB: keep them stale rather than
    // sweep them, for as long as the router stays connected (it retries the resync).
    ctx.clock.clearTimeout(router.staleTimer);
    router.staleTimer = undefined;
    // Adopted entries may be this router's refused routes: they too stay while it is connected.
    clearAdoptionTimer(ctx, state);
    throw new BatchRejectedError(
      'ERR_RESYNC_INCOMPLETE',
      'a batch of this resync was refused: stale routes are kept until a complete resync',
    );
  }
  state.adoptedPending.delete(router.key);
  sweepStale(ctx, state, router.bit, state.adoptedPending.size === 0, 'end of resync');
  if (state.adoptedPending.size === 0) clearAdoptionTimer(ctx, state);
}

/** One router's announcements (routes and neighbours) go stale; entries every owner of which is stale are marked STALE. */
export function markRouterStale(state: NetworkState, bits: number): void {
  for (const [key, n] of state.neighbours) {
    if (!(n.owners & bits)) continue;
    const staleOwners = (n.staleOwners | (n.owners & bits)) >>> 0;
    state.neighbours.set(key, { ...n, staleOwners, stale: (n.owners & ~staleOwners) === 0 });
  }
  for (const table of [state.tables[4], state.tables[6]]) {
    table.markRouterStale(bits, (slot) => {
      const via = table.vias[table.via[slot]!];
      return via === undefined || (state.neighbours.get(via.neighbourKey)?.stale ?? true);
    });
  }
}

export function armStaleTimer(ctx: ManagerContext, state: NetworkState, router: RouterState): void {
  ctx.clock.clearTimeout(router.staleTimer);
  router.staleTimer = ctx.clock.setTimeout(() => {
    router.staleTimer = undefined;
    // Paper IV-B with RFC 4724: a router that does not come back loses its replica.
    trySweep(ctx, state, router, `no complete resync within ${ctx.config.host.staleRouteTimeoutS} s`);
  }, ctx.config.host.staleRouteTimeoutS * 1000);
}

/** After a host restart: adopted routes go when every router resynced, or when this timer ends. */
export function armAdoptionTimer(ctx: ManagerContext, state: NetworkState): void {
  clearAdoptionTimer(ctx, state);
  state.adoptionTimer = ctx.clock.setTimeout(() => {
    state.adoptionTimer = undefined;
    state.adoptedPending.clear();
    try {
      sweepStale(
        ctx,
        state,
        0,
        true,
        `no complete resync within ${ctx.config.host.staleRouteTimeoutS} s of the restart`,
      );
    } catch {
      // sweepStale logged it; the next router's resync sweeps them.
    }
  }, ctx.config.host.staleRouteTimeoutS * 1000);
}

export function clearAdoptionTimer(ctx: ManagerContext, state: NetworkState): void {
  ctx.clock.clearTimeout(state.adoptionTimer);
  state.adoptionTimer = undefined;
}

/** sweepStale of one router, for timers and other callers that cannot take an exception (it is logged, and retried). */
export function trySweep(ctx: ManagerContext, state: NetworkState, router: RouterState | null, reason: string): void {
  try {
    if (router) sweepStale(ctx, state, router.bit, state.adoptedPending.size === 0, reason);
    else sweepStale(ctx, state, 0, true, reason);
  } catch {
    // sweepStale logged it and re-armed the timer.
  }
}

/**
 * Deletes the stale announcements of the routers in `bits`: an entry that no other router
 * announces goes (routes that used its neighbours go to the VM, host routes of neighbours
 * inside a withdrawn router route are decided again); an entry another router still announces
 * stays, and if the swept router's announcement was the one installed, it goes to the VM until
 * a router announces it again. Adopted entries go when `adopted` is set.
 */
function sweepStale(ctx: ManagerContext, state: NetworkState, bits: number, adopted: boolean, reason: string): void {
  for (const router of state.routers.values()) {
    if (!(router.bit & bits)) continue;
    ctx.clock.clearTimeout(router.staleTimer);
    router.staleTimer = undefined;
  }
  // Neighbours: the swept routers' stale reports go; one that no router reports any more is gone.
  const after = new Map<string, NeighbourEntry | null>();
  const gone: NeighbourEntry[] = [];
  for (const [key, n] of state.neighbours) {
    const swept = n.staleOwners & bits;
    if (!swept) continue;
    const owners = (n.owners & ~swept) >>> 0;
    if (owners === 0) {
      after.set(key, null);
      gone.push(n);
    } else {
      const staleOwners = (n.staleOwners & ~swept) >>> 0;
      after.set(key, { ...n, owners, staleOwners, stale: (owners & ~staleOwners) === 0 });
    }
  }
  const op = new Operation((key) => (after.has(key) ? (after.get(key) ?? undefined) : state.neighbours.get(key)));
  let withdrawn = 0;
  try {
    operate(
      ctx,
      state,
      op,
      () => {
        const addresses = neighbourAddresses(state);
        for (const table of [state.tables[4], state.tables[6]]) {
          const track = addresses.has(table.family);
          const { origin, staleOwners, owners, announcer } = table;
          for (let slot = 0; slot < table.top; slot++) {
            const o = origin[slot]!;
            if (o === ORIGIN_ADOPTED) {
              if (!adopted) continue;
              table.withdrawRow(table.stage(slot));
              withdrawn++;
              continue;
            }
            if (o !== ORIGIN_ROUTER) continue;
            const swept = staleOwners[slot]! & bits;
            if (!swept) continue;
            const row = table.stage(slot);
            const left = (owners[slot]! & ~swept) >>> 0;
            const holds = track && mayHoldNeighbour(addresses, table, slot);
            if (left === 0) {
              if (holds) op.changed[table.family].push(slot);
              table.withdrawRow(row);
              withdrawn++;
              continue;
            }
            const leftStale = (staleOwners[slot]! & ~swept) >>> 0;
            const stale = (left & ~leftStale) === 0 ? STALE : 0;
            const installed = announcer[slot]!;
            if (installed !== NO_ANNOUNCER && ((1 << installed) & swept) !== 0) {
              // The next hop was the swept router's: the VM forwards until another router announces it again.
              table.setRow(row, ORIGIN_ROUTER, KIND_VIA_VM, -1, -1, (table.rows.bits[row]! & EVICTED) | stale);
              table.setRowOwners(row, left, leftStale, NO_ANNOUNCER);
              if (holds) op.changed[table.family].push(slot);
            } else {
              table.setRowBits(row, (table.rows.bits[row]! & ~STALE) | stale);
              table.setRowOwners(row, left, leftStale, installed);
            }
          }
        }
        for (const n of gone) stageDependents(state, n.family, n.key);
        // Host routes of the neighbours that changed (gone, or their STALE mark) are decided again.
        const decide = [...after.keys()].map((key) => state.neighbours.get(key)!);
        stageNeighbourRoutes(ctx, state, op, decide);
        if (liveAfter(state.tables[4]) + liveAfter(state.tables[6]) === 0)
          op.removeDefaults = [...state.syntheticDefaults];
      },
      () => {
        for (const [key, n] of after) {
          if (n === null) forgetNeighbour(state, state.neighbours.get(key)!);
          else state.neighbours.set(key, n);
        }
        for (const family of op.removeDefaults) state.syntheticDefaults.delete(family);
        if (state.tables[4].used + state.tables[6].used === 0) state.coverIndex = null;
      },
    );
  } catch (error) {
    ctx.logger.error(
      { network: state.definition.name, err: errorText(error) },
      'sweeping stale routes failed; retrying after the hold time',
    );
    for (const router of state.routers.values()) if (router.bit & bits) armStaleTimer(ctx, state, router);
    throw error;
  }
  if (withdrawn > 0) ctx.logger.info({ network: state.definition.name, withdrawn, reason }, 'stale routes withdrawn');
}

/** Every router's announcements and the adopted entries go (a network removed, or a router removed: `bits`). */
export function withdrawAll(ctx: ManagerContext, state: NetworkState, reason: string, bits = ALL_ROUTERS): void {
  markRouterStale(state, bits);
  try {
    sweepStale(ctx, state, bits, bits === ALL_ROUTERS, reason);
  } catch {
    // logged by sweepStale
  }
  for (const router of state.routers.values()) {
    if (!(router.bit & bits)) continue;
    ctx.clock.clearTimeout(router.staleTimer);
    router.staleTimer = undefined;
  }
  if (bits === ALL_ROUTERS) clearAdoptionTimer(ctx, state);
}
