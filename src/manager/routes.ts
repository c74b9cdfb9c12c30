// Route batches. Paper IV-B: a router can only touch its own network, so every batch is
// validated whole against the network's definition (prefixes, kinds, gateways, out-interfaces
// on the network's own segments) and staged; nothing is written until all of it passed
// (docs/manager.md, "Validation"). The hot loop of a full table: typed-array reads, a numeric
// IPv4 key, one via lookup per route.
import { ValidationError } from '../errors/index.js';
import { formatAddress, formatPrefixBytes, hostBitsSet, prefixKey } from '../net/index.js';
import {
  KIND_GATEWAY_BIT,
  NO_INTERFACE,
  ROUTE_KINDS,
  type PrefixColumns,
  type RouteBatch,
  type RouteColumns,
} from '../wire/index.js';
import { internInterface, viaFor } from './interfaces.js';
import { containsAny4, mayHoldNeighbour, neighbourAddresses, stageNeighbourRoutes } from './neighbours.js';
import { checkRouteQuotas } from './quota.js';
import {
  hexOf,
  operationOn,
  u32At,
  type ManagerContext,
  type NetworkState,
  type Operation,
  type RouterState,
} from './state.js';
import { EVICTED, KIND_UNICAST, KIND_VIA_VM, NO_ANNOUNCER, ORIGIN_NEIGHBOUR, ORIGIN_ROUTER, STALE } from './table.js';
import { operate } from './writes.js';

function unicast6(bytes: Uint8Array, offset: number): boolean {
  if (bytes[offset] === 0xff) return false;
  for (let k = 0; k < 16; k++) if (bytes[offset + k] !== 0) return true;
  return false;
}

/** Slots of the per-batch IPv4 gateway cache (a power of two; the shift takes the hash's top bits). */
const VIA_CACHE_SIZE = 1024;
const VIA_CACHE_SHIFT = 22;

/**
 * Paper IV-B: one batch of one router, validated whole, then written to this network's maps
 * only; all or nothing. Several routers (docs/manager.md, "Several routers"): an entry stays
 * while any router announces it, and the most recent announcement is what the maps hold.
 */
export function applyRouteBatch(
  ctx: ManagerContext,
  state: NetworkState,
  router: RouterState,
  batch: RouteBatch,
): void {
  const op = operationOn(state);
  operate(ctx, state, op, () => {
    stageRouteAdds(ctx, state, op, router, batch, batch.adds4, 'adds4');
    stageRouteAdds(ctx, state, op, router, batch, batch.adds6, 'adds6');
    const absent = new Set<string>();
    stageRouteDeletes(state, op, router, batch.deletes4, 'deletes4', absent);
    stageRouteDeletes(state, op, router, batch.deletes6, 'deletes6', absent);
    stageNeighbourRoutes(ctx, state, op, []);
    checkRouteQuotas(ctx, state);
  });
}

/**
 * Paper IV-B: validates one list of added routes and stages them. Nothing is written here;
 * the first bad entry throws a ValidationError naming it. The hot loop of a full table:
 * typed-array reads, a numeric IPv4 key, one via lookup per route.
 */
