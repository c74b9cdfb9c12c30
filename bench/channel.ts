// The secure data plane update end to end: a full IPv4 table (1,000,000 routes) from a
// router's client through the secure channel (loopback TCP, AEAD records) into the host's
// manager and maps; the handshake; and steady incremental updates on top of the table.
import { benchManagerLoad, benchManagerUpdates, lastHandshakeTimes } from '../src/manager/index.js';
import { median, round } from './stats.js';

export interface ChannelFigures {
  routes: number;
  seconds: number;
  handshake_ms: number;
  updates_per_second: number;
  /** The same load without the channel (in-memory session): what the channel adds. */
  seconds_without_channel: number;
}

export async function benchChannel(options: { routes?: number } = {}): Promise<ChannelFigures> {
  const routes = options.routes ?? 1_000_000;
  const secure = await benchManagerLoad({ routes, transport: 'secure' });
  const handshake = median([...lastHandshakeTimes()]);
  const updates = await benchManagerUpdates({ routes, batches: 200, transport: 'secure' });
  const memory = await benchManagerLoad({ routes, transport: 'memory' });
  return { routes, seconds: secure.seconds, handshake_ms: round(handshake, 2), updates_per_second: updates.updates_per_second, seconds_without_channel: memory.seconds };
}
