// The client end to end, in process: captured kernel snapshots in, an UpdateManager over an
// in-memory data plane on the other side of a session pair. Full resync on connect, changes
// as they come, reconnect with backoff, and a resync after a refused batch.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  snapshotFromDumps,
  UpdateClient,
  type ClientConfig,
  type KernelSnapshot,
  type SnapshotSource,
} from '../../src/client/index.js';
import {
  segmentMapFromConfig,
  UpdateManager,
  type UpdateSession,
  type UpdateTransport,
} from '../../src/manager/index.js';
import { LINKS, NEIGHBOURS, NFT_SUBSET, ROUTES4, ROUTES6 } from '../support/client-samples.js';
import {
  FakeDataPlane,
  HOST_LINKS,
  MemoryLogger,
  sessionPair,
  twoNetworkConfig,
  type FakeSession,
} from '../support/manager-fakes.js';

const config: ClientConfig = {
  host: { host: '192.0.2.1', port: 7400, family: 'ipv4' },
  hostPublicKey: Buffer.alloc(32, 9).toString('base64'),
  privateKeyFile: '/etc/xnetmon/client.key',
  name: 'blue-r1',
  tables: ['main', 'local'],
  interfaces: null,
  coalesceMs: 10,
  pollIntervalMs: 60_000,
  reconnectMaxMs: 200,
  filter: true,
};

/** The captured router: eth0 on p0 and eth1 on q0 VLAN 10 of network blue (matched by name). */
const byName = { blue: { eth0: { link: 'p0', vlan: 0 }, eth1: { link: 'q0', vlan: 10 } } };

function capturedSnapshot(edit: (routes4: object[]) => object[] = (r) => r): KernelSnapshot {
  return snapshotFromDumps(
    { links: LINKS, routes4: edit(ROUTES4 as object[]), routes6: ROUTES6, neighbours: NEIGHBOURS, nft: NFT_SUBSET },
    { tables: config.tables, interfaces: config.interfaces },
  ).snapshot;
}

class ManualSource implements SnapshotSource {
  private listener: ((snapshot: KernelSnapshot) => void) | null = null;
  stopped = false;
  start(onSnapshot: (snapshot: KernelSnapshot) => void): void {
    this.listener = onSnapshot;
  }
  stop(): void {
    this.stopped = true;
  }
  emit(snapshot: KernelSnapshot): void {
    this.listener?.(snapshot);
  }
}

/** Connects the client to the manager in process; the first `failures` attempts fail. */
class InProcessTransport implements UpdateTransport {
  attempts = 0;
  readonly hostEnds: FakeSession[] = [];
  constructor(
    private readonly manager: UpdateManager,
    private failures = 0,
  ) {}
  async connect(): Promise<UpdateSession> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('ECONNREFUSED');
    }
    const { client, host } = sessionPair('blue');
    this.hostEnds.push(host);
    void this.manager.attachSession(host);
    return client;
  }
}

