// How the demo's routers get their routes to the host: the client in each router,
// over the secure channel (the lab writes each router's client.yaml).
import { spawn, type ChildProcess } from 'node:child_process';
import { AdminClient } from '../admin/index.js';
import type { LabState } from '../lab/index.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startRouting(
  lab: LabState,
  children: ChildProcess[],
  say: (text: string) => void,
): Promise<string> {
  for (const net of lab.topology.networks) {
    const client = spawn(
      'ip',
      [
        'netns',
        'exec',
        net.router.ns,
        process.execPath,
        process.argv[1],
        'client',
        '-c',
        `${lab.stateDir}/client${net.id}.yaml`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(client);
  }
  const admin = new AdminClient(`${lab.stateDir}/admin.sock`);
  // A client's start-up, handshake and full resync take a fraction of a second here, and tens
  // of seconds in a slow VM (make test-kernel): wait up to two minutes, saying so every 10 s.
  const started = Date.now();
  let told = started;
  while (Date.now() - started < 120_000) {
    const clients = await admin.clients();
    // In sync: connected, its full resync acknowledged (end-of-sync seen).
    const ready = clients.filter((c) => c.connected === true && c.resyncing !== true && c.lastUpdate).length;
    if (ready >= lab.topology.networks.length) {
      // Now that the host has their routes, the routers resolve their external machines: the
      // client sends the neighbours, and the host installs routes to them in the fast path.
      for (const net of lab.topology.networks)
        for (const ext of net.externals)
          spawn('ip', ['netns', 'exec', net.router.ns, 'ping', '-c', '1', '-W', '1', ext.iface.address], {
            stdio: 'ignore',
          });
      await sleep(1500);
      say(
        `  ${ready} virtual routers connected over the secure channel: ${clients.map((c) => String(c.network)).join(', ')}`,
      );
      return "sent by each router's client over the secure channel";
    }
    if (Date.now() - told >= 10_000) {
      told = Date.now();
      say(
        `  waiting for the routers' clients: ${ready} of ${lab.topology.networks.length} in sync after ${Math.round((told - started) / 1000)} s`,
      );
    }
    await sleep(100);
  }
  throw new Error("the routers' clients did not connect within 120 s");
}
