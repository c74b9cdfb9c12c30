// The secure data plane update end to end: a full IPv4 table (1,000,000 routes) from a
// router's client through the secure channel (loopback TCP, AEAD records) into the host's
// manager and maps; the handshake; and steady incremental updates on top of the table.
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { benchManagerLoad, benchManagerUpdates } from './manager.js';
import { generateKeyPair } from '../src/crypto/index.js';
import { median, round } from './stats.js';

/**
 * Handshakes as a router sees them: the client in a process of its own (as it runs in its
 * VM) and the host's server in another (as the daemon runs), both fresh, so that the heap
 * this benchmark process built for earlier benchmarks cannot stall either side; `count`
 * connections in a row, each timed from connect to established, medians reported.
 */
/** Handshakes not counted: a running daemon and client have had their code compiled by V8. */
const WARMUP = 20;

export async function benchHandshake(count = 100): Promise<{ handshake_ms: number; handshake_ms_p90: number }> {
  const host = generateKeyPair();
  const router = generateKeyPair();
  const crypto = JSON.stringify(fileURLToPath(new URL('../src/crypto/index.js', import.meta.url)));
  const hostScript = `
    const { createSecureServer } = await import(${crypto});
    const server = await createSecureServer({
      privateKey: ${JSON.stringify(host.privateKey)}, peers: [{ publicKey: ${JSON.stringify(router.publicKey)}, id: 'bench' }], host: '127.0.0.1', port: 0,
      keyHandshakeLimit: { perSecond: 1000, burst: 1000 }, sourceHandshakeLimit: { perSecond: 1000, burst: 1000 },
    });
    process.stdout.write(String(server.address().port) + '\\n');
    process.stdin.resume();
    process.stdin.on('end', () => server.close().then(() => process.exit(0)));`;
  const server = spawn(process.execPath, ['--input-type=module', '-e', hostScript], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: server.stdout! }).once('line', (line) => resolve(Number(line)));
      server.once('exit', (code) => reject(new Error(`handshake host exited (${code})`)));
    });
    const clientScript = `
      const { connectSecure } = await import(${crypto});
      const times = [];
      for (let i = 0; i < ${count + WARMUP}; i++) {
        const t = process.hrtime.bigint();
        const c = await connectSecure({ host: '127.0.0.1', port: ${port}, privateKey: ${JSON.stringify(router.privateKey)}, hostPublicKey: ${JSON.stringify(host.publicKey)} });
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
        c.close();
      }
      process.stdout.write(JSON.stringify(times.slice(${WARMUP})));`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', clientScript], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
    });
    const times = (JSON.parse(out) as number[]).sort((a, b) => a - b);
    return { handshake_ms: round(median(times), 2), handshake_ms_p90: round(times[Math.floor(times.length * 0.9)], 2) };
  } finally {
    server.stdin?.end();
    await new Promise((resolve) => (server.exitCode !== null ? resolve(undefined) : server.once('exit', resolve)));
  }
}

export interface ChannelFigures {
  routes: number;
  seconds: number;
  /** Client in its own process, as in a VM (the first 20, warm-up, not counted). */
  handshake_ms: number;
  handshake_ms_p90: number;
  updates_per_second: number;
  /** The same load without the channel (in-memory session): what the channel adds. */
  seconds_without_channel: number;
}

export async function benchChannel(options: { routes?: number } = {}): Promise<ChannelFigures> {
  const routes = options.routes ?? 1_000_000;
  const handshake = await benchHandshake();
  const secure = await benchManagerLoad({ routes, transport: 'secure' });
  const updates = await benchManagerUpdates({ routes, batches: 200, transport: 'secure' });
  const memory = await benchManagerLoad({ routes, transport: 'memory' });
  return {
    routes,
    seconds: secure.seconds,
    ...handshake,
    updates_per_second: updates.updates_per_second,
    seconds_without_channel: memory.seconds,
  };
}
