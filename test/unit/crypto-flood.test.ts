// Handshake floods: one client (or one source) hammering the host is rate
// limited, while another client on another source still gets its session.
// The victim binds 127.0.0.2 (loopback, no namespace) so it is another source.

import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  connectSecure,
  createInitiation,
  createSecureServer,
  encodeTai64n,
  generateKeyPair,
  staticIdentityFromPrivate,
  type RejectReason,
  type SecureServer,
} from '../../src/crypto/index.js';

describe('handshake flood', { timeout: 20_000 }, () => {
  const hostKeys = generateKeyPair();
  const flooderKeys = generateKeyPair();
  const victimKeys = generateKeyPair();
  const keyLimit = { perSecond: 2, burst: 5 };
  let server: SecureServer;
  let port: number;
  const rejections = new Map<RejectReason, number>();

  before(async () => {
    server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [
        { publicKey: flooderKeys.publicKey, id: 'net-flood' },
        { publicKey: victimKeys.publicKey, id: 'net-victim' },
      ],
      keyHandshakeLimit: keyLimit,
      sourceHandshakeLimit: { perSecond: 50, burst: 60 },
      maxPendingPerSource: 8,
    });
    port = server.address().port;
    server.on('session', (session) => session.on('message', (payload) => void session.send(payload)));
    server.on('rejection', (event) => rejections.set(event.reason, (rejections.get(event.reason) ?? 0) + 1));
  });

  after(() => server?.close());

  async function victimExchange(): Promise<number> {
    const started = performance.now();
    const victim = await connectSecure({
      host: '127.0.0.1',
      port,
      localAddress: '127.0.0.2',
      privateKey: victimKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const handshakeMs = performance.now() - started;
    for (let i = 0; i < 20; i++) {
      const echoed = new Promise<Buffer>((resolve) => victim.once('message', resolve));
      await victim.send(Buffer.from(`victim ${i}`));
      assert.equal((await echoed).toString(), `victim ${i}`);
    }
    victim.close();
    return handshakeMs;
  }

  it('a client hammering handshakes is limited per key and per source; another client is served', async () => {
    const started = Date.now();
    let accepted = 0;
    let refused = 0;
    let stop = false;
    const attempt = async (): Promise<void> => {
      while (!stop) {
        try {
          const channel = await connectSecure({
            host: '127.0.0.1',
            port,
            privateKey: flooderKeys.privateKey,
            hostPublicKey: hostKeys.publicKey,
          });
          accepted++;
          channel.close();
        } catch {
          refused++;
        }
      }
    };
    const flooders = Array.from({ length: 6 }, attempt);
    // The victim handshakes in the middle of the flood.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const victimHandshakeMs = await victimExchange();
    await new Promise((resolve) => setTimeout(resolve, 150));
    stop = true;
    await Promise.all(flooders);
    const elapsedS = (Date.now() - started) / 1000;

    assert.ok(refused >= 50, `flooder refused ${refused} times`);
    assert.ok(
      accepted <= keyLimit.burst + Math.ceil(keyLimit.perSecond * elapsedS) + 1,
      `flooder got ${accepted} sessions in ${elapsedS} s`,
    );
    assert.ok((rejections.get('rate_limited') ?? 0) >= 50);
    assert.ok(victimHandshakeMs < 1000, `victim handshake took ${victimHandshakeMs} ms`);
  });

  it('forged initiations naming the victim key do not spend its tokens (charged only once authenticated)', async () => {
    const host = Buffer.from(hostKeys.publicKey, 'base64');
    const forger = staticIdentityFromPrivate(Buffer.from(generateKeyPair().privateKey, 'base64'));
    // The forger knows the victim's public key but not its private key.
    const pretending = { ...forger, publicKey: Buffer.from(victimKeys.publicKey, 'base64') };
    const before = rejections.get('decrypt') ?? 0;
    for (let i = 0; i < 20; i++) {
      const { frame } = createInitiation({
        initiator: pretending,
        responderPublicKey: host,
        timestamp: encodeTai64n(Date.now() + 1e9),
        senderIndex: i,
      });
      await new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }, () => socket.write(frame));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve());
      });
    }
    assert.equal((rejections.get('decrypt') ?? 0) - before, 20);
    await victimExchange();
  });

  it('idle connections beyond maxPendingPerSource are refused; other sources are not affected', async () => {
    const before = rejections.get('rate_limited') ?? 0;
    const sockets = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<Socket>((resolve) => {
            const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
            socket.on('error', () => undefined);
          }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok((rejections.get('rate_limited') ?? 0) - before >= 12);
    await victimExchange();
    for (const socket of sockets) socket.destroy();
  });
});