async function until(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function harness(
  options: {
    failures?: number;
    segmentNames?: typeof byName | { blue: { eth0: { link: string; vlan: number } } };
  } = {},
) {
  const dp = new FakeDataPlane();
  const manager = new UpdateManager({
    dataPlane: dp,
    config: twoNetworkConfig(),
    segments: segmentMapFromConfig(HOST_LINKS, { byName: options.segmentNames ?? byName }),
  });
  const transport = new InProcessTransport(manager, options.failures ?? 0);
  const source = new ManualSource();
  const logger = new MemoryLogger();
  const abort = new AbortController();
  const client = new UpdateClient(config, {
    transport,
    source,
    logger,
    signal: abort.signal,
    reconnectInitialMs: 10,
    resyncRetryInitialMs: 20,
  });
  const running = client.run();
  const stop = async (): Promise<void> => {
    abort.abort();
    await running;
    manager.close();
  };
  return { dp, manager, transport, source, logger, client, stop };
}

describe('client and manager', () => {
  test("the first connection sends everything and ends with EndOfSync; the host then holds the router's FIB", async () => {
    const { dp, manager, source, client, stop } = harness();
    try {
      source.emit(capturedSnapshot());
      await until('the resync', () => client.getStatus().resyncs === 1);
      const view = dp.view(1);
      assert.equal(view['10.9.0.0/16'], 'nh 02:00:00:00:00:02 10/0 from 02:00:00:01:00:01');
      assert.equal(view['10.20.0.0/16'], 'nh 02:00:00:00:01:02 11/10 from 02:00:00:01:00:02');
      assert.equal(view['2001:db8:9::/48'], 'nh 02:00:00:00:00:03 10/0 from 02:00:00:01:00:01');
      assert.equal(view['10.21.0.0/16'], 'via-vm');
      assert.equal(view['10.66.0.0/16'], 'blackhole');
      assert.equal(view['10.1.0.1/32'], 'local');
      assert.equal(view['0.0.0.0/0'], 'via-vm', 'the default gateway 10.1.0.254 has no MAC yet');
      // The router's FIB, plus a host route for each neighbour on a connected subnet (the fast path to it).
      assert.equal(
        Object.keys(view).length,
        capturedSnapshot().routes.size + manager.routeCounts('blue').neighbourRoutes,
      );
      assert.equal(dp.filters.get(1)!.length, 13);
      assert.deepEqual(manager.sessions()[0]!.clientName, 'blue-r1');
    } finally {
      await stop();
    }
  });

  test('changes go out as one small batch', async () => {
    const { dp, source, client, stop } = harness();
    try {
      source.emit(capturedSnapshot());
      await until('the resync', () => client.getStatus().resyncs === 1);
      const sent = client.getStatus().messagesSent;
      source.emit(
        capturedSnapshot((routes) => [
          ...routes.filter((r) => (r as { dst: string }).dst !== '10.66.0.0/16'),
          { dst: '10.50.0.0/16', gateway: '10.1.0.2', dev: 'eth0', protocol: 'bird', metric: 32, flags: [] },
        ]),
      );
      await until(
        'the change',
        () => dp.view(1)['10.50.0.0/16'] !== undefined && dp.view(1)['10.66.0.0/16'] === undefined,
      );
      assert.equal(client.getStatus().messagesSent, sent + 1);
      // The same snapshot again sends nothing.
      source.emit(
        capturedSnapshot((routes) => [
          ...routes.filter((r) => (r as { dst: string }).dst !== '10.66.0.0/16'),
          { dst: '10.50.0.0/16', gateway: '10.1.0.2', dev: 'eth0', protocol: 'bird', metric: 32, flags: [] },
        ]),
      );
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(client.getStatus().messagesSent, sent + 1);
    } finally {
      await stop();
    }
  });

  test('reconnects with backoff; after the host drops the session the resync leaves no gap', async () => {
    const { dp, manager, transport, source, client, stop } = harness({ failures: 2 });
    try {
      source.emit(capturedSnapshot());
      await until('the resync', () => client.getStatus().resyncs === 1);
      assert.equal(transport.attempts, 3);
      const before = dp.view(1);
      const writes = dp.log.length;
      transport.hostEnds[0]!.close();
      await until('the second resync', () => client.getStatus().resyncs === 2);
      assert.deepEqual(dp.view(1), before);
      assert.deepEqual(
        dp.log.slice(writes).filter((w) => w.startsWith('del')),
        [],
        'nothing was withdrawn',
      );
      assert.equal(manager.routeCounts('blue').stale, 0);
    } finally {
      await stop();
    }
  });

  test('a refused batch is logged and followed by a resync; the host keeps its stale routes meanwhile', async () => {
    // eth1 is not mapped: routes out of it are refused.
    const { manager, source, client, logger, stop } = harness({
      segmentNames: { blue: { eth0: { link: 'p0', vlan: 0 } } },
    });
    try {
      source.emit(capturedSnapshot());
      await until('a refusal', () => client.getStatus().refusedBatches >= 1);
      assert.match(client.getStatus().lastError ?? '', /ERR_INVALID|ERR_RESYNC_INCOMPLETE/);
      assert.ok(logger.lines.some((l) => l.level === 'error' && l.message.includes('refused')));
      await until(
        'a retried resync',
        () => manager.sessions()[0]!.lastError !== null && client.getStatus().refusedBatches >= 3,
      );
      assert.equal(client.getStatus().resyncs, 0);
    } finally {
      await stop();
    }
  });

  test('stopping ends the run and the watcher', async () => {
    const { source, stop, transport } = harness();
    source.emit(capturedSnapshot());
    await until('a connection', () => transport.attempts === 1);
    await stop();
    assert.equal(source.stopped, true);
  });
});
