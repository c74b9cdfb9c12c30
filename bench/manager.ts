// Benchmarks of the data plane manager on the real maps (root, build/xnetmon.bpf.o): a full
// IPv4 table from a router's client into one network's LPM trie, and a stream of incremental
// batches on top of it. The client's encoding happens before the clock starts (it runs in the
// router); what is timed is the host's side: delivery of the records through an in-memory
// session, decode, validation, next hop resolution, map writes and the Acks. The secure
// channel's own cost (AEAD records over TCP) is measured by src/crypto's throughput test.
//
import type { DataPlane } from '../src/dataplane/index.js';
import { XnetmonError } from '../src/errors/index.js';
import {
  decodeAck,
  emptyPrefixColumns,
  emptyRouteColumns,
  encodeEndOfSync,
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatches,
  KIND_GATEWAY_BIT,
  NO_INTERFACE,
  PROTOCOL_VERSION,
  type PrefixColumns,
  type RouteChanges,
  type RouteColumns,
  type RouterInterface,
} from '../src/wire/index.js';
import { UpdateManager } from '../src/manager/index.js';
import { segmentMapFromConfig } from '../src/manager/index.js';
import { PayloadQueue, type UpdateSession } from '../src/wire/index.js';

export interface ManagerLoadFigures {
  /** Routes the router sent (its FIB), and entries the maps hold afterwards (with neighbour host routes). */
  routes: number;
  installed: number;
  /** RouteBatch messages of at most 1 MiB. */
  messages: number;
  /** First message delivered to the Ack of EndOfSync. */
  seconds: number;
  routes_per_second: number;
}

export interface ManagerUpdateFigures {
  /** Size of the table the updates apply to. */
  routes: number;
  batches: number;
  /** Routes per batch: half new prefixes, half deletes of installed ones. */
  batch_size: number;
  updates: number;
  seconds: number;
  updates_per_second: number;
}

const NETWORK = 'bench';
const ROUTER_MAC = '02:00:00:00:be:01';
/** The router's interface on the benchmark segment (matched to the attachment by MAC). */
const ETH0: RouterInterface = { index: 2, name: 'eth0', mac: ROUTER_MAC };
const GATEWAYS = 16;
/** The segment's connected subnet, 192.168.0.0/24; the gateways are .1 to .16 on it. */
const SEGMENT_NET = 0xc0a80000;
/** Full-table prefixes are /24s from 1.0.0.0 up (a million end at 16.66.63.0); updates add /24s from 32.0.0.0. */
const TABLE_BASE = 0x01000000;
const UPDATE_BASE = 0x20000000;

/** An in-memory session: the benchmark plays the client; Acks are checked as they come. */
class PipeSession implements UpdateSession {
  readonly peerId = NETWORK;
  readonly remoteAddress = 'bench';
  private readonly inbox = new PayloadQueue();
  private acks = 0;
  private ackWaiter: { count: number; resolve: () => void } | null = null;
  failure: string | null = null;

  async send(payload: Buffer): Promise<void> {
    const ack = decodeAck(payload);
    if (!ack.ok && this.failure === null)
      this.failure = `message ${ack.sequence} refused: ${ack.errorCode} ${ack.errorMessage}`;
    this.acks++;
    if (this.ackWaiter && this.acks >= this.ackWaiter.count) {
      const { resolve } = this.ackWaiter;
      this.ackWaiter = null;
      resolve();
    }
  }

  messages(): AsyncIterable<Buffer> {
    return this.inbox.iterate();
  }

  close(): void {
    this.inbox.close();
  }

  /** Delivers payloads and waits for all of their Acks. */
  async exchange(payloads: readonly Buffer[]): Promise<void> {
    const target = this.acks + payloads.length;
    const done = new Promise<void>((resolve) => {
      this.ackWaiter = { count: target, resolve };
    });
    this.inbox.push(...payloads);
    await done;
    if (this.failure) throw new XnetmonError('ERR_BENCH', this.failure);
  }
}

let nextSequence = 1;

