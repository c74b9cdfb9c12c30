// The host under attack: cookie replies (mac2) under load, the global cap on
// unfinished handshakes, and the per-session token bucket on records.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  COOKIE_REPLY_FRAME_BYTES,
  type ChannelClosedError,
  CookieChecker,
  FrameDecoder,
  INITIATION_WITH_MAC2_FRAME_BYTES,
  connectSecure,
  consumeCookieReply,
  consumeResponse,
  cookieKeyFor,
  createInitiation,
  createSecureServer,
  encodeTai64n,
  generateKeyPair,
  initiationWithMac2,
  protocolConstants,
  staticIdentityFromPrivate,
  type RejectReason,
  type RejectionEvent,
  type SecureServer,
  type SecureSession,
} from '../../src/crypto/index.js';

/** A raw TCP connection: frames in, frames out, for what a real client never sends. */
class RawConnection {
  private readonly decoder = new FrameDecoder();
  private readonly frames: Buffer[] = [];
  private waiter: ((frame: Buffer | null) => void) | null = null;
  private ended = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        const waiter = this.waiter;
        this.waiter = null;
        if (waiter) waiter(frame);
        else this.frames.push(frame);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.(null);
      this.waiter = null;
    });
  }

  static open(port: number, localAddress = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  nextFrame(): Promise<Buffer | null> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }
}

function nextRejection(server: SecureServer, reason: RejectReason, timeoutMs = 3000): Promise<RejectionEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      server.off('rejection', onRejection);
      reject(new Error(`no '${reason}' rejection within ${timeoutMs} ms`));
    }, timeoutMs);
    const onRejection = (event: RejectionEvent): void => {
      if (event.reason !== reason) return;
      clearTimeout(timer);
      server.off('rejection', onRejection);
      resolve(event);
    };
    server.on('rejection', onRejection);
  });
}

let lastTimestampMs = Date.now();
function freshTimestamp(): Buffer {
  lastTimestampMs = Math.max(lastTimestampMs + 1, Date.now());
  return encodeTai64n(lastTimestampMs);
}

