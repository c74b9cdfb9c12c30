// What a reload has to do: the difference between the running config and a new one.

import { isDeepStrictEqual } from 'node:util';
import type { HostSettings, LinkDefinition, NetworkDefinition, XnetmonConfig } from './types.js';

export type HostSettingName = keyof HostSettings;

/**
 * Whether a changed host setting can be applied to a running daemon. Sockets, the bpffs pin
 * directory and the host's identity key are bound at start; controller parameters are read every
 * period. Adding or removing a link needs the data plane attached to another interface, so it
 * needs a restart; changing a link's capacity does not (see diffConfigs).
 */
export const HOST_SETTING_APPLY: Readonly<Record<HostSettingName, 'live' | 'restart'>> = Object.freeze({
  pinDir: 'restart',
  periodMs: 'live',
  controlLaw: 'live',
  beta: 'live',
  phiInitial: 'live',
  residualDrop: 'live',
  cpuCapacity: 'live',
  cpuModel: 'live',
  cpuShare: 'live',
  fibCapacity: 'live',
  fibCritical: 'live',
  flowCacheSlots: 'restart',
  xdpMode: 'restart',
  tcMode: 'restart',
  costs: 'live',
  costPerKib: 'live',
  links: 'restart',
  listen: 'restart',
  hostPrivateKeyFile: 'restart',
  adminSocket: 'restart',
  metricsListen: 'restart',
  staleRouteTimeoutS: 'live',
  // Bound to the secure channel's server at start.
  eMaxMs: 'restart',
  updateMessagesPerS: 'restart',
  updateMessagesBurst: 'restart',
});

export interface HostSettingChange {
  readonly setting: HostSettingName;
  /** True when a running daemon can take the new value without a restart. */
  readonly live: boolean;
  readonly before: HostSettings[HostSettingName];
  readonly after: HostSettings[HostSettingName];
}

export type NetworkField =
  | 'weight'
  | 'reserve.cpu'
  | 'reserve.fib'
  | 'reserve.links'
  | 'routers'
  | 'attachments'
  | 'filterDefault'
  | 'quota';

export interface ChangedNetwork {
  readonly name: string;
  readonly id: number;
  /** Which fields differ; every network field can be applied live (network by network). */
  readonly fields: readonly NetworkField[];
  readonly before: NetworkDefinition;
  readonly after: NetworkDefinition;
}

export interface ConfigDiff {
  /** Networks only in the new config. A network whose id or name changed is removed and added. */
  readonly networksAdded: readonly NetworkDefinition[];
  readonly networksRemoved: readonly NetworkDefinition[];
  readonly networksChanged: readonly ChangedNetwork[];
  readonly hostChanged: readonly HostSettingChange[];
  /** Some host setting changed that only a restart applies. */
  readonly restartRequired: boolean;
  /** Nothing differs. */
  readonly empty: boolean;
}

/** Order-insensitive comparison of lists whose order carries no meaning (routers, attachments). */
function sameSet<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  const canonical = (list: readonly T[]): string[] =>
    list.map((item) => JSON.stringify(item, Object.keys(item as object).sort())).sort();
  return isDeepStrictEqual(canonical(a), canonical(b));
}

function linkCapacities(links: readonly LinkDefinition[]): Map<string, number> {
  return new Map(links.map((l) => [l.name, l.capacityMbps]));
}

function sameLinkReservations(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  // A missing entry and a 0 share reserve the same thing.
  for (const link of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const share = (r: Readonly<Record<string, number>>): number => (Object.hasOwn(r, link) ? r[link]! : 0);
    if (share(a) !== share(b)) return false;
  }
  return true;
}

function changedNetworkFields(before: NetworkDefinition, after: NetworkDefinition): NetworkField[] {
  const fields: NetworkField[] = [];
  if (before.weight !== after.weight) fields.push('weight');
  if (before.reserve.cpu !== after.reserve.cpu) fields.push('reserve.cpu');
  if (before.reserve.fib !== after.reserve.fib) fields.push('reserve.fib');
  if (!sameLinkReservations(before.reserve.links, after.reserve.links)) fields.push('reserve.links');
  if (!sameSet(before.routers, after.routers)) fields.push('routers');
  if (!sameSet(before.attachments, after.attachments)) fields.push('attachments');
  if (before.filterDefault !== after.filterDefault) fields.push('filterDefault');
  if (!isDeepStrictEqual(before.quota, after.quota)) fields.push('quota');
  return fields;
}

export function diffConfigs(before: XnetmonConfig, after: XnetmonConfig): ConfigDiff {
  const hostChanged: HostSettingChange[] = [];
  for (const setting of Object.keys(HOST_SETTING_APPLY) as HostSettingName[]) {
    const old = before.host[setting];
    const now = after.host[setting];
    if (setting === 'links') {
      const oldLinks = linkCapacities(before.host.links);
      const newLinks = linkCapacities(after.host.links);
      if (isDeepStrictEqual(oldLinks, newLinks)) continue;
      const sameNames = oldLinks.size === newLinks.size && [...oldLinks.keys()].every((name) => newLinks.has(name));
      // Paper IV-A: link capacity is R(t) of the bandwidth resource, read each period: live.
      hostChanged.push({ setting, live: sameNames, before: old, after: now });
    } else if (!isDeepStrictEqual(old, now)) {
      hostChanged.push({ setting, live: HOST_SETTING_APPLY[setting] === 'live', before: old, after: now });
    }
  }

  const key = (n: NetworkDefinition): string => `${n.id}/${n.name}`;
  const oldNetworks = new Map(before.networks.map((n) => [key(n), n]));
  const newNetworks = new Map(after.networks.map((n) => [key(n), n]));
  const networksAdded = after.networks.filter((n) => !oldNetworks.has(key(n)));
  const networksRemoved = before.networks.filter((n) => !newNetworks.has(key(n)));
  const networksChanged: ChangedNetwork[] = [];
  for (const now of after.networks) {
    const old = oldNetworks.get(key(now));
    if (!old) continue;
    const fields = changedNetworkFields(old, now);
    if (fields.length > 0) networksChanged.push({ name: now.name, id: now.id, fields, before: old, after: now });
  }

  return {
    networksAdded,
    networksRemoved,
    networksChanged,
    hostChanged,
    restartRequired: hostChanged.some((c) => !c.live),
    empty: networksAdded.length + networksRemoved.length + networksChanged.length + hostChanged.length === 0,
  };
}
