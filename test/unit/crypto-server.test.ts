// The host over loopback TCP: each attack is refused with its reason, closes
// only its own connection, and a well-behaved client keeps being served.
// A raw client built from the transport-free pieces injects the bad bytes.

import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  ChannelClosedError,
  FrameDecoder,
  SecureChannelError,
  connectSecure,
  consumeResponse,
  createInitiation,
  createSecureServer,
  encodeTai64n,
  generateKeyPair,
  mac1KeyFor,
  protocolConstants,
  sealRecord,
  staticIdentityFromPrivate,
  type KeyPairBase64,
  type RejectReason,
  type RejectionEvent,
  type SecureChannel,
  type SecureServer,
  type SecureSession,
  type StaticIdentity,
  type TransportKeys,
} from '../../src/crypto/index.js';

const EMPTY = Buffer.alloc(0);

/** A TCP connection that speaks raw frames, for sending what a real client never would. */
class RawConnection {
  private readonly decoder = new FrameDecoder();
  private readonly frames: Buffer[] = [];
  private waiter: ((frame: Buffer | null) => void) | null = null;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) this.deliver(frame);
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.waiter?.(null);
        this.waiter = null;
        resolve();
      }),
    );
  }

  static open(port: number, localAddress?: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) }, () =>
        resolve(new RawConnection(socket)),
      );
      socket.once('error', reject);
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Next frame from the host, or null once the connection closed. */
  nextFrame(): Promise<Buffer | null> {
    const frame = this.frames.shift();
    if (frame) return Promise.resolve(frame);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiter = resolve));
  }

  private deliver(frame: Buffer): void {
    if (this.waiter) {
      const waiter = this.waiter;
      this.waiter = null;
      waiter(frame);
    } else {
      this.frames.push(frame);
    }
  }
}

interface RawSession {
  connection: RawConnection;
  keys: TransportKeys;
  initiation: Buffer;
  /** Seal a record to the host; counter defaults to the next one. */
  record(payload: Buffer, options?: { counter?: bigint; timeMs?: number }): Buffer;
}

let lastRawTimestampMs = Date.now();

async function rawHandshake(
  port: number,
  identity: StaticIdentity,
  hostPublicKey: Buffer,
  nowMs = () => Date.now(),
): Promise<RawSession> {
  const connection = await RawConnection.open(port);
  lastRawTimestampMs = Math.max(lastRawTimestampMs + 1, nowMs());
  const { frame, handshake } = createInitiation({
    initiator: identity,
    responderPublicKey: hostPublicKey,
    timestamp: encodeTai64n(lastRawTimestampMs),
    senderIndex: 42,
  });
  connection.write(frame);
  const response = await connection.nextFrame();
  assert.ok(response, 'host closed instead of responding');
  const { keys } = consumeResponse(handshake, response);
  let counter = 0n;
  const record = (payload: Buffer, options: { counter?: bigint; timeMs?: number } = {}): Buffer => {
    const used = options.counter ?? counter++;
    return sealRecord({
      key: keys.sendKey,
      receiverIndex: keys.remoteIndex,
      counter: used,
      senderTimeMs: options.timeMs ?? nowMs(),
      payload,
    });
  };
  connection.write(record(EMPTY)); // keepalive: confirms the keys
  return { connection, keys, initiation: frame, record };
}

function identityOf(pair: KeyPairBase64): StaticIdentity {
  return staticIdentityFromPrivate(Buffer.from(pair.privateKey, 'base64'));
}

