// Where a router's interfaces and gateways are on the host. Paper IV-B: a route may only leave
// through a segment of its own network, so every router interface a batch names is placed on
// one of the network's attachments or refused with the reason; gateways on a placed interface
// become vias, indexed under the neighbour whose MAC their target needs.
import type { NetworkDefinition } from '../config/index.js';
import type { RouterInterface } from '../wire/index.js';
import type { InterfaceEntry } from './registry.js';
import type { SegmentBinding } from './segments.js';
import type { ManagerContext, NetworkState } from './state.js';
import type { RouteTable } from './table.js';

function describeInterface(iface: RouterInterface): string {
  return `${iface.name} (index ${iface.index}${iface.mac ? `, MAC ${iface.mac}` : ''})`;
}

/** Where a router interface is: one of the network's own attachments, or nowhere (with the reason). */
export function placeInterface(
  ctx: ManagerContext,
  network: NetworkDefinition,
  iface: RouterInterface,
): { segment: SegmentBinding | null; problem: string } {
  const segment = ctx.segments.segmentFor(network, iface);
  if (!segment) {
    return {
      segment: null,
      problem:
        `interface ${describeInterface(iface)} is not on any of network ${network.name}'s segments` +
        " (list the router's data interfaces under `interfaces` in client.yaml)",
    };
  }
  const own = network.attachments.some(
    (a) =>
      a.interface === segment.link &&
      a.vlan === segment.vlan &&
      a.mac.toLowerCase() === segment.routerMac.toLowerCase(),
  );
  if (!own) {
    return {
      segment: null,
      problem:
        `interface ${describeInterface(iface)} maps to link ${segment.link} VLAN ${segment.vlan} MAC ${segment.routerMac},` +
        ` which is not an attachment of network ${network.name}`,
    };
  }
  if (
    !Number.isInteger(segment.ifindex) ||
    segment.ifindex <= 0 ||
    !Number.isInteger(segment.linkSlot) ||
    segment.linkSlot < 0
  ) {
    return { segment: null, problem: `segment ${segment.link} has no usable ifindex/link slot` };
  }
  return { segment, problem: '' };
}

export function internInterface(ctx: ManagerContext, state: NetworkState, iface: RouterInterface): InterfaceEntry {
  return state.interfaces.intern(iface, (i) => placeInterface(ctx, state.definition, i));
}

/** The via of a gateway on an interface; a new one is indexed under the neighbour it needs. */
export function viaFor(
  state: NetworkState,
  table: RouteTable,
  ifaceId: number,
  gateway: Uint8Array,
  offset: number,
): number {
  const entry = state.interfaces.get(ifaceId)!;
  return table.internVia(ifaceId, entry.iface.index, gateway, offset, (via) => {
    const index = state.viasByNeighbour[table.family];
    let set = index.get(via.neighbourKey);
    if (!set) {
      set = new Set();
      index.set(via.neighbourKey, set);
    }
    set.add(via.id);
    state.interfaces.ref(ifaceId, 1);
  });
}