/** The router's FIB: routes i in [from, to) of a family of /24s; one in ten via the VM, the rest via the 16 gateways. */
function tableRoutes(base: number, from: number, to: number): RouteColumns {
  const count = to - from;
  const c: RouteColumns = {
    family: 4,
    count,
    addrs: new Uint8Array(count * 4),
    lengths: new Uint8Array(count),
    kinds: new Uint8Array(count),
    gateways: new Uint8Array(count * 4),
    interfaces: new Uint16Array(count),
  };
  const view = new DataView(c.addrs.buffer);
  const gateways = new DataView(c.gateways.buffer);
  for (let k = 0; k < count; k++) {
    const i = from + k;
    view.setUint32(k * 4, base + i * 256);
    c.lengths[k] = 24;
    if (i % 10 === 9) {
      c.kinds[k] = 3; // via-vm
      c.interfaces[k] = NO_INTERFACE;
    } else {
      c.kinds[k] = KIND_GATEWAY_BIT; // unicast (kind 0) via a gateway on eth0
      gateways.setUint32(k * 4, SEGMENT_NET + 1 + (i % GATEWAYS));
      c.interfaces[k] = 0;
    }
  }
  return c;
}

/** The connected subnet of the segment and the router's own address on it. */
function segmentRoutes(): RouteColumns {
  // Kinds: unicast without a gateway (connected), local.
  const c: RouteColumns = {
    family: 4,
    count: 2,
    addrs: new Uint8Array(8),
    lengths: Uint8Array.of(24, 32),
    kinds: Uint8Array.of(0, 1),
    gateways: new Uint8Array(8),
    interfaces: Uint16Array.of(0, NO_INTERFACE),
  };
  new DataView(c.addrs.buffer).setUint32(0, SEGMENT_NET);
  new DataView(c.addrs.buffer).setUint32(4, SEGMENT_NET + 254);
  return c;
}

function prefixes(base: number, from: number, to: number): PrefixColumns {
  const count = to - from;
  const c: PrefixColumns = {
    family: 4,
    count,
    addrs: new Uint8Array(count * 4),
    lengths: new Uint8Array(count).fill(24),
  };
  const view = new DataView(c.addrs.buffer);
  for (let k = 0; k < count; k++) view.setUint32(k * 4, base + (from + k) * 256);
  return c;
}

function routeMessages(adds: RouteColumns, deletes: PrefixColumns = emptyPrefixColumns(4)): Buffer[] {
  const changes: RouteChanges = {
    interfaces: [ETH0],
    adds4: adds,
    adds6: emptyRouteColumns(6),
    deletes4: deletes,
    deletes6: emptyPrefixColumns(6),
  };
  const out: Buffer[] = [];
  for (const message of encodeRouteBatches(changes, { firstSequence: nextSequence })) {
    out.push(message.payload);
    nextSequence = message.sequence + 1;
  }
  return out;
}

/** What the client sends on connecting: Hello, its neighbours (the gateways), its FIB, EndOfSync. */
function fullResync(routes: number): { payloads: Buffer[]; messages: number } {
  const macs = new Uint8Array(GATEWAYS * 6);
  const addrs = new Uint8Array(GATEWAYS * 4);
  for (let g = 0; g < GATEWAYS; g++) {
    macs.set([0x02, 0, 0, 0xbb, 0, g + 1], g * 6);
    new DataView(addrs.buffer).setUint32(g * 4, SEGMENT_NET + 1 + g);
  }
  const neighbours = encodeNeighbourBatch({
    sequence: nextSequence++,
    interfaces: [ETH0],
    adds4: { family: 4, count: GATEWAYS, addrs, macs, interfaces: new Uint16Array(GATEWAYS) },
    adds6: { family: 6, count: 0, addrs: new Uint8Array(0), macs: new Uint8Array(0), interfaces: new Uint16Array(0) },
    deletes4: { family: 4, count: 0, addrs: new Uint8Array(0), interfaces: new Uint16Array(0) },
    deletes6: { family: 6, count: 0, addrs: new Uint8Array(0), interfaces: new Uint16Array(0) },
  });
  const batches = [...routeMessages(segmentRoutes()), ...routeMessages(tableRoutes(TABLE_BASE, 0, routes))];
  return {
    payloads: [
      encodeHello({ version: PROTOCOL_VERSION, clientName: 'bench-r1' }),
      neighbours,
      ...batches,
      encodeEndOfSync({ sequence: nextSequence++ }),
    ],
    messages: batches.length,
  };
}