describe('cookie reply under load', { timeout: 20_000 }, () => {
  const hostKeys = generateKeyPair();
  const hostPublic = Buffer.from(hostKeys.publicKey, 'base64');
  const clientKeys = generateKeyPair();
  const client = staticIdentityFromPrivate(Buffer.from(clientKeys.privateKey, 'base64'));
  let server: SecureServer;
  let port: number;

  before(async () => {
    server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [{ publicKey: clientKeys.publicKey, id: 'net-a' }],
      keyHandshakeLimit: { perSecond: 1000, burst: 1000 },
      // Forced "under load": any unfinished handshake (the one being handled counts) is above 0.
      underLoadPendingHandshakes: 0,
    });
    port = server.address().port;
    server.on('session', (session) => session.on('message', (payload) => void session.send(payload)));
  });

  after(() => server?.close());

  it('answers an initiation without mac2 with a cookie reply and no DH; the retry with mac2 gets the response', async () => {
    const connection = await RawConnection.open(port);
    const { frame, handshake } = createInitiation({
      initiator: client,
      responderPublicKey: hostPublic,
      timestamp: freshTimestamp(),
      senderIndex: 77,
    });
    const before = server.handshakeCounts();
    connection.write(frame);
    const reply = await connection.nextFrame();
    assert.ok(reply, 'host closed instead of sending a cookie reply');
    assert.equal(reply[4], protocolConstants.MessageType.cookieReply);
    assert.equal(reply.length, COOKIE_REPLY_FRAME_BYTES);
    const afterCookie = server.handshakeCounts();
    assert.equal(afterCookie.cookieReplies, before.cookieReplies + 1);
    assert.equal(
      afterCookie.initiationsToDh,
      before.initiationsToDh,
      'the host did DH work for an initiation without mac2',
    );

    const cookie = consumeCookieReply(reply, frame, cookieKeyFor(hostPublic));
    const retry = initiationWithMac2(frame, cookie);
    assert.equal(retry.length, INITIATION_WITH_MAC2_FRAME_BYTES);
    assert.deepEqual(
      retry.subarray(4, frame.length),
      frame.subarray(4),
      'the bytes before mac2 are the initiation as first sent',
    );
    connection.write(retry);
    const response = await connection.nextFrame();
    assert.ok(response);
    assert.equal(response[4], protocolConstants.MessageType.response);
    assert.ok(consumeResponse(handshake, response).keys);
    assert.equal(server.handshakeCounts().initiationsToDh, before.initiationsToDh + 1);
    connection.socket.destroy();
  });

  it('connectSecure() completes on its own: it keeps the cookie and retries with mac2', async () => {
    const before = server.handshakeCounts().cookieReplies;
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    assert.equal(server.handshakeCounts().cookieReplies, before + 1);
    const echoed = new Promise<Buffer>((resolve) => channel.once('message', resolve));
    await channel.send(Buffer.from('after a cookie'));
    assert.equal((await echoed).toString(), 'after a cookie');
    // A rekey on the same connection uses the stored cookie: no second cookie reply.
    await channel.rekey();
    assert.equal(server.handshakeCounts().cookieReplies, before + 1);
    channel.close();
  });

  it("refuses an initiation whose mac2 was not made with this source's cookie", async () => {
    const connection = await RawConnection.open(port);
    const { frame } = createInitiation({
      initiator: client,
      responderPublicKey: hostPublic,
      timestamp: freshTimestamp(),
      senderIndex: 78,
    });
    const rejected = nextRejection(server, 'mac2');
    const before = server.handshakeCounts().initiationsToDh;
    connection.write(initiationWithMac2(frame, randomBytes(16)));
    assert.equal(await connection.nextFrame(), null, 'the host answered a wrong mac2');
    assert.equal((await rejected).remoteAddress, '127.0.0.1');
    assert.equal(server.handshakeCounts().initiationsToDh, before);
  });

  it('a cookie is bound to the source address', async () => {
    // Cookie fetched from 127.0.0.1, used from 127.0.0.2.
    const first = await RawConnection.open(port);
    const { frame } = createInitiation({
      initiator: client,
      responderPublicKey: hostPublic,
      timestamp: freshTimestamp(),
      senderIndex: 79,
    });
    first.write(frame);
    const reply = await first.nextFrame();
    assert.ok(reply);
    const cookie = consumeCookieReply(reply, frame, cookieKeyFor(hostPublic));
    first.socket.destroy();
    const other = await RawConnection.open(port, '127.0.0.2');
    const rejected = nextRejection(server, 'mac2');
    other.write(initiationWithMac2(frame, cookie));
    assert.equal(await other.nextFrame(), null);
    await rejected;
  });

  it('a cookie reply for another initiation or from another host key is refused by the client', async () => {
    const checker = new CookieChecker(hostPublic, () => 0);
    const { frame } = createInitiation({
      initiator: client,
      responderPublicKey: hostPublic,
      timestamp: freshTimestamp(),
      senderIndex: 80,
    });
    const { frame: other } = createInitiation({
      initiator: client,
      responderPublicKey: hostPublic,
      timestamp: freshTimestamp(),
      senderIndex: 81,
    });
    const reply = checker.createReply(frame, '10.0.0.1');
    assert.deepEqual(consumeCookieReply(reply, frame, cookieKeyFor(hostPublic)), checker.cookieFor('10.0.0.1'));
    assert.throws(() => consumeCookieReply(reply, other, cookieKeyFor(hostPublic)), {
      code: 'ERR_SECURE_UNKNOWN_INDEX',
    });
    other.writeUInt32LE(80, 5); // same index, different mac1: the additional data differs
    assert.throws(() => consumeCookieReply(reply, other, cookieKeyFor(hostPublic)), { code: 'ERR_SECURE_DECRYPT' });
    assert.throws(() => consumeCookieReply(reply, frame, cookieKeyFor(randomBytes(32))), {
      code: 'ERR_SECURE_DECRYPT',
    });
  });
});

