// Plan, write, roll back: every change of a network (a batch, a sweep, an eviction) is one
// operation. Rows are staged against the committed tables, targets resolved, the map writes
// planned from the difference and written adds-then-deletes, and only then committed; a failed
// write puts the maps back as the tables say they were (docs/manager.md, "Atomicity and rollback").
import type { Prefix, Route4Columns, RouteSpec } from '../dataplane/index.js';
import { ValidationError } from '../errors/index.js';
import { errorCode, errorText, type ManagerContext, type NetworkState, type Operation } from './state.js';
import { ORIGIN_FREE, TARGET_NONE, TARGET_VIA_VM, type RouteTable } from './table.js';
import { resolveTargets, targetOf } from './targets.js';
import { BatchRejectedError } from './types.js';

/**
 * One family's map writes of an operation, as row indices (-1: memory control's default
 * route) with the target to write; typed arrays, as a full table writes a million at once.
 */
interface FamilyWrites {
  upserts: Int32Array;
  upsertTargets: Int32Array;
  upsertCount: number;
  deletes: Int32Array;
  deleteCount: number;
}

/**
 * Runs one change of a network: `stage` fills the tables' rows, then targets are resolved,
 * the maps written and the rows committed (then `afterCommit`). Any failure leaves the
 * table, the maps and the next hops as they were, and throws.
 */
export function operate(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  stage: () => void,
  afterCommit?: () => void,
): void {
  const { 4: t4, 6: t6 } = state.tables;
  t4.begin();
  t6.begin();
  try {
    stage();
    resolveTargets(ctx, state, op);
    writeMaps(ctx, state, op);
  } catch (error) {
    t4.abort(state.hooks[4]);
    t6.abort(state.hooks[6]);
    state.interfaces.prune();
    ctx.droppedNexthops.length = 0;
    ctx.releaseUnused(op.acquired);
    throw error;
  }
  t4.commit(state.hooks[4]);
  t6.commit(state.hooks[6]);
  afterCommit?.();
  state.interfaces.prune();
  // Next hops are freed only once no map entry points at them any more.
  const dropped = ctx.droppedNexthops.splice(0);
  ctx.releaseUnused([...dropped, ...op.acquired]);
}

/** The map writes of one family: rows whose target changes, and memory control's default route. */
function planWrites(op: Operation, table: RouteTable): FamilyWrites {
  const rows = table.rows;
  const { slot: slots, origin: origins, target: rowTargets } = rows;
  const { target: installed } = table;
  // Two passes: count, then fill arrays of the right size.
  let upsertCount = 0;
  let deleteCount = 0;
  for (let r = 0; r < rows.count; r++) {
    const slot = slots[r]!;
    const before = table.isLive(slot) ? installed[slot]! : TARGET_NONE;
    const after = origins[r] === ORIGIN_FREE ? TARGET_NONE : rowTargets[r]!;
    if (after === before) continue;
    if (after !== TARGET_NONE) upsertCount++;
    else deleteCount++;
  }
  const writes: FamilyWrites = {
    upserts: new Int32Array(upsertCount + 1),
    upsertTargets: new Int32Array(upsertCount + 1),
    upsertCount: 0,
    deletes: new Int32Array(deleteCount + 1),
    deleteCount: 0,
  };
  for (let r = 0; r < rows.count; r++) {
    const slot = slots[r]!;
    const before = table.isLive(slot) ? installed[slot]! : TARGET_NONE;
    const after = origins[r] === ORIGIN_FREE ? TARGET_NONE : rowTargets[r]!;
    if (after === before) continue;
    if (after !== TARGET_NONE) {
      writes.upserts[writes.upsertCount] = r;
      writes.upsertTargets[writes.upsertCount++] = after;
    } else {
      writes.deletes[writes.deleteCount++] = r;
    }
  }
  const family = table.family;
  const defaultSlot = table.find(Buffer.alloc(table.width), 0, 0);
  const defaultRow = defaultSlot >= 0 && table.staged(defaultSlot) ? table.rowOf[defaultSlot]! : -1;
  const deletesDefaultRow = defaultRow >= 0 && writes.deletes.subarray(0, writes.deleteCount).includes(defaultRow);
  if (op.addDefaults.includes(family)) {
    writes.upserts[writes.upsertCount] = -1;
    writes.upsertTargets[writes.upsertCount++] = TARGET_VIA_VM;
    // A synthetic default replaces an evicted router default in place: never delete it after writing it.
    if (deletesDefaultRow) {
      const kept = writes.deletes.subarray(0, writes.deleteCount).filter((r) => r !== defaultRow);
      writes.deletes.set(kept);
      writes.deleteCount = kept.length;
    }
  } else if (op.removeDefaults.includes(family)) {
    let finalTarget = TARGET_NONE;
    if (defaultRow >= 0) finalTarget = rows.origin[defaultRow] === ORIGIN_FREE ? TARGET_NONE : rows.target[defaultRow]!;
    else if (defaultSlot >= 0 && table.isLive(defaultSlot)) finalTarget = table.target[defaultSlot]!;
    if (finalTarget === TARGET_NONE && !deletesDefaultRow) writes.deletes[writes.deleteCount++] = -1;
  }
  return writes;
}

