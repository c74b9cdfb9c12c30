// Memory control (paper IV-A): when the controller finds a network over its share of FIB
// memory it evicts the network's most specific routes from the maps and sends what they carried
// to the VM through a default route, so that nothing is lost, only slowed; restoreRoutes puts
// them back (docs/manager.md, "Memory control").
import { ValidationError } from '../errors/index.js';
import { maskedAddress, type Family } from '../net/index.js';
import { CoverIndexBuilder, type CoverIndex } from './cover.js';
import { errorText, operationOn, type ManagerContext, type NetworkState, type Operation } from './state.js';
import { EVICTED, ORIGIN_ADOPTED, TARGET_NONE, UNRESOLVED, type RouteTable } from './table.js';
import { operate } from './writes.js';

/**
 * Paper IV-A memory control: removes `fraction` of a network's installed routes from the
 * maps, most specific first, and installs a default route to the VM so that no packet is
 * lost, only slowed. A route that covers an evicted one is evicted with it (otherwise it
 * would catch the evicted route's packets). Evicted routes are kept for restoreRoutes.
 * Returns how many routes were evicted.
 */
export function evictRoutes(ctx: ManagerContext, network: number | string, fraction: number): number {
  if (!(fraction >= 0 && fraction <= 1))
    throw new ValidationError('fraction', `${fraction} must be a number from 0 to 1`);
  const state = ctx.state(network);
  const wanted = Math.ceil(fraction * (state.tables[4].installed + state.tables[6].installed));
  if (wanted === 0) return 0;
  const order = evictionOrder(state);
  let chosen = 0;
  const families = new Set<Family>();
  const op = operationOn(state);
  try {
    operateEviction(ctx, state, op, wanted, order, families, (n) => {
      chosen = n;
    });
  } catch (error) {
    // All or nothing: nothing was evicted. The controller tries again next period.
    state.mapWriteFailures++;
    throw error;
  }
  ctx.logger.info(
    { network: state.definition.name, evicted: chosen, fraction },
    'routes evicted for memory control; a default route now goes to the VM',
  );
  return chosen;
}

function operateEviction(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  wanted: number,
  order: { families: Uint8Array; slots: Int32Array },
  families: Set<Family>,
  done: (chosen: number) => void,
): void {
  let chosen = 0;
  operate(
    ctx,
    state,
    op,
    () => {
      const choose = (table: RouteTable, slot: number): void => {
        const row = table.stage(slot);
        // A route adopted after a host restart has no announcement to restore from: it is dropped,
        // and comes back (evicted or not) with the router's resync.
        if (table.rows.origin[row] === ORIGIN_ADOPTED) table.withdrawRow(row);
        else table.setRowBits(row, (table.rows.bits[row]! | EVICTED) & ~UNRESOLVED);
        chosen++;
        families.add(table.family);
      };
      for (let k = 0; k < order.slots.length && chosen < wanted; k++) {
        const table = state.tables[order.families[k] === 4 ? 4 : 6];
        const slot = order.slots[k]!;
        if (table.staged(slot)) continue;
        choose(table, slot);
        // Every installed route that covers this one goes too.
        const addr = table.family === 4 ? null : table.addressOf(slot);
        const addr4 = table.family === 4 ? table.addr4[slot]! : 0;
        for (let length = table.length[slot]! - 1; length >= 0; length--) {
          if (table.usedLengths[length] === 0) continue;
          const cover =
            addr === null
              ? table.find4(length === 0 ? 0 : (addr4 & (0xffffffff << (32 - length))) >>> 0, length)
              : table.find(maskedAddress(addr, length), 0, length);
          if (cover >= 0 && !table.staged(cover) && table.isLive(cover) && table.target[cover] !== TARGET_NONE)
            choose(table, cover);
        }
      }
      op.addDefaults = [...families].filter((f) => !state.syntheticDefaults.has(f));
    },
    () => {
      for (const family of op.addDefaults) state.syntheticDefaults.add(family);
      state.coverIndex = evictedIndex(state);
    },
  );
  done(chosen);
}

/**
 * Puts a network's evicted routes back into the maps and removes memory control's default
 * routes. Most specific first, so a route never returns before the more specific ones it
 * covers. When the maps refuse (full), it keeps what went in, in ever smaller steps, and
 * leaves the rest evicted behind the default to the VM for the next call; the defaults go
 * only with the last evicted route. Returns how many routes were restored.
 */
