// The data plane's switches and path costs (xnm_settings): accounting, punishment, the
// replicated filter and the flow cache on or off, and the CPU cost of each packet path.
import { PATHS, SettingsFlags, settingsLayout, type BpfMap, type PathName } from '../loader/index.js';
import { u32Key } from './shared.js';

export interface DataPlaneSettings {
  accounting: boolean;
  punish: boolean;
  filter: boolean;
  /** Serve IPv4 flows from the flow cache: classification + LPM result per flow (default on). */
  flowCache?: boolean;
  pathCost: Record<PathName, number>;
  costPerKib: number;
  /** Estimate flow rates and drop a punished network's heaviest flows first (default on). */
  fairDrop?: boolean;
  /** The manager's TCP port, and how many packets to it per network, CPU and 67 ms epoch escape CPU punishment. */
  channelPort?: number;
  channelBudget?: number;
  /** ARP and ND packets per network, CPU and 67 ms epoch that escape CPU punishment. */
  neighbourBudget?: number;
}

export function writeSettings(map: BpfMap, settings: DataPlaneSettings, flowCacheSlots: number): void {
  const flags =
    (settings.accounting ? SettingsFlags.ACCOUNTING : 0) |
    (settings.punish ? SettingsFlags.PUNISH : 0) |
    (settings.filter ? SettingsFlags.FILTER : 0) |
    ((settings.flowCache ?? true) ? SettingsFlags.FLOW_CACHE : 0) |
    ((settings.fairDrop ?? true) ? SettingsFlags.FAIR_DROP : 0);
  const value = settingsLayout.encode({
    flags,
    cost_per_kib: settings.costPerKib,
    path_cost: PATHS.map((p) => settings.pathCost[p]),
    flow_cache_mask: flowCacheSlots - 1,
    channel_port: settings.channelPort ?? 0,
    channel_budget: settings.channelBudget ?? 0,
    neighbour_budget: settings.neighbourBudget ?? 0,
    reserved: 0,
  });
  map.update(u32Key(0), value);
}

export function readSettings(map: BpfMap): DataPlaneSettings {
  const v = settingsLayout.decode(map.lookup(u32Key(0)) ?? Buffer.alloc(settingsLayout.size));
  const flags = v.flags as number;
  const costs = v.path_cost as number[];
  return {
    accounting: (flags & SettingsFlags.ACCOUNTING) !== 0,
    punish: (flags & SettingsFlags.PUNISH) !== 0,
    filter: (flags & SettingsFlags.FILTER) !== 0,
    flowCache: (flags & SettingsFlags.FLOW_CACHE) !== 0,
    fairDrop: (flags & SettingsFlags.FAIR_DROP) !== 0,
    channelPort: v.channel_port as number,
    channelBudget: v.channel_budget as number,
    neighbourBudget: v.neighbour_budget as number,
    pathCost: Object.fromEntries(PATHS.map((p, i) => [p, costs[i]])) as Record<PathName, number>,
    costPerKib: v.cost_per_kib as number,
  };
}