function recomputeMac1(frame: Buffer, receiverPublicKey: Buffer): void {
  const mac1At = frame.length - protocolConstants.MAC_BYTES;
  createHmac('sha256', mac1KeyFor(receiverPublicKey))
    .update(frame.subarray(4, mac1At))
    .digest()
    .copy(frame, mac1At, 0, protocolConstants.MAC_BYTES);
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

function nextSession(server: SecureServer, peerId: string): Promise<SecureSession> {
  return new Promise((resolve) => {
    const onSession = (session: SecureSession): void => {
      if (session.peerId !== peerId) return;
      server.off('session', onSession);
      resolve(session);
    };
    server.on('session', onSession);
  });
}

function nextMessage(channel: SecureChannel | SecureSession): Promise<Buffer> {
  return new Promise((resolve) => channel.once('message', resolve));
}

describe('SecureServer over loopback', { timeout: 20_000 }, () => {
  const hostKeys = generateKeyPair();
  const hostPublic = Buffer.from(hostKeys.publicKey, 'base64');
  const goodKeys = generateKeyPair();
  const otherKeys = generateKeyPair();
  const strangerKeys = generateKeyPair();
  const peers = [
    { publicKey: goodKeys.publicKey, id: 'net-good' },
    { publicKey: otherKeys.publicKey, id: 'net-other' },
  ];
  let server: SecureServer;
  let port: number;
  let good: SecureChannel;
  let goodCloses = 0;
  let pings = 0;

  async function assertGoodStillServed(): Promise<void> {
    const text = `ping ${++pings}`;
    const reply = nextMessage(good);
    await good.send(Buffer.from(text));
    assert.equal((await reply).toString(), `echo ${text}`);
    assert.equal(goodCloses, 0);
  }

  before(async () => {
    server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers,
      sourceHandshakeLimit: { perSecond: 1000, burst: 1000 },
      keyHandshakeLimit: { perSecond: 1000, burst: 1000 },
      handshakeTimeoutMs: 800,
    });
    port = server.address().port;
    server.on('session', (session) => {
      session.on('message', (payload) => void session.send(Buffer.concat([Buffer.from('echo '), payload])));
    });
    good = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: goodKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    good.on('close', () => goodCloses++);
    await assertGoodStillServed();
  });

  after(async () => {
    good?.close();
    await server?.close();
  });

  it('a client pinning the wrong host key is refused (mac1)', async () => {
    const rejection = nextRejection(server, 'mac1');
    await assert.rejects(
      connectSecure({
        host: '127.0.0.1',
        port,
        privateKey: otherKeys.privateKey,
        hostPublicKey: strangerKeys.publicKey,
      }),
      (error: unknown) => error instanceof ChannelClosedError,
    );
    await rejection;
    await assertGoodStillServed();
  });

  it('an unknown client key is refused (unknown_key)', async () => {
    const rejection = nextRejection(server, 'unknown_key');
    await assert.rejects(
      connectSecure({
        host: '127.0.0.1',
        port,
        privateKey: strangerKeys.privateKey,
        hostPublicKey: hostKeys.publicKey,
      }),
      ChannelClosedError,
    );
    assert.equal((await rejection).peerId, undefined);
    await assertGoodStillServed();
  });

  it('a small-order ephemeral key is refused before any DH (low_order_key)', async () => {
    for (const point of [
      '0000000000000000000000000000000000000000000000000000000000000000',
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    ]) {
      const { frame } = createInitiation({
        initiator: identityOf(otherKeys),
        responderPublicKey: hostPublic,
        timestamp: encodeTai64n(Date.now()),
        senderIndex: 1,
      });
      Buffer.from(point, 'hex').copy(frame, 9);
      recomputeMac1(frame, hostPublic);
      const connection = await RawConnection.open(port);
      const rejection = nextRejection(server, 'low_order_key');
      connection.write(frame);
      await rejection;
      await connection.closed;
    }
    await assertGoodStillServed();
  });

  it('a small-order or all-zero static key inside the initiation is refused (low_order_key)', async () => {
    for (const point of [
      '0000000000000000000000000000000000000000000000000000000000000000',
      '0100000000000000000000000000000000000000000000000000000000000000',
    ]) {
      const forged: StaticIdentity = { ...identityOf(otherKeys), publicKey: Buffer.from(point, 'hex') };
      const { frame } = createInitiation({
        initiator: forged,
        responderPublicKey: hostPublic,
        timestamp: encodeTai64n(Date.now()),
        senderIndex: 1,
      });
      const connection = await RawConnection.open(port);
      const rejection = nextRejection(server, 'low_order_key');
      connection.write(frame);
      await rejection;
      await connection.closed;
    }
    await assertGoodStillServed();
  });

  it('a replayed handshake (same or older timestamp) is refused (timestamp_replay)', async () => {
    const first = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const replay = await RawConnection.open(port);
    const rejection = nextRejection(server, 'timestamp_replay');
    replay.write(first.initiation);
    const event = await rejection;
    assert.equal(event.peerId, undefined);
    assert.equal(await replay.nextFrame(), null, 'no response to a replay');

    const older = await RawConnection.open(port);
    const olderRejection = nextRejection(server, 'timestamp_replay');
    older.write(
      createInitiation({
        initiator: identityOf(otherKeys),
        responderPublicKey: hostPublic,
        timestamp: encodeTai64n(Date.now() - 60_000),
        senderIndex: 1,
      }).frame,
    );
    await olderRejection;
    first.connection.socket.destroy();
    await assertGoodStillServed();
  });

  it('a duplicated record is refused (replay) and closes only that session', async () => {
    const sessionReady = nextSession(server, 'net-other');
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const session = await sessionReady;
    const frame = raw.record(Buffer.from('route add 10.0.0.0/8'));
    const delivered = nextMessage(session);
    raw.connection.write(frame);
    assert.equal((await delivered).toString(), 'route add 10.0.0.0/8');
    const rejection = nextRejection(server, 'replay');
    raw.connection.write(frame);
    assert.equal((await rejection).peerId, 'net-other');
    await raw.connection.closed;
    assert.equal(session.closeReason, 'replay');
    await assertGoodStillServed();
  });

  it('reordering within the window is accepted once each; beyond the window is refused (replay)', async () => {
    const sessionReady = nextSession(server, 'net-other');
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const session = await sessionReady;
    const received: string[] = [];
    session.on('message', (payload) => received.push(payload.toString()));
    for (const counter of [3n, 1n, 2n, 5000n, 4n])
      raw.connection.write(raw.record(Buffer.from(`c${counter}`), { counter }));
    const rejection = nextRejection(server, 'replay');
    raw.connection.write(raw.record(Buffer.from('c9000'), { counter: 9000n }));
    raw.connection.write(raw.record(Buffer.from('c6'), { counter: 6n })); // 9000 - 6 >= 8160: outside the window
    await rejection;
    assert.deepEqual(received, ['c3', 'c1', 'c2', 'c5000', 'c4', 'c9000']);
    await assertGoodStillServed();
  });

  it('a bit-flipped record is refused (decrypt)', async () => {
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const frame = raw.record(Buffer.from('route del 10.0.0.0/8'));
    frame[frame.length - 20] ^= 0x04;
    const rejection = nextRejection(server, 'decrypt');
    raw.connection.write(frame);
    await rejection;
    await raw.connection.closed;
    await assertGoodStillServed();
  });

  it('a record cut short by the end of the stream is refused (truncated)', async () => {
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const frame = raw.record(Buffer.alloc(1000, 1));
    const rejection = nextRejection(server, 'truncated');
    raw.connection.socket.end(frame.subarray(0, 500));
    await rejection;
    await assertGoodStillServed();
  });

  it('an oversized frame is refused from its header alone (oversize)', async () => {
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const header = Buffer.alloc(5);
    header.writeUInt32LE(0x7fffffff);
    header[4] = protocolConstants.MessageType.data;
    const rejection = nextRejection(server, 'oversize');
    raw.connection.write(header); // no body follows: the host must not wait for 2 GiB
    await rejection;
    await raw.connection.closed;
    await assertGoodStillServed();
  });

  it('a record at REJECT_AFTER_MESSAGES is refused (counter_limit)', async () => {
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const rejection = nextRejection(server, 'counter_limit');
    raw.connection.write(raw.record(Buffer.from('x'), { counter: protocolConstants.DEFAULT_REJECT_AFTER_MESSAGES }));
    await rejection;
    await assertGoodStillServed();
  });

  it('a record whose clock jumped beyond e_max is refused (skew)', async () => {
    const raw = await rawHandshake(port, identityOf(otherKeys), hostPublic);
    const rejection = nextRejection(server, 'skew');
    raw.connection.write(raw.record(Buffer.from('x'), { timeMs: Date.now() + 5000 }));
    await rejection;
    await assertGoodStillServed();
  });

  it('data before a handshake, an unknown type, and silence are refused', async () => {
    const early = await RawConnection.open(port);
    const unexpected = nextRejection(server, 'unexpected_message');
    early.write(
      sealRecord({
        key: randomBytes(32),
        receiverIndex: 1,
        counter: 0n,
        senderTimeMs: Date.now(),
        payload: Buffer.from('x'),
      }),
    );
    await unexpected;

    const junk = await RawConnection.open(port);
    const malformed = nextRejection(server, 'malformed');
    junk.write(Buffer.from([10, 0, 0, 0, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    await malformed;

    const silent = await RawConnection.open(port);
    const timeout = nextRejection(server, 'handshake_timeout');
    await timeout;
    await silent.closed;
    await assertGoodStillServed();
  });

  it('counts every rejection by reason', () => {
    const counts = server.rejectionCounts();
    for (const reason of [
      'mac1',
      'unknown_key',
      'low_order_key',
      'timestamp_replay',
      'replay',
      'decrypt',
      'truncated',
      'oversize',
      'counter_limit',
      'skew',
      'unexpected_message',
      'malformed',
      'handshake_timeout',
    ] as const) {
      assert.ok(counts[reason] >= 1, `${reason} counted`);
    }
    assert.equal(counts.rate_limited, 0);
  });

  it('a newer session of the same client supersedes the older one', async () => {
    const firstReady = nextSession(server, 'net-other');
    const first = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const firstSession = await firstReady;
    const firstClosed = new Promise((resolve) => first.once('close', resolve));
    const second = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    await firstClosed;
    assert.equal(first.closeReason, 'peer_closed');
    assert.equal(firstSession.closeReason, 'superseded');
    const reply = nextMessage(second);
    await second.send(Buffer.from('hi'));
    assert.equal((await reply).toString(), 'echo hi');
    assert.equal(server.sessions().filter((session) => session.peerId === 'net-other').length, 1);
    second.close();
    await assertGoodStillServed();
  });

  it('updatePeers() kicks a removed key, refuses it afterwards, and accepts it once re-added', async () => {
    const sessionReady = nextSession(server, 'net-other');
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const session = await sessionReady;
    const closed = new Promise((resolve) => channel.once('close', resolve));
    server.updatePeers([peers[0]]);
    await closed;
    assert.equal(session.closeReason, 'peer_removed');
    const refused = nextRejection(server, 'unknown_key');
    await assert.rejects(
      connectSecure({ host: '127.0.0.1', port, privateKey: otherKeys.privateKey, hostPublicKey: hostKeys.publicKey }),
      ChannelClosedError,
    );
    await refused;
    assert.throws(
      () => server.updatePeers([{ publicKey: 'nope', id: 'x' }]),
      (error: unknown) => error instanceof Error && 'path' in error,
    );
    server.updatePeers(peers);
    const back = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    back.close();
    await assertGoodStillServed();
  });

  it('rekeys after REKEY_AFTER_MESSAGES without losing or reordering messages', async () => {
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
      rekeyAfterMessages: 5n,
    });
    let rekeys = 0;
    channel.on('rekey', () => rekeys++);
    const replies: string[] = [];
    const allReplies = new Promise<void>((resolve) =>
      channel.on('message', (payload) => {
        replies.push(payload.toString());
        if (replies.length === 40) resolve();
      }),
    );
    for (let i = 0; i < 40; i++) {
      // One at a time: a rekey completes in one round trip, so several happen over 40 messages.
      const reply = nextMessage(channel);
      await channel.send(Buffer.from(`m${i}`));
      await reply;
    }
    await allReplies;
    assert.deepEqual(
      replies,
      Array.from({ length: 40 }, (_, i) => `echo m${i}`),
    );
    assert.ok(rekeys >= 3, `rekeyed ${rekeys} times`);
    channel.close();
    await assertGoodStillServed();
  });

  it('holds messages that arrive before anyone listens, and the iterator throws on a rejection', async () => {
    // Its own server: the shared one attaches an echo listener to every session.
    const quiet = await createSecureServer({ privateKey: hostKeys.privateKey, peers });
    try {
      const sessionReady = nextSession(quiet, 'net-other');
      const raw = await rawHandshake(quiet.address().port, identityOf(otherKeys), hostPublic);
      raw.connection.write(raw.record(Buffer.from('early 1')));
      raw.connection.write(raw.record(Buffer.from('early 2')));
      const session = await sessionReady;
      await new Promise((resolve) => setTimeout(resolve, 50)); // both records are in, nobody listened yet
      const iterator = session.messages();
      assert.equal(((await iterator.next()).value as Buffer).toString(), 'early 1');
      assert.equal(((await iterator.next()).value as Buffer).toString(), 'early 2');
      const pending = iterator.next();
      raw.connection.write(raw.record(Buffer.from('dup'), { counter: 1n }));
      await assert.rejects(
        pending,
        (error: unknown) => error instanceof ChannelClosedError && error.reason === 'replay',
      );
    } finally {
      await quiet.close();
    }
    await assertGoodStillServed();
  });

  it('the client reports a host that goes away with a close reason', async () => {
    const sessionReady = nextSession(server, 'net-other');
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: otherKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
    });
    const closed = new Promise<{ reason: string }>((resolve) => channel.once('close', resolve));
    (await sessionReady).close();
    assert.equal((await closed).reason, 'peer_closed');
    assert.throws(() => channel.send(Buffer.from('late')), ChannelClosedError);
    await assertGoodStillServed();
  });
});

