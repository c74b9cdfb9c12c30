// BIRD 2 in the lab: network 1's virtual router learns routes by OSPF from its external
// machine on link 1, which advertises a stub network. So the client is proven against
// a real routing daemon, not only `ip route add`.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LabTopology } from './topology.js';

export interface BirdLab {
  /** The prefix the external machine advertises (its loopback holds .1 of it). */
  stubPrefix: string;
  stubAddress: string;
  routerSocket: string;
  externalSocket: string;
  processes: ChildProcess[];
}

function ospf(routerId: string, iface: string, extra = ''): string {
  return `router id ${routerId};
protocol device { scan time 1; }
protocol kernel { ipv4 { import none; export all; }; scan time 1; }
protocol ospf v2 ospf1 {
  ipv4 { import all; export none; };
  area 0 {
    interface "${iface}" { type ptp; hello 1; dead 4; };
${extra}  };
}
`;
}

/** Starts BIRD in network `netId`'s router (towards link 1) and in its external machine there. */
export function startBird(topo: LabTopology, stateDir: string, netId = 1): BirdLab {
  const net = topo.networks.find((n) => n.id === netId)!;
  const router = net.router;
  const ext = net.externals[1];
  const stubPrefix = `10.${netId}.100.0/24`;
  const stubAddress = `10.${netId}.100.1`;
  execFileSync('ip', ['netns', 'exec', ext.ns, 'ip', 'addr', 'add', `${stubAddress}/24`, 'dev', 'lo']);
  const routerConf = join(stateDir, `bird-vr${netId}.conf`);
  const extConf = join(stateDir, `bird-e${netId}1.conf`);
  writeFileSync(routerConf, ospf(router.interfaces[1].address, router.interfaces[1].name));
  // The external machine advertises its stub network and imports nothing.
  writeFileSync(
    extConf,
    ospf(ext.iface.address, ext.iface.name, `    stubnet ${stubPrefix};\n`).replace(
      'ipv4 { import all; export none; }',
      'ipv4 { import none; export none; }',
    ),
  );
  const routerSocket = join(stateDir, `bird-vr${netId}.ctl`);
  const externalSocket = join(stateDir, `bird-e${netId}1.ctl`);
  const processes = [
    spawn('ip', ['netns', 'exec', router.ns, 'bird', '-f', '-c', routerConf, '-s', routerSocket], { stdio: 'ignore' }),
    spawn('ip', ['netns', 'exec', ext.ns, 'bird', '-f', '-c', extConf, '-s', externalSocket], { stdio: 'ignore' }),
  ];
  return { stubPrefix, stubAddress, routerSocket, externalSocket, processes };
}

/** birdc against one of the lab's BIRDs. */
export function birdc(socket: string, args: readonly string[]): string {
  return execFileSync('birdc', ['-s', socket, ...args], { encoding: 'utf8' });
}
