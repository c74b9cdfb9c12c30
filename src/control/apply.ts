// What the daemon writes besides the topology (reconcile.ts): settings and the cost table; the
// shapes of the applied links and programs.
import { readFileSync } from 'node:fs';
import { parseListenAddress, type XnetmonConfig } from '../config/index.js';
import type { DataPlane } from '../dataplane/index.js';
import { PATHS, type PathName } from '../loader/index.js';

export interface LinkInfo {
  name: string;
  ifindex: number;
  slot: number;
}

export interface AppliedTopology {
  links: LinkInfo[];
  /** Interfaces that get the vif program. */
  vifs: string[];
}

/** An interface's MAC, from sysfs. */
export function macOf(ifname: string): string {
  return readFileSync(`/sys/class/net/${ifname}/address`, 'utf8').trim();
}

export function costsOf(config: XnetmonConfig): Record<PathName, number> {
  const c = config.host.costs;
  // host_vm: host -> router, charged to the router at vm_host's cost (docs/config.md, "CPU costs").
  const byPath: Record<PathName, number> = {
    ext_ext: c.extExt,
    ext_vm: c.extVm,
    vm_ext: c.vmExt,
    vm_vm: c.vmVm,
    vm_host: c.vmHost,
    host_vm: c.vmHost,
  };
  for (const p of PATHS) byPath[p] = Math.round(byPath[p]);
  return byPath;
}

/**
 * Packets a router may send to the manager's port per CPU and 67 ms epoch unpunished: about 950
 * per second per CPU, far above what an update needs (a few segments per batch and their ACKs)
 * and small beside a flood (paper V: the controller reserves the CPU DomU1 needs for its updates).
 */
export const CHANNEL_BUDGET = 64;

/**
 * ARP and ND packets a network may pass per CPU and epoch unpunished, both ways: about 480 per
 * second per CPU, enough to resolve hundreds of neighbours a second, and a bound on what a
 * network gains by disguising a flood as neighbour discovery. Dropped like data, a lost
 * resolution takes every flow to that neighbour down for seconds (the lab saw a punished
 * router's floods stall on ARP), far beyond the share the control law asked for.
 */
export const NEIGHBOUR_BUDGET = 32;

/** `costs`: a measured cost table (src/cpu) instead of the config's constant one. */
export interface CostOverride {
  pathCost: Record<PathName, number>;
  costPerKib: number;
}

export function applySettings(dp: DataPlane, config: XnetmonConfig, control = true, costs?: CostOverride): void {
  dp.configure({
    accounting: true,
    punish: control,
    filter: true,
    pathCost: costs?.pathCost ?? costsOf(config),
    costPerKib: costs?.costPerKib ?? Math.round(config.host.costPerKib),
    channelPort: parseListenAddress(config.host.listen, 'host.listen', { allowAuto: true }).port,
    channelBudget: CHANNEL_BUDGET,
    neighbourBudget: NEIGHBOUR_BUDGET,
  });
}

export interface AttachedProgram {
  ifname: string;
  point: string;
  mode?: string;
  replaced: boolean;
}