/** Writes an operation's changes: IPv4 adds as one addRoutes4 batch, IPv6 adds, then deletes. */
function writeMaps(ctx: ManagerContext, state: NetworkState, op: Operation): void {
  const netId = state.definition.id;
  const { 4: t4, 6: t6 } = state.tables;
  const w4 = planWrites(op, t4);
  const w6 = planWrites(op, t6);
  if (w4.upsertCount + w4.deleteCount + w6.upsertCount + w6.deleteCount === 0) return;
  try {
    // Adds before deletes: a more specific route replacing a wider one never leaves a gap. The
    // rollback is restoreMaps', from the tables: the data plane reads nothing before it writes
    // (its own rollback read a network's whole table before each large batch: quadratic in a resync).
    const undo = { undo: 'caller' } as const;
    if (w4.upsertCount > 0) ctx.dp.addRoutes4(netId, columns4(t4, w4.upserts, w4.upsertTargets, w4.upsertCount), undo);
    if (w6.upsertCount > 0) ctx.dp.addRoutes(netId, specs(t6, w6.upserts, w6.upsertTargets, w6.upsertCount), undo);
    const deletes: Prefix[] = [];
    for (const [table, w] of [
      [t4, w4],
      [t6, w6],
    ] as const)
      for (let k = 0; k < w.deleteCount; k++) deletes.push(rowPrefix(table, w.deletes[k]!));
    if (deletes.length > 0) ctx.dp.deleteRoutes(netId, deletes);
  } catch (error) {
    // The table is not updated yet: it still says what the maps held before this change.
    restoreMaps(ctx, state, t4, w4);
    restoreMaps(ctx, state, t6, w6);
    if (error instanceof ValidationError) throw error;
    throw new BatchRejectedError(
      errorCode(error),
      `writing network ${state.definition.name}'s maps failed, nothing changed: ${errorText(error)}`,
      { cause: error },
    );
  }
}

/** The prefix of a row (-1: the default route). */
function rowPrefix(table: RouteTable, row: number): Prefix {
  if (row < 0) return { family: table.family, addr: Buffer.alloc(table.width), length: 0 };
  const slot = table.rows.slot[row]!;
  return { family: table.family, addr: table.addressOf(slot), length: table.length[slot]! };
}

/** Data plane columns of IPv4 rows (-1: the default route) and their targets. */
function columns4(table: RouteTable, rowList: Int32Array, targets: Int32Array, count: number): Route4Columns {
  const columns = {
    addrs: new Uint32Array(count),
    lengths: new Uint8Array(count),
    nexthops: new Uint32Array(count),
    flags: new Uint32Array(count),
    count,
  };
  const slots = table.rows.slot;
  for (let i = 0; i < count; i++) {
    const row = rowList[i]!;
    const target = targets[i]!;
    if (row >= 0) {
      const slot = slots[row]!;
      columns.addrs[i] = table.addr4[slot]!;
      columns.lengths[i] = table.length[slot]!;
    }
    if (target > 0) columns.nexthops[i] = target;
    else columns.flags[i] = -target;
  }
  return columns;
}

function specs(table: RouteTable, rowList: Int32Array, targets: Int32Array, count: number): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (let i = 0; i < count; i++) out.push({ prefix: rowPrefix(table, rowList[i]!), target: targetOf(targets[i]!)! });
  return out;
}

/** Puts the map entries of a family's writes back to what the table says they were. */
function restoreMaps(ctx: ManagerContext, state: NetworkState, table: RouteTable, writes: FamilyWrites): void {
  const touched = [
    ...writes.upserts.subarray(0, writes.upsertCount),
    ...writes.deletes.subarray(0, writes.deleteCount),
  ];
  if (touched.length === 0) return;
  const netId = state.definition.id;
  const restore: number[] = [];
  const targets: number[] = [];
  const remove: Prefix[] = [];
  for (const row of touched) {
    let before = TARGET_NONE;
    if (row >= 0) {
      const slot = table.rows.slot[row]!;
      if (table.isLive(slot)) before = table.target[slot]!;
    } else {
      const slot = table.find(Buffer.alloc(table.width), 0, 0);
      if (slot >= 0 && table.isLive(slot) && table.target[slot] !== TARGET_NONE) before = table.target[slot]!;
      else if (state.syntheticDefaults.has(table.family)) before = TARGET_VIA_VM;
    }
    if (before !== TARGET_NONE) {
      restore.push(row);
      targets.push(before);
    } else {
      remove.push(rowPrefix(table, row));
    }
  }
  try {
    // Removes first: a write refused by a full table has room again before anything is rewritten.
    if (remove.length > 0) ctx.dp.deleteRoutes(netId, remove);
    if (restore.length > 0) {
      const rowList = Int32Array.from(restore);
      const targetList = Int32Array.from(targets);
      const undo = { undo: 'caller' } as const;
      if (table.family === 4) ctx.dp.addRoutes4(netId, columns4(table, rowList, targetList, rowList.length), undo);
      else ctx.dp.addRoutes(netId, specs(table, rowList, targetList, rowList.length), undo);
    }
  } catch (error) {
    // The table still says what should be there: the next resync or sweep repairs the maps.
    ctx.logger.error(
      { network: state.definition.name, err: errorText(error) },
      'rolling back a failed map write failed too',
    );
  }
}
