// Neighbours and their host routes. Paper IV-B: for performance packets are forwarded by the
// host; on a connected subnet that takes a next hop per destination, so each neighbour the
// router reports there gets a host route (/32, /128) whose target is that neighbour's MAC,
// and a new MAC moves every route through that neighbour (docs/manager.md, "Host routes").
import { ValidationError } from '../errors/index.js';
import {
  formatAddress,
  isUnicastAddress,
  isUnicastMac,
  macFromBytes,
  maskedAddress,
  type Family,
} from '../net/index.js';
import type { NeighbourBatch, NeighbourColumns, NeighbourKeyColumns } from '../wire/index.js';
import { internInterface, viaFor } from './interfaces.js';
import { checkNeighbourQuota, checkRouteQuotas } from './quota.js';
import { NeighbourAddresses } from './registry.js';
import {
  FAMILIES,
  hexOf,
  Operation,
  type ManagerContext,
  type NeighbourEntry,
  type NetworkState,
  type RouterState,
} from './state.js';
import {
  EVICTED,
  KIND_UNICAST,
  ORIGIN_FREE,
  ORIGIN_NEIGHBOUR,
  ORIGIN_ROUTER,
  STALE,
  type RouteTable,
} from './table.js';
import { operate } from './writes.js';

export /** True when a sorted list of host-order IPv4 addresses has one inside addr/length. */
function containsAny4(sorted: Uint32Array, addr: number, length: number): boolean {
  const n = sorted.length;
  const last = length === 32 ? addr : addr + (0xffffffff >>> length);
  // Most prefixes of a full table are nowhere near the router's connected subnets.
  if (n === 0 || last < sorted[0]! || addr > sorted[n - 1]!) return false;
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < addr) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && sorted[lo]! <= last;
}

/** False when no neighbour address can be inside the slot's prefix. */
export function mayHoldNeighbour(addresses: NeighbourAddresses, table: RouteTable, slot: number): boolean {
  return table.family === 4
    ? containsAny4(addresses.v4, table.addr4[slot]!, table.length[slot]!)
    : table.withAddress(slot, (bytes, offset) => addresses.mayContain6(bytes, offset, table.length[slot]!));
}

/** Stages every entry whose target depends on a neighbour (gateway routes and its host route). */
export function stageDependents(state: NetworkState, family: Family, neighbourKey: string): void {
  const table = state.tables[family];
  for (const viaId of state.viasByNeighbour[family].get(neighbourKey) ?? []) {
    table.slotsOf(viaId, (slot) => {
      if (!table.staged(slot)) table.stage(slot);
    });
  }
}

/**
 * Decides the host routes of neighbours again: those of `neighbours`, and those of every
 * neighbour inside a router entry this operation changes.
 */
export function stageNeighbourRoutes(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  neighbours: Iterable<{ family: Family; addr: Buffer }>,
): void {
  const candidates: Record<Family, Map<string, Buffer>> = { 4: new Map(), 6: new Map() };
  for (const n of neighbours) candidates[n.family].set(n.addr.toString('hex'), n.addr);
  const addresses = neighbourAddresses(state);
  for (const family of FAMILIES) {
    const table = state.tables[family];
    const found = candidates[family];
    for (const slot of op.changed[family]) {
      if (family === 4) {
        const low = table.addr4[slot]!;
        const length = table.length[slot]!;
        const high = low + (length === 0 ? 0x100000000 : 2 ** (32 - length)) - 1;
        addresses.inRange4(low, high, (addr) => {
          const bytes = Buffer.allocUnsafe(4);
          bytes.writeUInt32BE(addr, 0);
          found.set(bytes.toString('hex'), bytes);
        });
      } else {
        const low = table.addressOf(slot);
        const high = Buffer.from(low);
        const length = table.length[slot]!;
        for (let byte = length >> 3; byte < 16; byte++)
          high[byte] = byte === length >> 3 ? high[byte]! | (0xff >> (length & 7)) : 0xff;
        addresses.inRange6(low.toString('hex'), high.toString('hex'), (hex) => found.set(hex, Buffer.from(hex, 'hex')));
      }
    }
    for (const addr of found.values()) stageNeighbourRoute(ctx, state, op, table, addr);
  }
}