function stageRouteAdds(
  ctx: ManagerContext,
  state: NetworkState,
  op: Operation,
  router: RouterState,
  batch: RouteBatch,
  c: RouteColumns,
  list: string,
): void {
  const table = state.tables[c.family];
  const { bit, index: announcer } = router;
  const v4 = c.family === 4;
  const size = table.width;
  const max = table.maxLength;
  const { addrs, lengths, kinds, gateways, interfaces } = c;
  const tableSize = batch.interfaces.length;
  table.reserveFor(c.count);
  // Row views as locals: reserved above, so staging in this loop does not reallocate them.
  const rows = table.rows;
  const {
    origin: rowOrigin,
    kind: rowKind,
    via: rowVia,
    iface: rowIface,
    bits: rowBits,
    owners: rowOwners,
    staleOwners: rowStale,
  } = rows;
  // Per message: interface table position -> registry id, and gateway -> via (IPv4: a
  // direct-mapped cache in front of the via index, as a batch has few distinct gateways).
  const ifaceIds = new Int32Array(tableSize).fill(-1);
  const viaByGateway = new Map<string, number>();
  const cacheGateway = new Uint32Array(VIA_CACHE_SIZE);
  const cacheRef = new Int32Array(VIA_CACHE_SIZE).fill(-1);
  const cacheVia = new Int32Array(VIA_CACHE_SIZE);
  const cover = state.coverIndex;
  const addresses = neighbourAddresses(state);
  const neighbours4 = addresses.v4;
  const track = addresses.has(c.family);
  const changed = op.changed[c.family];
  // Error texts are built only on error: a resync batch holds ~87,000 routes.
  const pathOf = (i: number): string =>
    `routeBatch.${list}[${i}] (${formatPrefixBytes(addrs, lengths[i]!, i * size, c.family)})`;
  const fail = (i: number, message: string): never => {
    throw new ValidationError(pathOf(i), message);
  };
  for (let i = 0; i < c.count; i++) {
    const o = i * size;
    const length = lengths[i]!;
    if (length > max) fail(i, `prefix length ${length} must be 0..${max}`);
    let addr4 = 0;
    if (v4) {
      addr4 = u32At(addrs, o);
      if (length < 32 && (addr4 & (0xffffffff >>> length)) !== 0)
        fail(i, `host bits are set: ${formatPrefixBytes(addrs, length, o, 4)} is not a prefix`);
    } else if (hostBitsSet(addrs, length, o, 16)) {
      fail(i, `host bits are set: ${formatPrefixBytes(addrs, length, o, 6)} is not a prefix`);
    }
    // IPv4: found or created (pending, staged) with one probe; a created slot is forgotten if the batch is refused.
    let slot = v4 ? table.findOrCreate4(addr4, length) : table.find(addrs, o, length);
    const created = v4 && table.created;
    if (slot >= 0 && !created && table.staged(slot))
      fail(i, `${formatPrefixBytes(addrs, length, o, c.family)} appears twice in the batch`);
    const kindByte = kinds[i]!;
    const kind = kindByte & ~KIND_GATEWAY_BIT;
    if (kind >= ROUTE_KINDS.length) fail(i, `unknown route kind ${kindByte}`);
    const hasGateway = (kindByte & KIND_GATEWAY_BIT) !== 0;
    if (hasGateway) {
      if (kind !== KIND_UNICAST) fail(i, `a ${ROUTE_KINDS[kind]} route has no gateway`);
      const unicast = v4 ? gateways[o] !== 0 && gateways[o]! < 224 : unicast6(gateways, o);
      if (!unicast) fail(i, `gateway ${formatAddress(gateways, o, c.family)} is not a unicast address`);
    }
    const ref = interfaces[i]!;
    if (ref !== NO_INTERFACE && ref >= tableSize) fail(i, `interface reference ${ref} is not in the table`);
    let ifaceId = -1;
    let via = -1;
    if (kind === KIND_UNICAST) {
      if (ref === NO_INTERFACE) fail(i, 'a unicast route needs an out-interface');
      ifaceId = ifaceIds[ref]!;
      if (ifaceId < 0) {
        // Paper IV-B: a route may only leave through a segment of its own network.
        const entry = internInterface(ctx, state, batch.interfaces[ref]!);
        if (!entry.segment) fail(i, entry.problem);
        ifaceId = ifaceIds[ref] = entry.id;
      }
      if (hasGateway && v4) {
        const gateway = u32At(gateways, o);
        const h = Math.imul(gateway ^ (ref << 16), 0x9e3779b1) >>> VIA_CACHE_SHIFT;
        if (cacheRef[h] === ref && cacheGateway[h] === gateway) via = cacheVia[h]!;
        else {
          via = viaFor(state, table, ifaceId, gateways, o);
          cacheRef[h] = ref;
          cacheGateway[h] = gateway;
          cacheVia[h] = via;
        }
      } else if (hasGateway) {
        const gatewayKey = `${ref}|${hexOf(gateways, o, 16)}`;
        via = viaByGateway.get(gatewayKey) ?? -1;
        if (via < 0) {
          via = viaFor(state, table, ifaceId, gateways, o);
          viaByGateway.set(gatewayKey, via);
        }
      }
    }
    let row: number;
    let evicted: boolean;
    let announcementChanged: boolean;
    if (slot >= 0 && !created) {
      row = table.stage(slot);
      // A replaced evicted route stays evicted; a new route that covers an evicted one is evicted too.
      evicted =
        (rowBits[row]! & EVICTED) !== 0 ||
        (cover !== null && (v4 ? cover.covers4(addr4, length) : cover.covers6(addrs, o, length)));
      announcementChanged =
        rowOrigin[row] !== ORIGIN_ROUTER || rowKind[row] !== kind || rowVia[row] !== via || rowIface[row] !== ifaceId;
    } else {
      if (created) row = table.rowOf[slot]!;
      else {
        row = table.create(addrs, o, length);
        slot = rows.slot[row]!;
      }
      evicted = cover !== null && (v4 ? cover.covers4(addr4, length) : cover.covers6(addrs, o, length));
      announcementChanged = true;
    }
    // A router entry keeps the other routers that announce it (any other entry has no owner).
    const owners = (rowOwners[row]! | bit) >>> 0;
    const staleOwners = (rowStale[row]! & ~bit) >>> 0;
    table.setRow(row, ORIGIN_ROUTER, kind, via, ifaceId, evicted ? EVICTED : 0);
    table.setRowOwners(row, owners, staleOwners, announcer);
    // Only a change of a prefix that holds a neighbour can move that neighbour's host route.
    if (
      announcementChanged &&
      track &&
      (v4 ? containsAny4(neighbours4, addr4, length) : addresses.mayContain6(addrs, o, length))
    )
      changed.push(slot);
  }
}

