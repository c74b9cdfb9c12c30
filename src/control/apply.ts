// What the daemon writes besides the topology (reconcile.ts): settings and the cost table; the
// shapes of the applied links and programs.
import { readFileSync } from 'node:fs';
import type { XnetmonConfig } from '../config/index.js';
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
  const byPath: Record<PathName, number> = { ext_ext: c.extExt, ext_vm: c.extVm, vm_ext: c.vmExt, vm_vm: c.vmVm, vm_host: c.vmHost };
  for (const p of PATHS) byPath[p] = Math.round(byPath[p]);
  return byPath;
}

export function applySettings(dp: DataPlane, config: XnetmonConfig, control = true): void {
  dp.configure({ accounting: true, punish: control, filter: true, pathCost: costsOf(config), costPerKib: Math.round(config.host.costPerKib) });
}

export interface AttachedProgram {
  ifname: string;
  point: string;
  mode?: string;
  replaced: boolean;
}