describe('CookieChecker secret rotation', () => {
  it('a cookie is accepted under the current and the previous secret, not older', () => {
    let nowMs = 0;
    const host = Buffer.from(generateKeyPair().publicKey, 'base64');
    const checker = new CookieChecker(host, () => nowMs, 120_000);
    const client = staticIdentityFromPrivate(Buffer.from(generateKeyPair().privateKey, 'base64'));
    const { frame } = createInitiation({
      initiator: client,
      responderPublicKey: host,
      timestamp: encodeTai64n(1),
      senderIndex: 1,
    });
    const withMac2 = initiationWithMac2(frame, checker.cookieFor('192.0.2.1'));
    assert.equal(checker.verifyMac2(withMac2, '192.0.2.1'), true);
    assert.equal(checker.verifyMac2(withMac2, '192.0.2.2'), false);
    assert.equal(checker.verifyMac2(frame, '192.0.2.1'), false, 'no mac2 is not a valid mac2');
    nowMs = 121_000; // one rotation: the cookie's secret is the previous one
    assert.equal(checker.verifyMac2(withMac2, '192.0.2.1'), true);
    nowMs = 242_000; // two rotations: gone
    assert.equal(checker.verifyMac2(withMac2, '192.0.2.1'), false);
  });
});

describe('global cap on unfinished handshakes', { timeout: 20_000 }, () => {
  it('over maxPendingHandshakes new connections are closed at once with pending_limit, whatever their source', async () => {
    const hostKeys = generateKeyPair();
    const server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [],
      maxPendingHandshakes: 3,
      maxPendingPerSource: 100,
      underLoadPendingHandshakes: 100,
    });
    const reasons: RejectReason[] = [];
    server.on('rejection', (event) => reasons.push(event.reason));
    const sockets: Socket[] = [];
    try {
      // Six sources, one idle connection each: every source is far below its own limit.
      for (let i = 1; i <= 6; i++) {
        sockets.push(
          await new Promise<Socket>((resolve) => {
            const socket = connect(
              { host: '127.0.0.1', port: server.address().port, localAddress: `127.0.0.${10 + i}` },
              () => resolve(socket),
            );
            socket.on('error', () => undefined);
          }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(reasons, ['pending_limit', 'pending_limit', 'pending_limit']);
      assert.equal(server.rejectionCounts().pending_limit, 3);
      assert.equal(server.handshakeCounts().pending, 3);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
    }
  });
});

describe('token bucket on the records of a session', { timeout: 20_000 }, () => {
  it('a session over its record budget is closed with message_rate and the excess is not delivered', async () => {
    const hostKeys = generateKeyPair();
    const clientKeys = generateKeyPair();
    const server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [{ publicKey: clientKeys.publicKey, id: 'net-chatty' }],
      sessionMessageLimit: { perSecond: 0, burst: 5 },
    });
    try {
      const delivered: string[] = [];
      const sessionReady = new Promise<SecureSession>((resolve) => server.once('session', resolve));
      const channel = await connectSecure({
        host: '127.0.0.1',
        port: server.address().port,
        privateKey: clientKeys.privateKey,
        hostPublicKey: hostKeys.publicKey,
      });
      const session = await sessionReady;
      session.on('message', (payload) => delivered.push(payload.toString()));
      const closed = new Promise<ChannelClosedError | undefined>((resolve) =>
        session.once('close', (info) => resolve(info.error as ChannelClosedError | undefined)),
      );
      const rejected = nextRejection(server, 'message_rate');
      for (let i = 0; i < 10; i++) await channel.send(Buffer.from(`update ${i}`));
      const error = await closed;
      assert.equal(error?.code, 'ERR_SECURE_MESSAGE_RATE');
      assert.equal((await rejected).peerId, 'net-chatty');
      assert.deepEqual(delivered, ['update 0', 'update 1', 'update 2', 'update 3', 'update 4']);
      channel.close();
    } finally {
      await server.close();
    }
  });

  it('the default takes a full-table resync in 64 KiB records at once (1,000,000 routes, ~200 records)', async () => {
    const hostKeys = generateKeyPair();
    const clientKeys = generateKeyPair();
    const server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [{ publicKey: clientKeys.publicKey, id: 'net-resync' }],
    });
    try {
      let received = 0;
      const allIn = new Promise<void>((resolve) =>
        server.once('session', (session) =>
          session.on('message', () => {
            if (++received === 2_000) resolve();
          }),
        ),
      );
      const channel = await connectSecure({
        host: '127.0.0.1',
        port: server.address().port,
        privateKey: clientKeys.privateKey,
        hostPublicKey: hostKeys.publicKey,
      });
      // Ten times that, in small records: still inside the default burst.
      const record = Buffer.alloc(100, 1);
      for (let i = 0; i < 2_000; i++) await channel.send(record);
      await allIn;
      assert.equal(server.rejectionCounts().message_rate, 0);
      channel.close();
    } finally {
      await server.close();
    }
  });
});