function stageRouteDeletes(
  state: NetworkState,
  op: Operation,
  router: RouterState,
  c: PrefixColumns,
  list: string,
  absent: Set<string>,
): void {
  const bit = router.bit;
  const table = state.tables[c.family];
  const size = table.width;
  const v4 = c.family === 4;
  const addresses = neighbourAddresses(state);
  const track = addresses.has(c.family);
  const fail = (i: number, message: (text: string) => string): never => {
    const text = formatPrefixBytes(c.addrs, c.lengths[i]!, i * size, c.family);
    throw new ValidationError(`routeBatch.${list}[${i}] (${text})`, message(text));
  };
  for (let i = 0; i < c.count; i++) {
    const o = i * size;
    const length = c.lengths[i]!;
    const addr4 = v4 ? u32At(c.addrs, o) : 0;
    const hostBits = v4 ? length < 32 && (addr4 & (0xffffffff >>> length)) !== 0 : hostBitsSet(c.addrs, length, o, 16);
    if (hostBits) fail(i, (text) => `host bits are set: ${text} is not a prefix`);
    const slot = v4 ? table.find4(addr4, length) : table.find(c.addrs, o, length);
    if (slot >= 0 && table.staged(slot)) fail(i, (text) => `${text} is both added and deleted, or deleted twice`);
    // Deleting what this router never announced (another router's entry, a neighbour host route) changes nothing.
    const origin = slot >= 0 ? table.origin[slot]! : ORIGIN_NEIGHBOUR;
    if (origin === ORIGIN_NEIGHBOUR || (origin === ORIGIN_ROUTER && !(table.owners[slot]! & bit))) {
      const key = prefixKey(c.addrs.subarray(o, o + size), length);
      if (absent.has(key)) fail(i, (text) => `${text} is both added and deleted, or deleted twice`);
      absent.add(key);
      continue;
    }
    const row = table.stage(slot);
    if (track && origin === ORIGIN_ROUTER && mayHoldNeighbour(addresses, table, slot)) op.changed[c.family].push(slot);
    const left = origin === ORIGIN_ROUTER ? (table.owners[slot]! & ~bit) >>> 0 : 0;
    if (left === 0) {
      table.withdrawRow(row);
      continue;
    }
    // Another router still announces it: the entry stays; if this router's next hop was the one
    // installed, the VM forwards until a router announces the prefix again.
    const leftStale = (table.staleOwners[slot]! & ~bit) >>> 0;
    const stale = (left & ~leftStale) === 0 ? STALE : 0;
    const installed = table.announcer[slot]!;
    if (installed === router.index) {
      table.setRow(row, ORIGIN_ROUTER, KIND_VIA_VM, -1, -1, (table.rows.bits[row]! & EVICTED) | stale);
      table.setRowOwners(row, left, leftStale, NO_ANNOUNCER);
    } else {
      table.setRowBits(row, (table.rows.bits[row]! & ~STALE) | stale);
      table.setRowOwners(row, left, leftStale, installed);
    }
  }
}
