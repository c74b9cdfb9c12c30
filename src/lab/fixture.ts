// A data plane set up for BPF_PROG_TEST_RUN: two networks (blue 1, green 2) on a
// physical link P (slot 0) forwarding out Q (slot 1), with the same prefix in
// both networks going to different next hops. Shared by the BPF unit tests and
// the per-packet benchmark, so that both measure the same tables.
import type { DataPlane } from '../dataplane/index.js';
import { ifindexOf } from '../loader/index.js';
import type { PathName } from '../loader/index.js';

export const MAC = {
  blueP: '02:00:00:01:00:01', // blue's router on P
  blueV: '02:00:00:01:00:0a', // blue's router on P, VLAN 10
  blueQ: '02:00:00:01:00:02', // blue's router on Q
  greenP: '02:00:00:02:00:01',
  greenQ: '02:00:00:02:00:02',
  host: '02:00:00:00:00:fe',
  ext1: '02:00:00:ee:00:01',
  ext1b: '02:00:00:ee:00:0b',
  ext2: '02:00:00:ee:00:02',
} as const;

/** Cost units per packet by path, in the ratios of the paper's Table I. */
export const TABLE1_COSTS: Record<PathName, number> = {
  ext_ext: 10,
  ext_vm: 2,
  vm_ext: 60,
  vm_vm: 85,
  vm_host: 66,
  host_vm: 66,
};

export interface Fixture {
  phys: number;
  physName: string;
  egress: number;
  vif1: number;
  vif2: number;
  nexthopBlue: number;
  /** A blue next hop whose rewritten frame is again addressed to blue's router on P:
   *  PROG_TEST_RUN repeats run on the program's own output, so a benchmark frame must
   *  stay forwardable after each pass. */
  nexthopLoop: number;
}

/** Something that can make three dummy interfaces and returns their names. */
export interface InterfaceMaker {
  dummy(suffix: string): string;
}

export function fastpathFixture(dp: DataPlane, maker: InterfaceMaker, options: { isolation?: boolean } = {}): Fixture {
  const physName = maker.dummy('p');
  const phys = ifindexOf(physName);
  const egress = ifindexOf(maker.dummy('q'));
  const vif1 = ifindexOf(maker.dummy('v1'));
  const vif2 = ifindexOf(maker.dummy('v2'));
  const isolation = options.isolation ?? true;
  dp.configure({ accounting: isolation, punish: isolation, filter: isolation, pathCost: TABLE1_COSTS, costPerKib: 1 });
  dp.defineNetwork({ id: 1, name: 'blue' });
  dp.defineNetwork({ id: 2, name: 'green' });
  dp.setPhysical(phys, 0);
  dp.setPhysical(egress, 1);
  dp.setVif(vif1, { netId: 1, segIfindex: phys, segVlan: 0, linkSlot: 0 });
  dp.setVif(vif2, { netId: 2, segIfindex: phys, segVlan: 0, linkSlot: 0 });
  dp.setAttachment({ ifindex: phys, vlan: 0, mac: MAC.blueP, netId: 1, vifIfindex: vif1 });
  dp.setAttachment({ ifindex: phys, vlan: 10, mac: MAC.blueV, netId: 1, vifIfindex: vif1 });
  dp.setAttachment({ ifindex: phys, vlan: 0, mac: MAC.greenP, netId: 2, vifIfindex: vif2 });
  dp.setHostMac(phys, 0, MAC.host);
  const nexthopBlue = dp.nexthop({ netId: 1, ifindex: egress, linkSlot: 1, vlan: 0, smac: MAC.blueQ, dmac: MAC.ext1 });
  const nhBlueB = dp.nexthop({ netId: 1, ifindex: egress, linkSlot: 1, vlan: 0, smac: MAC.blueQ, dmac: MAC.ext1b });
  const nexthopLoop = dp.nexthop({ netId: 1, ifindex: egress, linkSlot: 1, vlan: 0, smac: MAC.blueQ, dmac: MAC.blueP });
  const nhGreen = dp.nexthop({ netId: 2, ifindex: egress, linkSlot: 1, vlan: 20, smac: MAC.greenQ, dmac: MAC.ext2 });
  dp.addRoutes(1, [
    { prefix: '10.9.0.0/16', target: { kind: 'nexthop', nexthopId: nexthopBlue } },
    { prefix: '10.9.7.0/24', target: { kind: 'nexthop', nexthopId: nhBlueB } },
    { prefix: '2001:db8:9::/48', target: { kind: 'nexthop', nexthopId: nexthopBlue } },
    { prefix: '10.8.0.0/16', target: { kind: 'via-vm' } },
    { prefix: '10.1.0.1/32', target: { kind: 'local' } },
    { prefix: '10.66.0.0/16', target: { kind: 'blackhole' } },
  ]);
  dp.addRoutes(2, [{ prefix: '10.9.0.0/16', target: { kind: 'nexthop', nexthopId: nhGreen } }]);
  return { phys, physName, egress, vif1, vif2, nexthopBlue, nexthopLoop };
}
