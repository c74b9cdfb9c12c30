// The lab's data plane without the secure channel: loads (or re-adopts) the pinned
// data plane in the host namespace, attaches it to the lab's links and vifs, and
// installs each network's routes as its virtual router would send them. Run it
// inside the host namespace; running it again is a hitless restart.
import { DataPlane, type NetworkSpec, type AttachModes } from '../dataplane/index.js';
import { ifindexOf } from '../loader/index.js';
import type { LabTopology } from './topology.js';
import { TABLE1_COSTS } from './fixture.js';

export interface StaticLoadResult {
  adopted: boolean;
  attachments: { ifname: string; point: string; mode?: string; replaced: boolean }[];
  routes: number;
}

/** The routes network `net` of the lab has, in data plane terms. */
export function labRoutes(dp: DataPlane, topo: LabTopology, net: LabTopology['networks'][number]) {
  const routes: Parameters<DataPlane['addRoutes']>[1][number][] = [];
  topo.host.links.forEach((link, l) => {
    const iface = net.router.interfaces[l];
    const ext = net.externals[l];
    const nexthopId = dp.nexthop({
      netId: net.id,
      ifindex: ifindexOf(link.name),
      linkSlot: l,
      vlan: 0,
      smac: iface.mac,
      dmac: ext.iface.mac,
    });
    routes.push({ prefix: `${iface.address}/32`, target: { kind: 'local' } });
    routes.push({ prefix: `${ext.iface.address}/32`, target: { kind: 'nexthop', nexthopId } });
    routes.push({ prefix: iface.subnet, target: { kind: 'via-vm' } });
  });
  return routes;
}

/** Defines the lab's networks and interfaces in the data plane (idempotent). */
export function defineLab(dp: DataPlane, topo: LabTopology): void {
  for (const net of topo.networks) dp.defineNetwork({ id: net.id, name: net.name } satisfies NetworkSpec);
  topo.host.links.forEach((link, l) => {
    const ifindex = ifindexOf(link.name);
    dp.setPhysical(ifindex, l);
    dp.setHostMac(ifindex, 0, link.bridgeMac);
    for (const net of topo.networks) {
      const iface = net.router.interfaces[l];
      const vif = ifindexOf(iface.vif);
      dp.setVif(vif, { netId: net.id, segIfindex: ifindex, segVlan: 0, linkSlot: l });
      dp.setAttachment({ ifindex, vlan: 0, mac: iface.mac, netId: net.id, vifIfindex: vif });
    }
  });
}

export function attachLab(dp: DataPlane, topo: LabTopology, modes: AttachModes = {}): StaticLoadResult['attachments'] {
  const out: StaticLoadResult['attachments'] = [];
  for (const link of topo.host.links) {
    for (const a of dp.attachPhysical(link.name, modes))
      out.push({ ifname: link.name, point: a.point, mode: a.mode, replaced: a.replaced });
  }
  for (const net of topo.networks) {
    for (const iface of net.router.interfaces) {
      for (const a of dp.attachVif(iface.vif, modes))
        out.push({ ifname: iface.vif, point: a.point, mode: a.mode, replaced: a.replaced });
    }
  }
  return out;
}

/** Loads (or re-adopts) the lab's data plane as the daemon would; `modes` are the config's attach modes. */
export function loadStaticLab(
  topo: LabTopology,
  pinDir: string,
  options: { routes?: boolean; modes?: AttachModes } = {},
): StaticLoadResult {
  const dp = DataPlane.open({ pinDir });
  try {
    const adopted = dp.adopted;
    if (!adopted) dp.configure({ accounting: true, punish: true, filter: true, pathCost: TABLE1_COSTS, costPerKib: 0 });
    defineLab(dp, topo);
    let routes = 0;
    if (options.routes ?? true) {
      for (const net of topo.networks) {
        const list = labRoutes(dp, topo, net);
        dp.addRoutes(net.id, list);
        routes += list.length;
      }
    }
    const attachments = attachLab(dp, topo, options.modes);
    return { adopted, attachments, routes };
  } finally {
    dp.close();
  }
}