/** How the benchmark plays the client: deliver payloads in order, wait for all their Acks. */
interface Exchange {
  exchange(payloads: readonly Buffer[]): Promise<void>;
}

interface BenchHost {
  readonly manager: UpdateManager;
  readonly session: Exchange;
}

/**
 * The real path: the host's SecureServer on loopback, the router's connectSecure, the
 * records' AEAD both ways; the manager serves the host's authenticated session.
 */
async function secureExchange(
  manager: UpdateManager,
  router: { privateKey: string; publicKey: string },
  eMaxMs?: number,
): Promise<{ exchange: Exchange; close: () => Promise<void> }> {
  const crypto = await import('../src/crypto/index.js');
  const host = crypto.generateKeyPair();
  // Rate limits raised: the benchmarks connect several times in a row from one key.
  const server = await crypto.createSecureServer({
    privateKey: host.privateKey,
    peers: [{ publicKey: router.publicKey, id: NETWORK }],
    host: '127.0.0.1',
    port: 0,
    keyHandshakeLimit: { perSecond: 1000, burst: 1000 },
    sourceHandshakeLimit: { perSecond: 1000, burst: 1000 },
    eMaxMs,
  });
  server.on('session', (session) => {
    void manager.attachSession(session);
  });
  const { port } = server.address();
  const channel = await crypto.connectSecure({
    host: '127.0.0.1',
    port,
    privateKey: router.privateKey,
    hostPublicKey: host.publicKey,
    eMaxMs,
  });
  const acks = channel.messages()[Symbol.asyncIterator]();
  const exchange: Exchange = {
    async exchange(payloads) {
      const reading = (async () => {
        for (let i = 0; i < payloads.length; i++) {
          const next = await acks.next();
          if (next.done) throw new XnetmonError('ERR_BENCH', 'the host closed the channel');
          const ack = decodeAck(next.value);
          if (!ack.ok)
            throw new XnetmonError(
              'ERR_BENCH',
              `message ${ack.sequence} refused: ${ack.errorCode} ${ack.errorMessage}`,
            );
        }
      })();
      for (const payload of payloads) await channel.send(payload);
      await reading;
    },
  };
  return {
    exchange,
    close: async () => {
      channel.close();
      await server.close();
    },
  };
}

/** A real, unpinned data plane with one network on a veth segment; everything is removed afterwards. */
async function withBenchHost<T>(
  routes: number,
  run: (host: BenchHost) => Promise<T>,
  transport: 'memory' | 'secure' = 'memory',
  eMaxMs?: number,
): Promise<T> {
  const [dataplane, { ifindexOf }, { Scratch }, { parseConfig }, { generateKeyPair }] = await Promise.all([
    import('../src/dataplane/index.js'),
    import('../src/loader/index.js'),
    import('../src/lab/scratch.js'),
    import('../src/config/index.js'),
    import('../src/crypto/index.js'),
  ]);
  // The router's key is in the network's definition: the manager serves a session only for a router
  // its network lists (docs/manager.md, "Several routers").
  const router = generateKeyPair();
  const scratch = new Scratch('xbm');
  let dp: DataPlane | undefined;
  let manager: UpdateManager | undefined;
  let session: PipeSession | undefined;
  let serving: Promise<void> | undefined;
  try {
    const link = scratch.dummy('p');
    const ifindex = ifindexOf(link);
    dp = dataplane.DataPlane.open({ maxRoutes4: routes + 1024 });
    dp.defineNetwork({ id: 1, name: NETWORK });
    dp.setPhysical(ifindex, 0);
    const config = parseConfig(`
host:
  links: [{ name: ${link}, capacity_mbps: 1000 }]
  stale_route_timeout_s: 60
networks:
  - id: 1
    name: ${NETWORK}
    routers: [{ vif: ${link}x, client_public_key: "${router.publicKey}" }]
    attachments: [{ interface: ${link}, vlan: 0, mac: "${ROUTER_MAC}" }]
`);
    manager = new UpdateManager({
      dataPlane: dp,
      config,
      segments: segmentMapFromConfig(new Map([[link, { ifindex, linkSlot: 0 }]])),
      adoptInstalledRoutes: false,
    });
    if (transport === 'secure') {
      const secure = await secureExchange(manager, router, eMaxMs);
      try {
        return await run({ manager, session: secure.exchange });
      } finally {
        await secure.close();
      }
    }
    session = new PipeSession();
    serving = manager.attachSession(session);
    return await run({ manager, session });
  } finally {
    session?.close();
    await serving;
    manager?.close();
    dp?.close();
    scratch.cleanup();
  }
}

