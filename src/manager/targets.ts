// Target resolution: what the maps should hold for each staged row. Paper IV-B: the host
// forwards what it can (a next hop built by the manager from the network's own segment and the
// neighbour's MAC), the VM forwards the rest. One resolution per via (gateway), not per route.
import type { RouteTarget } from '../dataplane/index.js';
import type { ManagerContext, NetworkState, Operation } from './state.js';
import {
  EVICTED,
  KIND_BLACKHOLE,
  KIND_LOCAL,
  KIND_VIA_VM,
  ORIGIN_ADOPTED,
  ORIGIN_FREE,
  TARGET_BLACKHOLE,
  TARGET_LOCAL,
  TARGET_NONE,
  TARGET_VIA_VM,
  UNRESOLVED,
  type RouteTable,
  type Via,
} from './table.js';
import { QuotaExceededError } from './types.js';

/** A table's target number as the data plane's RouteTarget; null for TARGET_NONE. */
export function targetOf(code: number): RouteTarget | null {
  if (code > 0) return { kind: 'nexthop', nexthopId: code };
  switch (code) {
    case TARGET_VIA_VM:
      return { kind: 'via-vm' };
    case TARGET_LOCAL:
      return { kind: 'local' };
    case TARGET_BLACKHOLE:
      return { kind: 'blackhole' };
    default:
      return null;
  }
}

/** A RouteTarget as the table's target number. */
export function codeOf(target: RouteTarget): number {
  switch (target.kind) {
    case 'nexthop':
      return target.nexthopId;
    case 'via-vm':
      return TARGET_VIA_VM;
    case 'local':
      return TARGET_LOCAL;
    case 'blackhole':
      return TARGET_BLACKHOLE;
  }
}

/** The target of every staged row: one resolution per via (gateway), not per route. */
export function resolveTargets(ctx: ManagerContext, state: NetworkState, op: Operation): void {
  for (const table of [state.tables[4], state.tables[6]]) {
    // Views as locals (nothing below reallocates them): a full table is a million rows.
    const { count, origin: origins, bits: rowBits, kind: kinds, via: vias, slot: slots } = table.rows;
    const { viaTarget, viaUnresolved, target: installed } = table;
    for (let r = 0; r < count; r++) {
      const origin = origins[r]!;
      if (origin === ORIGIN_FREE) {
        table.resolveRow(r, rowBits[r]!, TARGET_NONE);
        continue;
      }
      let bits = rowBits[r]! & ~UNRESOLVED;
      let target: number;
      if (bits & EVICTED) target = TARGET_NONE;
      else if (origin === ORIGIN_ADOPTED) target = installed[slots[r]!]!;
      else {
        switch (kinds[r]) {
          case KIND_LOCAL:
            target = TARGET_LOCAL;
            break;
          case KIND_BLACKHOLE:
            target = TARGET_BLACKHOLE;
            break;
          case KIND_VIA_VM:
            target = TARGET_VIA_VM;
            break;
          default: {
            const via = vias[r]!;
            // Paper II: what the host cannot forward itself goes to the VM, as a route to the VM.
            // A connected route (no gateway) needs a MAC per destination: neighbour host routes
            // carry the ones the router knows; the router resolves the rest.
            if (via < 0) target = TARGET_VIA_VM;
            else {
              if (!table.viaResolved(via)) resolveVia(ctx, state, op, table, via);
              target = viaTarget[via]!;
              if (viaUnresolved[via]) bits |= UNRESOLVED;
            }
          }
        }
      }
      table.resolveRow(r, bits, target);
    }
  }
}

function resolveVia(ctx: ManagerContext, state: NetworkState, op: Operation, table: RouteTable, viaId: number): void {
  const via: Via = table.vias[viaId]!;
  const segment = state.interfaces.get(via.ifaceId)?.segment;
  if (!segment) {
    table.resolveVia(viaId, TARGET_VIA_VM, false);
    return;
  }
  const mac = op.neighbour(via.neighbourKey)?.mac;
  // Paper IV-B: until the next hop's MAC is known, the VM forwards.
  if (!mac) {
    table.resolveVia(viaId, TARGET_VIA_VM, true);
    return;
  }
  const owner = ctx.routerMacs.get(mac);
  if (owner !== undefined) {
    // A virtual router's MAC is never a fast-path next hop: that traffic is the VM's to send (and pay for).
    ctx.logger.debug(
      { network: state.definition.name, mac, owner },
      'next hop is a virtual router: route goes via the VM',
    );
    table.resolveVia(viaId, TARGET_VIA_VM, false);
    return;
  }
  const cacheKey = `${segment.ifindex}|${segment.vlan}|${segment.routerMac}|${segment.linkSlot}|${mac}`;
  let nexthopId = op.nexthops.get(cacheKey);
  if (nexthopId === undefined) {
    // Next hops are built by the manager from the segment, never by the router.
    nexthopId = ctx.dp.nexthop({
      netId: state.definition.id,
      ifindex: segment.ifindex,
      linkSlot: segment.linkSlot,
      vlan: segment.vlan,
      smac: segment.routerMac,
      dmac: mac,
    });
    // Pushed first: if the quota refuses it, the operation's abort releases it.
    op.acquired.push(nexthopId);
    if (!state.nexthopIds.has(nexthopId)) {
      const quota = ctx.quota(state, 'nexthops');
      if (state.nexthopIds.size >= quota)
        throw new QuotaExceededError(state.definition.name, 'nexthops', quota, state.nexthopIds.size + 1);
      ctx.holdNexthop(state, nexthopId);
    }
    op.nexthops.set(cacheKey, nexthopId);
  }
  table.resolveVia(viaId, nexthopId, false);
}