describe('timers with an injected clock', { timeout: 20_000 }, () => {
  const hostKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  let clock = 1_800_000_000_000;
  const now = (): number => clock;
  let server: SecureServer;
  let port: number;

  before(async () => {
    server = await createSecureServer({
      privateKey: hostKeys.privateKey,
      peers: [{ publicKey: clientKeys.publicKey, id: 'net-clock' }],
      now,
    });
    port = server.address().port;
    server.on('session', (session) => session.on('message', (payload) => void session.send(payload)));
  });

  after(() => server?.close());

  it('the client rekeys once its keys are REKEY_AFTER_SECONDS old', async () => {
    // The clock jumps only once the host has the keepalive: a record in flight during a jump would be skewed.
    const established = nextSession(server, 'net-clock');
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
      now,
    });
    await established;
    const rekeyed = new Promise((resolve) => channel.once('rekey', resolve));
    clock += 121_000;
    const echoed = nextMessage(channel);
    await channel.send(Buffer.from('after 121 s'));
    await rekeyed;
    assert.equal((await echoed).toString(), 'after 121 s');
    const again = nextMessage(channel);
    await channel.send(Buffer.from('new keys'));
    assert.equal((await again).toString(), 'new keys');
    channel.close();
  });

  it('the host closes a session whose client never rekeyed (key_expired), by record or by its sweep', async () => {
    const client = identityOf(clientKeys);
    const hostPublic = Buffer.from(hostKeys.publicKey, 'base64');
    clock += 1000; // past the handshake timestamps the earlier test's client used
    let established = nextSession(server, 'net-clock');
    const raw = await rawHandshake(port, client, hostPublic, now);
    await established;
    clock += 181_000;
    const byRecord = nextRejection(server, 'key_expired');
    raw.connection.write(raw.record(Buffer.from('stale keys')));
    await byRecord;

    established = nextSession(server, 'net-clock');
    const idle = await rawHandshake(port, client, hostPublic, now);
    await established;
    clock += 181_000;
    const bySweep = nextRejection(server, 'key_expired', 2500);
    await bySweep;
    await idle.connection.closed;
  });

  it('a skewed clock on the client side is refused by the host (skew)', async () => {
    let shift = 0;
    const channel = await connectSecure({
      host: '127.0.0.1',
      port,
      privateKey: clientKeys.privateKey,
      hostPublicKey: hostKeys.publicKey,
      now: () => clock + shift,
    });
    const echoed = nextMessage(channel);
    await channel.send(Buffer.from('in sync'));
    assert.equal((await echoed).toString(), 'in sync');
    shift = 2500;
    const rejection = nextRejection(server, 'skew');
    const closed = new Promise((resolve) => channel.once('close', resolve));
    await channel.send(Buffer.from('clock jumped'));
    await rejection;
    await closed;
  });

  it('refuses invalid options with ValidationError', async () => {
    await assert.rejects(
      createSecureServer({ privateKey: 'short', peers: [] }),
      (error: unknown) => error instanceof Error && (error as { code?: string }).code === 'ERR_INVALID',
    );
    await assert.rejects(
      createSecureServer({
        privateKey: hostKeys.privateKey,
        peers: [{ publicKey: Buffer.alloc(32).toString('base64'), id: 'zero' }],
      }),
      /small-order/,
    );
    await assert.rejects(
      createSecureServer({
        privateKey: hostKeys.privateKey,
        peers: [
          { publicKey: clientKeys.publicKey, id: 'a' },
          { publicKey: clientKeys.publicKey, id: 'b' },
        ],
      }),
      /same key/,
    );
    await assert.rejects(
      connectSecure({
        host: '127.0.0.1',
        port,
        privateKey: clientKeys.privateKey,
        hostPublicKey: Buffer.alloc(32).toString('base64'),
      }),
      /small-order/,
    );
    await assert.rejects(
      connectSecure({
        host: '127.0.0.1',
        port,
        privateKey: clientKeys.privateKey,
        hostPublicKey: hostKeys.publicKey,
        rekeyAfterSeconds: 500,
      }),
      /rejectAfterSeconds/,
    );
    assert.ok(new SecureChannelError('replay', 'x').code === 'ERR_SECURE_REPLAY');
  });
});
