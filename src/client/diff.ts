// Two snapshots of the router's kernel state in, the changes between them out. Paper IV-B:
// the client checks its forwarding table and packet filter for changes, and transmits only
// the differences to Dom0.
import type { FilterRule, RouterInterface } from '../wire/index.js';
import type { FibNeighbour, FibRoute } from './fib.js';

export interface KernelSnapshot {
  /** Replicated routes by canonical prefix. */
  readonly routes: ReadonlyMap<string, FibRoute>;
  /** Replicated neighbours by "ifname|address". */
  readonly neighbours: ReadonlyMap<string, FibNeighbour>;
  /** The replicated filter, or null when filter replication is off. */
  readonly filter: readonly FilterRule[] | null;
}

export const EMPTY_SNAPSHOT: KernelSnapshot = { routes: new Map(), neighbours: new Map(), filter: null };

export interface SnapshotChanges {
  /** New or changed routes (a change is a replacement of the same prefix). */
  readonly routeAdds: FibRoute[];
  readonly routeDeletes: string[];
  readonly neighbourAdds: FibNeighbour[];
  readonly neighbourDeletes: FibNeighbour[];
  /** The new filter when it differs, else null. */
  readonly filter: readonly FilterRule[] | null;
}

function sameInterface(a: RouterInterface | null, b: RouterInterface | null): boolean {
  if (a === null || b === null) return a === b;
  return a.index === b.index && a.name === b.name && a.mac === b.mac;
}

export function sameRoute(a: FibRoute, b: FibRoute): boolean {
  return a.kind === b.kind && a.gateway === b.gateway && sameInterface(a.interface, b.interface);
}

function sameRule(a: FilterRule, b: FilterRule): boolean {
  return (
    a.handle === b.handle &&
    a.family === b.family &&
    a.proto === b.proto &&
    a.src === b.src &&
    a.dst === b.dst &&
    a.action === b.action &&
    a.sport?.[0] === b.sport?.[0] &&
    a.sport?.[1] === b.sport?.[1] &&
    a.dport?.[0] === b.dport?.[0] &&
    a.dport?.[1] === b.dport?.[1]
  );
}

export function sameFilter(a: readonly FilterRule[] | null, b: readonly FilterRule[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((rule, i) => sameRule(rule, b[i]!));
}

/** What to send so that a host holding `before` ends up holding `after`. */
export function diffSnapshots(before: KernelSnapshot, after: KernelSnapshot): SnapshotChanges {
  const routeAdds: FibRoute[] = [];
  const routeDeletes: string[] = [];
  for (const [prefix, route] of after.routes) {
    const old = before.routes.get(prefix);
    if (!old || !sameRoute(old, route)) routeAdds.push(route);
  }
  for (const prefix of before.routes.keys()) if (!after.routes.has(prefix)) routeDeletes.push(prefix);

  const neighbourAdds: FibNeighbour[] = [];
  const neighbourDeletes: FibNeighbour[] = [];
  for (const [key, n] of after.neighbours) {
    const old = before.neighbours.get(key);
    if (!old || old.mac !== n.mac || !sameInterface(old.interface, n.interface)) neighbourAdds.push(n);
  }
  // The host keys neighbours by (router ifindex, address): an interface that came back with a
  // new ifindex makes a new key there, and a renamed one keeps its key (no delete then).
  const hostKey = (n: FibNeighbour): string => `${n.interface.index}|${n.address}`;
  const added = new Set(neighbourAdds.map(hostKey));
  const kept = new Set([...after.neighbours.values()].map(hostKey));
  for (const n of before.neighbours.values()) {
    if (!kept.has(hostKey(n)) && !added.has(hostKey(n))) neighbourDeletes.push(n);
  }
  return {
    routeAdds,
    routeDeletes,
    neighbourAdds,
    neighbourDeletes,
    filter: sameFilter(before.filter, after.filter) ? null : after.filter,
  };
}

export function isEmptyChange(changes: SnapshotChanges): boolean {
  return (
    changes.routeAdds.length === 0 &&
    changes.routeDeletes.length === 0 &&
    changes.neighbourAdds.length === 0 &&
    changes.neighbourDeletes.length === 0 &&
    changes.filter === null
  );
}