/**
 * The host route (/32, /128) of one neighbour address. It exists when the router's own
 * longest match for the address is a connected route (unicast, no gateway) on the interface
 * the neighbour was seen on, that interface is on one of the network's segments, and the
 * MAC is not a virtual router's. The router's own route for the same prefix always wins.
 */
function stageNeighbourRoute(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  table: RouteTable,
  addr: Buffer,
): void {
  // Paper IV-B: for performance packets are forwarded by Dom0; on a connected subnet that takes a next hop per destination.
  const slot = table.find(addr, 0, table.maxLength);
  const current = slot >= 0 ? table.viewOrigin(slot) : ORIGIN_FREE;
  if (current === ORIGIN_ROUTER) return;
  const neighbour = hostRouteNeighbour(ctx, state, op, table, addr);
  if (neighbour) {
    const row = slot >= 0 ? table.stage(slot) : table.create(addr, 0, table.maxLength);
    const via = viaFor(state, table, neighbour.ifaceId, addr, 0);
    // An evicted entry replaced in place stays evicted (memory control decides when it returns).
    const bits = (table.rows.bits[row]! & EVICTED) | (neighbour.stale ? STALE : 0);
    table.setRow(row, ORIGIN_NEIGHBOUR, KIND_UNICAST, via, neighbour.ifaceId, bits);
  } else if (current === ORIGIN_NEIGHBOUR) {
    table.withdrawRow(table.stage(slot));
  }
}

/** The neighbour that should have a host route to `addr`, if any (see stageNeighbourRoute). */
function hostRouteNeighbour(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  table: RouteTable,
  addr: Buffer,
): NeighbourEntry | undefined {
  const match = longestRouterMatch(table, addr);
  if (match < 0 || table.viewKind(match) !== KIND_UNICAST || table.viewVia(match) >= 0) return undefined;
  const connected = state.interfaces.get(table.viewIface(match));
  if (!connected?.segment) return undefined;
  const neighbour = op.neighbour(`${connected.iface.index}|${addr.toString('hex')}`);
  if (!neighbour || !state.interfaces.get(neighbour.ifaceId)?.segment) return undefined;
  // Same rule as for gateways: a virtual router's MAC is the VM's traffic to carry.
  if (ctx.routerMacs.has(neighbour.mac)) return undefined;
  return neighbour;
}

/** The router entry (as it will be after this operation) that is the longest match for `addr`, shorter than a host route; -1 if none. */
function longestRouterMatch(table: RouteTable, addr: Buffer): number {
  const { routerLengths, rowRouterLengths } = table;
  const value = table.family === 4 ? addr.readUInt32BE(0) : 0;
  for (let length = table.maxLength - 1; length >= 0; length--) {
    if (routerLengths[length] === 0 && rowRouterLengths[length] === 0) continue;
    const slot =
      table.family === 4
        ? table.find4(length === 0 ? 0 : (value & (0xffffffff << (32 - length))) >>> 0, length)
        : table.find(maskedAddress(addr, length), 0, length);
    if (slot >= 0 && table.viewOrigin(slot) === ORIGIN_ROUTER) return slot;
  }
  return -1;
}

/**
 * One router's neighbour batch. With several routers (docs/manager.md, "Several routers") a
 * neighbour stays while any router reports it, with the MAC of the most recent report.
 */
