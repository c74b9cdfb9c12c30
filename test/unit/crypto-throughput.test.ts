// Bulk transfer over loopback: integrity of 50 MB of records, and a full table
// of 1,000,000 routes (12 bytes each) batched by the RecordCoalescer.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  RecordCoalescer,
  connectSecure,
  createSecureServer,
  generateKeyPair,
  type SecureServer,
  type SecureSession,
} from '../../src/crypto/index.js';

describe('throughput over loopback', { timeout: 30_000 }, () => {
  const hostKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  let server: SecureServer;
  let port: number;
  let nextSession: Promise<SecureSession>;

  const waitSession = (): Promise<SecureSession> => new Promise((resolve) => server.once('session', resolve));

  before(async () => {
    server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [{ publicKey: clientKeys.publicKey, id: 'net-bulk' }],
    });
    port = server.address().port;
  });

  after(() => server?.close());

  it('delivers 50 MB in 256 KiB records intact and in order', async () => {
    nextSession = waitSession();
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const session = await nextSession;
    const total = 50 * 1024 * 1024;
    const recordBytes = 256 * 1024;
    const block = randomBytes(recordBytes);
    const sentHash = createHash('sha256');
    const receivedHash = createHash('sha256');

    const started = performance.now();
    const receiving = (async () => {
      let received = 0;
      for await (const payload of session) {
        receivedHash.update(payload);
        received += payload.length;
        if (received >= total) break;
      }
      return received;
    })();
    for (let sent = 0, i = 0; sent < total; sent += recordBytes, i++) {
      // Vary the content so a reordered or repeated record changes the hash.
      block.writeUInt32LE(i, 0);
      sentHash.update(block);
      await channel.send(block);
    }
    const received = await receiving;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(received, total);
    assert.equal(receivedHash.digest('hex'), sentHash.digest('hex'));
    // The rate is printed, not asserted: speed is the benchmarks' job (xnetmon bench channel).
    console.log(`# 50 MB loopback: ${(total / 1e6 / seconds).toFixed(0)} MB/s`);
    channel.close();
  });

  it('sends a full table of 1,000,000 routes through the coalescer, whole routes per record', async () => {
    nextSession = waitSession();
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const session = await nextSession;
    const routes = 1_000_000;
    const routeBytes = 12;
    let receivedRoutes = 0;
    let checksum = 0;
    let records = 0;
    const done = new Promise<void>((resolve, reject) => {
      session.on('message', (payload) => {
        records++;
        if (payload.length % routeBytes !== 0) reject(new Error(`record of ${payload.length} bytes splits a route`));
        for (let offset = 0; offset < payload.length; offset += routeBytes)
          checksum = (checksum + payload.readUInt32LE(offset)) >>> 0;
        receivedRoutes += payload.length / routeBytes;
        if (receivedRoutes === routes) resolve();
      });
    });
    const started = performance.now();
    const coalescer = new RecordCoalescer(channel, { maxRecordBytes: 64 * 1024 });
    const route = Buffer.alloc(routeBytes);
    let expected = 0;
    for (let i = 0; i < routes; i++) {
      route.writeUInt32LE(i, 0); // "prefix"
      route.writeUInt32LE(0xc0000201, 4); // next hop
      route.writeUInt32LE(24, 8); // prefix length
      expected = (expected + i) >>> 0;
      const sent = coalescer.push(route);
      if (coalescer.pendingBytes === 0) await sent; // a record went out: respect backpressure
    }
    await coalescer.flush();
    await done;
    const seconds = (performance.now() - started) / 1000;
    assert.equal(checksum, expected);
    assert.ok(records >= Math.floor((routes * routeBytes) / (64 * 1024)));
    console.log(`# 1M routes via coalescer: ${seconds.toFixed(3)} s in ${records} records`);
    channel.close();
  });

  it('the coalescer flushes small updates on the next turn of the event loop', async () => {
    nextSession = waitSession();
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const session = await nextSession;
    const got = new Promise<Buffer>((resolve) => session.once('message', resolve));
    const coalescer = new RecordCoalescer(channel);
    void coalescer.push(Buffer.from('route-a.....'));
    void coalescer.push(Buffer.from('route-b.....'));
    assert.equal((await got).toString(), 'route-a.....route-b.....');
    channel.close();
  });
});
