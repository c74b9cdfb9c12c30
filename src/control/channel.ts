// The secure data plane update in the daemon (paper IV-B, IV-C): the secure channel's
// server, authenticated sessions handed to the update manager, which writes each
// network's routes into the data plane.
import { readFileSync } from 'node:fs';
import type { XnetmonConfig } from '../config/index.js';
import { SecureServer } from '../crypto/index.js';
import { UpdateManager, segmentMapFromConfig } from '../manager/index.js';
import { XnetmonError } from '../errors/index.js';
import type { Daemon, RouteAuthority } from './daemon.js';
import { resolveChannelListen } from './listen.js';
import { RejectionLog } from './rejection-log.js';

function peersOf(config: XnetmonConfig) {
  return config.networks.flatMap((n) => n.routers.map((r) => ({ publicKey: r.clientPublicKey, id: n.name })));
}

export interface ChannelAuthority extends RouteAuthority {
  readonly server: SecureServer;
  readonly manager: UpdateManager;
}

export async function channelAuthority(daemon: Daemon): Promise<ChannelAuthority> {
  const config = daemon.config;
  let privateKey: string;
  try {
    privateKey = readFileSync(config.host.hostPrivateKeyFile, 'utf8').trim();
  } catch (err) {
    throw new XnetmonError(
      'ERR_CONFIG_READ',
      `host.host_private_key_file ${config.host.hostPrivateKeyFile}: ${(err as Error).message}`,
    );
  }
  const links = () => new Map(daemon.linkInfo().map((l) => [l.name, { ifindex: l.ifindex, linkSlot: l.slot }]));
  const manager = new UpdateManager({
    dataPlane: daemon.dp,
    config,
    segments: segmentMapFromConfig(links()),
    logger: daemon.log,
  });
  const { hosts, port } = resolveChannelListen(config);
  const server = new SecureServer({
    privateKey,
    peers: peersOf(config),
    host: hosts,
    port,
    eMaxMs: config.host.eMaxMs,
    sessionMessageLimit: { perSecond: config.host.updateMessagesPerS, burst: config.host.updateMessagesBurst },
    logger: daemon.log,
  });
  server.on('session', (session) => {
    void manager.attachSession(session);
  });
  // A flood from many sources must not become a flood of log lines: the first of each reason at once, then a summary every 10 s.
  const rejectionLog = new RejectionLog({ logger: daemon.log });
  rejectionLog.start();
  server.on('rejection', (event) => rejectionLog.record(event));
  await server.listen();
  daemon.log.info({ listen: server.addresses() }, 'secure channel listening');
  return {
    server,
    manager,
    routeCount: (netId) => manager.routeCount(netId),
    routeDemand: (netId) => {
      const c = manager.routeCounts(netId);
      return c.installed + c.evicted;
    },
    memory: {
      evict: (netId, fraction) => {
        manager.evictRoutes(netId, fraction);
      },
      // Incomplete (a full map) when routes are still evicted: the controller calls again next period.
      restore: (netId) => {
        manager.restoreRoutes(netId);
        return manager.routeCounts(netId).evicted === 0;
      },
    },
    quotas: (netId) => manager.quotaStatus(netId),
    clients: () => manager.sessions(),
    channelRejections: () => server.rejectionCounts(),
    reconfigure: (next) => {
      manager.updateConfig(next, segmentMapFromConfig(links()));
      server.updatePeers(peersOf(next));
    },
    close: async () => {
      await server.close();
      rejectionLog.stop();
      manager.close();
    },
  };
}