export function applyNeighbourBatch(
  ctx: ManagerContext,
  state: NetworkState,
  router: RouterState,
  batch: NeighbourBatch,
): void {
  // key -> the neighbour after this batch, null when deleted.
  const touched = new Map<string, NeighbourEntry | null>();
  const op = new Operation((key) => (touched.has(key) ? (touched.get(key) ?? undefined) : state.neighbours.get(key)));
  // The entry's address, interface, error path and neighbour key, common to adds and deletes.
  const entryAt = (c: NeighbourKeyColumns, i: number, list: string) => {
    const size = c.family === 4 ? 4 : 16;
    const addr = c.addrs.subarray(i * size, (i + 1) * size);
    const iface = batch.interfaces[c.interfaces[i]!];
    const path = `neighbourBatch.${list}[${i}] (${formatAddress(addr, 0, c.family)})`;
    if (!iface) throw new ValidationError(path, 'interface reference is not in the table');
    return { addr, iface, path, key: `${iface.index}|${hexOf(addr, 0, size)}` };
  };
  const readAdds = (c: NeighbourColumns, list: string): void => {
    for (let i = 0; i < c.count; i++) {
      const { addr, iface, path, key } = entryAt(c, i, list);
      if (!isUnicastAddress(addr)) throw new ValidationError(path, 'is not a unicast address');
      const mac = macFromBytes(c.macs, i * 6);
      if (!isUnicastMac(mac)) throw new ValidationError(path, `MAC ${mac} is not a unicast MAC`);
      if (touched.has(key)) throw new ValidationError(path, 'appears twice in the batch');
      const known = state.neighbours.get(key);
      const owners = ((known?.owners ?? 0) | router.bit) >>> 0;
      const staleOwners = ((known?.staleOwners ?? 0) & ~router.bit) >>> 0;
      const ifaceId = internInterface(ctx, state, iface).id;
      touched.set(key, {
        key,
        family: c.family,
        addr: Buffer.from(addr),
        ifaceId,
        mac,
        owners,
        staleOwners,
        stale: false,
      });
    }
  };
  const readDeletes = (c: NeighbourKeyColumns, list: string): void => {
    for (let i = 0; i < c.count; i++) {
      const { path, key } = entryAt(c, i, list);
      if (touched.has(key)) throw new ValidationError(path, 'is both added and deleted, or deleted twice');
      const known = state.neighbours.get(key);
      const owners = ((known?.owners ?? 0) & ~router.bit) >>> 0;
      if (known && owners !== 0) {
        // Another router still reports it: only this router's report goes.
        const staleOwners = (known.staleOwners & ~router.bit) >>> 0;
        touched.set(key, { ...known, owners, staleOwners, stale: (owners & ~staleOwners) === 0 });
      } else touched.set(key, null);
    }
  };
  // Neighbours whose host route is decided again: every one this batch adds, changes or deletes.
  const decide = new Map<string, { family: Family; addr: Buffer }>();
  operate(
    ctx,
    state,
    op,
    () => {
      readAdds(batch.adds4, 'adds4');
      readAdds(batch.adds6, 'adds6');
      readDeletes(batch.deletes4, 'deletes4');
      readDeletes(batch.deletes6, 'deletes6');
      checkNeighbourQuota(ctx, state, touched);
      for (const [key, after] of touched) {
        const before = state.neighbours.get(key);
        const which = after ?? before;
        if (!which) continue;
        decide.set(key, which);
        // Paper IV-B: until the next hop's MAC is known the VM forwards; a new MAC moves every route through it.
        if (before?.mac !== after?.mac) stageDependents(state, which.family, key);
      }
      stageNeighbourRoutes(ctx, state, op, decide.values());
      // Host routes of new neighbours are routes too.
      checkRouteQuotas(ctx, state);
    },
    () => {
      for (const [key, after] of touched) {
        const before = state.neighbours.get(key);
        if (before) forgetNeighbour(state, before);
        if (after) {
          state.neighbours.set(key, after);
          state.interfaces.ref(after.ifaceId, 1);
          state.neighbourAddresses = null;
        }
      }
    },
  );
}

export function forgetNeighbour(state: NetworkState, neighbour: NeighbourEntry): void {
  if (state.neighbours.get(neighbour.key) !== neighbour) return;
  state.neighbours.delete(neighbour.key);
  state.interfaces.ref(neighbour.ifaceId, -1);
  state.neighbourAddresses = null;
}

export function neighbourAddresses(state: NetworkState): NeighbourAddresses {
  state.neighbourAddresses ??= NeighbourAddresses.of(state.neighbours.values());
  return state.neighbourAddresses;
}