const seconds = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e9;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * A full table of `routes` IPv4 routes (default 1,000,000) from the router's resync into the
 * maps: Hello, a NeighbourBatch with the 16 gateways, RouteBatches of at most 1 MiB, EndOfSync.
 */
export async function benchManagerLoad(
  options: { routes?: number; transport?: 'memory' | 'secure' } = {},
): Promise<ManagerLoadFigures> {
  const routes = options.routes ?? 1_000_000;
  const resync = fullResync(routes);
  return withBenchHost(
    routes,
    async ({ manager, session }) => {
      const start = process.hrtime.bigint();
      await session.exchange(resync.payloads);
      const elapsed = seconds(start);
      const installed = manager.routeCount(NETWORK);
      // The FIB, the connected subnet and the local address, and a host route per gateway.
      if (installed !== routes + 2 + GATEWAYS)
        throw new XnetmonError('ERR_BENCH', `${installed} entries installed, expected ${routes + 2 + GATEWAYS}`);
      return {
        routes,
        installed,
        messages: resync.messages,
        seconds: round3(elapsed),
        routes_per_second: Math.round(routes / elapsed),
      };
    },
    options.transport,
  );
}

/**
 * Incremental updates on a table of `routes` routes: `batches` RouteBatches of 1,000 changes
 * each (500 new prefixes, 500 deletes of installed ones), delivered as fast as the host acks.
 */
export async function benchManagerUpdates(
  options: {
    routes?: number;
    batches?: number;
    transport?: 'memory' | 'secure';
    /** The channel's eq. (1) bound (host.e_max_ms; default 2,000 ms), as an operator of a slow host would set it. */
    eMaxMs?: number;
  } = {},
): Promise<ManagerUpdateFigures> {
  const routes = options.routes ?? 1_000_000;
  const batches = Math.min(options.batches ?? 200, Math.floor(routes / 500));
  const half = 500;
  const resync = fullResync(routes);
  const updates: Buffer[] = [];
  for (let b = 0; b < batches; b++) {
    updates.push(
      ...routeMessages(
        tableRoutes(UPDATE_BASE, b * half, (b + 1) * half),
        prefixes(TABLE_BASE, b * half, (b + 1) * half),
      ),
    );
  }
  return withBenchHost(
    routes,
    async ({ manager, session }) => {
      await session.exchange(resync.payloads);
      const start = process.hrtime.bigint();
      await session.exchange(updates);
      const elapsed = seconds(start);
      const installed = manager.routeCount(NETWORK);
      if (installed !== routes + 2 + GATEWAYS)
        throw new XnetmonError(
          'ERR_BENCH',
          `${installed} entries installed after the updates, expected ${routes + 2 + GATEWAYS}`,
        );
      const count = batches * 2 * half;
      return {
        routes,
        batches,
        batch_size: 2 * half,
        updates: count,
        seconds: round3(elapsed),
        updates_per_second: Math.round(count / elapsed),
      };
    },
    options.transport,
    options.eMaxMs,
  );
}