export function restoreRoutes(ctx: ManagerContext, network: number | string): number {
  const state = ctx.state(network);
  const pending = evictedMostSpecificFirst(state);
  let restored = 0;
  let step = Math.max(1, pending.length);
  let from = 0;
  for (;;) {
    const to = Math.min(pending.length, from + step);
    try {
      restoreSlots(ctx, state, pending, from, to, to === pending.length);
    } catch (error) {
      if (step > 1) {
        step = Math.ceil(step / 2);
        continue;
      }
      state.mapWriteFailures++;
      ctx.failures.report(
        `${state.definition.name}:restore`,
        { network: state.definition.name, restored, left: pending.length - from, err: errorText(error) },
        'restoring evicted routes stopped: the maps refused; the rest stay evicted (via the VM) until the next restore',
      );
      break;
    }
    restored += to - from;
    from = to;
    if (from >= pending.length) break;
  }
  ctx.logger.info(
    { network: state.definition.name, restored, left: pending.length - restored },
    'evicted routes restored',
  );
  return restored;
}

/** A network's evicted entries, most specific first (family, slot). */
function evictedMostSpecificFirst(state: NetworkState): { family: Family; slot: number; hostBits: number }[] {
  const out: { family: Family; slot: number; hostBits: number }[] = [];
  for (const table of [state.tables[4], state.tables[6]]) {
    for (let slot = 0; slot < table.top; slot++) {
      if (table.isLive(slot) && table.bits[slot]! & EVICTED)
        out.push({ family: table.family, slot, hostBits: table.maxLength - table.length[slot]! });
    }
  }
  return out.sort((a, b) => a.hostBits - b.hostBits);
}

/** One all-or-nothing step of restoreRoutes: entries [from, to) of `pending`; the last step removes the defaults. */
function restoreSlots(
  ctx: ManagerContext,
  state: NetworkState,
  pending: readonly { family: Family; slot: number }[],
  from: number,
  to: number,
  last: boolean,
): void {
  const op = operationOn(state);
  operate(
    ctx,
    state,
    op,
    () => {
      for (let k = from; k < to; k++) {
        const { family, slot } = pending[k]!;
        const table = state.tables[family];
        if (!table.isLive(slot) || !(table.bits[slot]! & EVICTED)) continue;
        const row = table.stage(slot);
        table.setRowBits(row, table.rows.bits[row]! & ~EVICTED);
      }
      if (last) op.removeDefaults = [...state.syntheticDefaults];
    },
    () => {
      if (last) {
        state.syntheticDefaults.clear();
        state.coverIndex = null;
      } else {
        state.coverIndex = evictedIndex(state);
      }
    },
  );
}

/** Installed entries, most specific first (then IPv4 before IPv6, then by address): memory control's order. */
function evictionOrder(state: NetworkState): { families: Uint8Array; slots: Int32Array } {
  const t4 = state.tables[4];
  const t6 = state.tables[6];
  // IPv4 as one sortable number per route: host bits, then address.
  const keys4: number[] = [];
  for (let slot = 0; slot < t4.top; slot++) {
    if (t4.isLive(slot) && t4.target[slot] !== TARGET_NONE)
      keys4.push((32 - t4.length[slot]!) * 0x100000000 + t4.addr4[slot]!);
  }
  const sorted4 = Float64Array.from(keys4).sort();
  const slots6: number[] = [];
  for (let slot = 0; slot < t6.top; slot++) if (t6.isLive(slot) && t6.target[slot] !== TARGET_NONE) slots6.push(slot);
  const hex6 = new Map(slots6.map((s) => [s, t6.hex6(s)]));
  slots6.sort((a, b) => t6.length[b]! - t6.length[a]! || (hex6.get(a)! < hex6.get(b)! ? -1 : 1));
  const families = new Uint8Array(sorted4.length + slots6.length);
  const slots = new Int32Array(families.length);
  let i4 = 0;
  let i6 = 0;
  for (let k = 0; k < families.length; k++) {
    const hostBits4 = i4 < sorted4.length ? Math.floor(sorted4[i4]! / 0x100000000) : Infinity;
    const hostBits6 = i6 < slots6.length ? 128 - t6.length[slots6[i6]!]! : Infinity;
    if (hostBits4 <= hostBits6) {
      const key = sorted4[i4++]!;
      const hostBits = Math.floor(key / 0x100000000);
      families[k] = 4;
      slots[k] = t4.find4(key - hostBits * 0x100000000, 32 - hostBits);
    } else {
      families[k] = 6;
      slots[k] = slots6[i6++]!;
    }
  }
  return { families, slots };
}

function evictedIndex(state: NetworkState): CoverIndex {
  const builder = new CoverIndexBuilder();
  const t4 = state.tables[4];
  const t6 = state.tables[6];
  for (let slot = 0; slot < t4.top; slot++)
    if (t4.isLive(slot) && t4.bits[slot]! & EVICTED) builder.add4(t4.addr4[slot]!, t4.length[slot]!);
  for (let slot = 0; slot < t6.top; slot++) {
    if (t6.isLive(slot) && t6.bits[slot]! & EVICTED)
      t6.withAddress(slot, (bytes, offset) => builder.add6(bytes, offset, t6.length[slot]!));
  }
  return builder.build();
}
