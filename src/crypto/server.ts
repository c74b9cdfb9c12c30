// Host side (the responder): accepts TCP connections from the clients in the
// virtual routers, runs the handshake with the checks in the order of
// docs/protocol.md §4.1, and hands out one SecureSession per confirmed client.
// Paper IV-C: the secure communication module on Dom0; one authenticated channel per DomU.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { ValidationError, XnetmonError } from '../errors/index.js';
import {
  DEFAULT_KEY_HANDSHAKE_LIMIT,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_PER_SOURCE,
  DEFAULT_SESSION_MESSAGE_LIMIT,
  DEFAULT_SOURCE_HANDSHAKE_LIMIT,
  DEFAULT_UNDER_LOAD_PENDING_HANDSHAKES,
  MAX_COOKIE_REPLIES_PER_HANDSHAKE,
  MessageType,
  type TokenBucketLimit,
} from './constants.js';
import { CookieChecker, initiationMac2 } from './cookie.js';
import { SecureConnection, type CloseInfo, type ConnectionSettings, type SecureChannelLogger } from './connection.js';
import { REJECT_REASONS, SecureChannelError, isRejectReason, type RejectReason } from './errors.js';
import {
  consumeInitiation,
  createResponse,
  staticIdentityFromPrivate,
  verifyInitiationMac1,
  type StaticIdentity,
} from './handshake.js';
import { SessionKeypair, type ReceivedRecord } from './keypair.js';
import { parsePrivateKey } from './keys.js';
import { parsePeers, type ConfiguredPeer, type SecurePeer } from './peers.js';

export type { SecurePeer } from './peers.js';
import { resolveCommonOptions, type CommonChannelOptions } from './options.js';
import { KeyedTokenBuckets, TokenBucket, validateTokenBucketLimit } from './rate-limit.js';
import { decodeTai64nMs, encodeTai64n } from './tai64n.js';

export interface SecureServerOptions extends CommonChannelOptions {
  /** Host X25519 private key, base64 of the raw 32 bytes. */
  privateKey: string;
  peers: readonly SecurePeer[];
  /** Listen address, or several (one listener each, same port); default 127.0.0.1. */
  host?: string | readonly string[];
  /** Listen port; 0 picks a free one (see address()). Default 0. */
  port?: number;
  /** Handshakes per source address, checked after mac1 and before any DH. */
  sourceHandshakeLimit?: TokenBucketLimit;
  /** Handshakes per client key, checked before the static-static DH, charged once authenticated. */
  keyHandshakeLimit?: TokenBucketLimit;
  /** Connections per source address that have not completed a handshake yet. */
  maxPendingPerSource?: number;
  /** Connections from all sources that have not completed a handshake; above it new ones are closed ('pending_limit'). Default 1024. */
  maxPendingHandshakes?: number;
  /**
   * Under load when more connections than this have not completed a handshake: an initiation
   * without a valid mac2 then gets a cookie reply and no DH. 0 = always. Default 64.
   */
  underLoadPendingHandshakes?: number;
  /** Records per established session (token bucket); when empty the session is closed ('message_rate'). */
  sessionMessageLimit?: TokenBucketLimit;
}

/** Handshake work, for tests and metrics: what the cookie saved and what reached DH. */
export interface HandshakeCounts {
  /** Connections now open without a completed handshake. */
  pending: number;
  cookieReplies: number;
  /** Initiations that passed mac1, mac2 (under load) and the source bucket: each costs DHs. */
  initiationsToDh: number;
}

export interface RejectionEvent {
  reason: RejectReason;
  remoteAddress?: string;
  /** Set when the client key was already known on that connection. */
  peerId?: string;
  message: string;
}

export type SecureServerEvents = {
  /** A client completed the handshake and confirmed the keys. */
  session: [session: SecureSession];
  /** A connection was closed because a check failed. */
  rejection: [event: RejectionEvent];
};

/** What a session needs from its server; kept narrow so the session cannot reach the rest. */
interface ServerContext {
  readonly identity: StaticIdentity;
  readonly settings: ConnectionSettings;
  readonly handshakeTimeoutMs: number;
  readonly sourceBuckets: KeyedTokenBuckets;
  readonly keyBuckets: KeyedTokenBuckets;
  /** Greatest authenticated handshake timestamp per client key; never forgotten while the process runs. */
  readonly greatestTimestamps: Map<string, Buffer>;
  readonly cookies: CookieChecker;
  readonly sessionMessageLimit: TokenBucketLimit;
  readonly counts: HandshakeCounts;
  underLoad(): boolean;
  findPeer(publicKeyBase64: string): ConfiguredPeer | undefined;
  sessionEstablished(session: SecureSession): void;
  sessionClosed(session: SecureSession, info: CloseInfo): void;
}

/** The host's end of one client connection. */
export class SecureSession extends SecureConnection {
  private readonly context: ServerContext;
  private peer: ConfiguredPeer | null = null;
  private established = false;
  private establishedAtMs = 0;
  private handshakeTimer: NodeJS.Timeout | null;
  /** Records after the handshake; created when the session is established. */
  private messageBucket: TokenBucket | null = null;
  /** Cookie replies sent since the last completed handshake on this connection. */
  private cookieReplies = 0;

  /** @internal created by SecureServer */
  constructor(socket: Socket, context: ServerContext) {
    super(socket, context.settings);
    this.context = context;
    this.handshakeTimer = setTimeout(() => {
      if (!this.established)
        this.terminate(
          'handshake_timeout',
          new SecureChannelError('handshake_timeout', 'no confirmed handshake in time'),
        );
    }, context.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  /** Network name of the client (from the peer list). */
  get peerId(): string {
    return this.peer?.id ?? '';
  }

  /** Client public key, base64. */
  get peerPublicKey(): string {
    return this.peer?.publicKeyBase64 ?? '';
  }

  /** Host clock (ms) when the client confirmed the first keys. */
  get establishedAt(): number {
    return this.establishedAtMs;
  }

  get isEstablished(): boolean {
    return this.established && !this.closed;
  }

  /** @internal */
  get configuredPeer(): ConfiguredPeer | null {
    return this.peer;
  }

  /** @internal the peer list changed: keep the same key and name, or close. */
  applyPeerUpdate(): void {
    if (!this.peer || this.closed) return;
    const updated = this.context.findPeer(this.peer.publicKeyBase64);
    if (!updated || updated.id !== this.peer.id) {
      this.terminate('peer_removed');
      return;
    }
    this.peer = updated;
  }

  /** @internal server close or kick. */
  shutdown(reason: 'server_closed' | 'superseded'): void {
    this.terminate(reason);
  }

  /** @internal the graceful close took too long. */
  destroySocket(): void {
    this.socket.destroy();
  }

  /** @internal refused before any handshake (too many pending from one source). */
  shutdownRejected(error: SecureChannelError): void {
    this.terminate(error.reason, error);
  }

  /** @internal periodic check: the client must rekey before REJECT_AFTER_SECONDS. */
  checkKeyExpiry(nowMs: number): void {
    const keypair = this.sendingKeypair;
    if (this.established && keypair && keypair.ageMs(nowMs) >= this.settings.limits.rejectAfterSeconds * 1000) {
      this.terminate(
        'key_expired',
        new SecureChannelError('key_expired', 'client did not rekey before REJECT_AFTER_SECONDS'),
      );
    }
  }

  protected override canSendApplicationData(): boolean {
    return this.established;
  }

  protected override rejectionLogLevel(): 'warn' | 'debug' {
    return this.established ? 'warn' : 'debug';
  }

  protected override logContext(): Record<string, unknown> {
    return { ...super.logContext(), peerId: this.peer?.id };
  }

  protected override handleHandshakeFrame(frame: Buffer, type: number): void {
    if (type !== MessageType.initiation)
      throw new SecureChannelError('unexpected_message', 'host received a handshake response');
    const context = this.context;
    const source = this.remoteAddress ?? 'unknown';
    if (context.underLoad()) {
      // WireGuard's order: mac1 (one HMAC), then mac2, and only then anything that costs DH.
      verifyInitiationMac1(frame, context.identity);
      if (!initiationMac2(frame)) {
        if (++this.cookieReplies > MAX_COOKIE_REPLIES_PER_HANDSHAKE)
          throw new SecureChannelError(
            'rate_limited',
            `more than ${MAX_COOKIE_REPLIES_PER_HANDSHAKE} initiations without mac2 on one connection under load`,
          );
        this.writeFrame([context.cookies.createReply(frame, source)]);
        context.counts.cookieReplies++;
        return;
      }
      if (!context.cookies.verifyMac2(frame, source))
        throw new SecureChannelError('mac2', `initiation mac2 is not made with the cookie of ${source}`);
    }
    const consumed = consumeInitiation(frame, context.identity, {
      afterMac1: () => {
        if (!context.sourceBuckets.take(source))
          throw new SecureChannelError('rate_limited', `handshake rate limit reached for source ${source}`);
        context.counts.initiationsToDh++;
      },
      findPeer: (initiatorStatic) => {
        const peer = context.findPeer(initiatorStatic.toString('base64'));
        if (peer && this.peer && peer.publicKeyBase64 !== this.peer.publicKeyBase64) {
          throw new SecureChannelError('unexpected_message', 'rekey under a different client key');
        }
        return peer;
      },
      admitPeer: (peer) => {
        if (!context.keyBuckets.peek(peer.publicKeyBase64))
          throw new SecureChannelError('rate_limited', `handshake rate limit reached for peer ${peer.id}`);
      },
      staticShared: (peer) => peer.staticShared,
    });
    const keyId = consumed.peer.publicKeyBase64;
    const greatest = context.greatestTimestamps.get(keyId);
    if (greatest && Buffer.compare(consumed.timestamp, greatest) <= 0) {
      throw new SecureChannelError(
        'timestamp_replay',
        `handshake timestamp not newer than the last one from peer ${consumed.peer.id}`,
      );
    }
    // Charged only now: a forger who knows a client's public key cannot empty that client's bucket.
    context.keyBuckets.take(keyId);
    context.greatestTimestamps.set(keyId, consumed.timestamp);

    const nowMs = this.settings.now();
    // Paper IV-C: delta_est = T_host - T_client, learned from the handshake timestamps.
    const clockOffsetMs = nowMs - decodeTai64nMs(consumed.timestamp);
    const { frame: response, keys } = createResponse(consumed.handshake, {
      timestamp: encodeTai64n(nowMs),
      senderIndex: this.newLocalIndex(),
      prepared: consumed.peer.responders.take(),
    });
    this.writeFrame([response]);
    this.cookieReplies = 0;
    const keypair = new SessionKeypair(keys, nowMs, clockOffsetMs);
    this.peer = consumed.peer;
    // TCP keeps order: the client reads the response before any record under the new keys,
    // so we send under them at once and keep the previous keys only for records already in flight.
    this.receivingKeypairs = this.sendingKeypair ? [keypair, this.sendingKeypair] : [keypair];
    this.sendingKeypair = keypair;
  }

  protected override onRecordAuthenticated(record: ReceivedRecord): void {
    // Checked after the tag (only the client can spend its own session's tokens), before delivery.
    if (this.messageBucket && !this.messageBucket.take()) {
      const limit = this.context.sessionMessageLimit;
      this.terminate(
        'message_rate',
        new SecureChannelError(
          'message_rate',
          `peer ${this.peerId} sent records faster than ${limit.perSecond}/s (burst ${limit.burst})`,
        ),
      );
      return;
    }
    if (record.keypair !== this.sendingKeypair) return;
    if (this.receivingKeypairs.length > 1) {
      this.receivingKeypairs = [record.keypair];
      if (this.established) this.safeEmit('rekey', { keysCreatedAtMs: record.keypair.createdAtMs });
    }
    if (!this.established) {
      this.established = true;
      this.establishedAtMs = this.settings.now();
      this.messageBucket = new TokenBucket(this.context.sessionMessageLimit, this.settings.now);
      if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
      this.context.sessionEstablished(this);
    }
  }

  protected override onTerminated(info: CloseInfo): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.context.sessionClosed(this, info);
  }

  private newLocalIndex(): number {
    for (;;) {
      const index = randomBytes(4).readUInt32LE(0);
      if (!this.receivingKeypairs.some((keypair) => keypair.localIndex === index)) return index;
    }
  }
}

const KEY_EXPIRY_SWEEP_MS = 1_000;
const SERVER_CLOSE_GRACE_MS = 2_000;

export class SecureServer extends EventEmitter<SecureServerEvents> {
  private readonly listenHosts: readonly string[];
  private readonly listenPort: number;
  private readonly maxPendingPerSource: number;
  private readonly maxPendingHandshakes: number;
  private readonly context: ServerContext;
  private peersByKey: Map<string, ConfiguredPeer>;
  /** One listener per listen address, all feeding the same sessions and limits. */
  private readonly netServers: Server[];
  private readonly connections = new Set<SecureSession>();
  private readonly sessionsByKey = new Map<string, SecureSession>();
  private readonly pendingPerSource = new Map<string, number>();
  private readonly pendingSessions = new Set<SecureSession>();
  private readonly counts: Record<RejectReason, number>;
  private sweepTimer: NodeJS.Timeout | null = null;
  private logger: SecureChannelLogger | undefined;

  constructor(options: SecureServerOptions) {
    super();
    const common = resolveCommonOptions(options);
    const identity = staticIdentityFromPrivate(parsePrivateKey(options.privateKey, 'privateKey'));
    this.peersByKey = parsePeers(options.peers, identity);
    this.listenHosts =
      typeof options.host === 'string' ? [options.host] : options.host ? [...options.host] : ['127.0.0.1'];
    if (this.listenHosts.length === 0 || this.listenHosts.some((host) => typeof host !== 'string' || host.length === 0))
      throw new ValidationError('host', 'must be an address or a non-empty list of addresses');
    this.listenPort = options.port ?? 0;
    if (!Number.isInteger(this.listenPort) || this.listenPort < 0 || this.listenPort > 65535)
      throw new ValidationError('port', 'must be 0..65535');
    this.maxPendingPerSource = options.maxPendingPerSource ?? DEFAULT_MAX_PENDING_PER_SOURCE;
    if (!Number.isInteger(this.maxPendingPerSource) || this.maxPendingPerSource < 1)
      throw new ValidationError('maxPendingPerSource', 'must be an integer >= 1');
    this.maxPendingHandshakes = options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    if (!Number.isInteger(this.maxPendingHandshakes) || this.maxPendingHandshakes < 1)
      throw new ValidationError('maxPendingHandshakes', 'must be an integer >= 1');
    const underLoadPending = options.underLoadPendingHandshakes ?? DEFAULT_UNDER_LOAD_PENDING_HANDSHAKES;
    if (!Number.isInteger(underLoadPending) || underLoadPending < 0)
      throw new ValidationError('underLoadPendingHandshakes', 'must be an integer >= 0');
    this.logger = common.logger;
    this.counts = Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
    const settings: ConnectionSettings = { now: common.now, limits: common.limits };
    if (common.logger) settings.logger = common.logger;
    this.context = {
      identity,
      settings,
      handshakeTimeoutMs: common.handshakeTimeoutMs,
      sourceBuckets: new KeyedTokenBuckets(
        validateTokenBucketLimit(
          options.sourceHandshakeLimit ?? DEFAULT_SOURCE_HANDSHAKE_LIMIT,
          'sourceHandshakeLimit',
        ),
        common.now,
      ),
      keyBuckets: new KeyedTokenBuckets(
        validateTokenBucketLimit(options.keyHandshakeLimit ?? DEFAULT_KEY_HANDSHAKE_LIMIT, 'keyHandshakeLimit'),
        common.now,
      ),
      greatestTimestamps: new Map(),
      cookies: new CookieChecker(identity.publicKey, common.now),
      sessionMessageLimit: validateTokenBucketLimit(
        options.sessionMessageLimit ?? DEFAULT_SESSION_MESSAGE_LIMIT,
        'sessionMessageLimit',
      ),
      counts: { pending: 0, cookieReplies: 0, initiationsToDh: 0 },
      underLoad: () => this.pendingSessions.size > underLoadPending,
      findPeer: (publicKeyBase64) => this.peersByKey.get(publicKeyBase64),
      sessionEstablished: (session) => this.onSessionEstablished(session),
      sessionClosed: (session, info) => this.onSessionClosed(session, info),
    };
    this.netServers = this.listenHosts.map(() => {
      const netServer = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
      netServer.on('error', (error) => this.logger?.error({ err: error.message }, 'secure server socket error'));
      return netServer;
    });
  }

  /** Start listening; resolves once bound. */
  async listen(): Promise<void> {
    let port = this.listenPort;
    for (const [i, netServer] of this.netServers.entries()) {
      const host = this.listenHosts[i];
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => {
          // All or nothing: the listeners already bound are closed again.
          for (const bound of this.netServers.slice(0, i)) bound.close();
          reject(
            new XnetmonError('ERR_SECURE_LISTEN', `cannot listen on ${host}:${port}: ${error.message}`, {
              cause: error,
            }),
          );
        };
        netServer.once('error', onError);
        netServer.listen(port, host, () => {
          netServer.off('error', onError);
          resolve();
        });
      });
      // Port 0: the kernel's choice for the first address is used for the others too.
      port = (netServer.address() as AddressInfo).port;
    }
    this.sweepTimer = setInterval(() => this.sweepExpiredKeys(), KEY_EXPIRY_SWEEP_MS);
    this.sweepTimer.unref();
    this.logger?.info({ addresses: this.addresses() }, 'secure server listening');
  }

  /** The first listen address. */
  address(): AddressInfo {
    return this.addresses()[0];
  }

  /** Every listen address. */
  addresses(): AddressInfo[] {
    return this.netServers.map((netServer) => {
      const address = netServer.address();
      if (!address || typeof address === 'string')
        throw new XnetmonError('ERR_SECURE_NOT_LISTENING', 'secure server is not listening on TCP');
      return address;
    });
  }

  /**
   * Replace the peer list (live config change). Sessions and pending
   * handshakes whose key was removed, or whose network name changed, are closed
   * with 'peer_removed'. Throws ValidationError and keeps the old list if invalid.
   */
  updatePeers(peers: readonly SecurePeer[]): void {
    this.peersByKey = parsePeers(peers, this.context.identity);
    for (const session of [...this.connections]) session.applyPeerUpdate();
  }

  /** Rejections so far, by reason (every reason present, zero included). */
  rejectionCounts(): Readonly<Record<RejectReason, number>> {
    return { ...this.counts };
  }

  /** Cookie replies and initiations that reached DH so far, and the handshakes pending now. */
  handshakeCounts(): HandshakeCounts {
    return { ...this.context.counts, pending: this.pendingSessions.size };
  }

  /** Confirmed sessions, one per client key. */
  sessions(): SecureSession[] {
    return [...this.sessionsByKey.values()];
  }

  /** Stop accepting, close every session with 'server_closed', resolve when the listener is closed. */
  close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const sessions = [...this.connections];
    const listening = this.netServers.filter((netServer) => netServer.listening);
    const closed = new Promise<void>((resolve) => {
      if (listening.length === 0) {
        resolve();
        return;
      }
      // Sessions end gracefully (buffered records flushed); a peer that does not close its side is cut off.
      const forceTimer = setTimeout(() => {
        for (const session of sessions) session.destroySocket();
      }, SERVER_CLOSE_GRACE_MS);
      let open = listening.length;
      for (const netServer of listening) {
        netServer.close(() => {
          if (--open > 0) return;
          clearTimeout(forceTimer);
          resolve();
        });
      }
    });
    for (const session of sessions) session.shutdown('server_closed');
    return closed;
  }

  private onConnection(socket: Socket): void {
    const source = socket.remoteAddress ?? 'unknown';
    const session = new SecureSession(socket, this.context);
    this.connections.add(session);
    this.pendingSessions.add(session);
    const pending = (this.pendingPerSource.get(source) ?? 0) + 1;
    this.pendingPerSource.set(source, pending);
    // The global cap first: under a flood from many sources each stays below its own limit.
    if (this.pendingSessions.size > this.maxPendingHandshakes) {
      session.shutdownRejected(
        new SecureChannelError(
          'pending_limit',
          `more than ${this.maxPendingHandshakes} unfinished handshakes from all sources`,
        ),
      );
    } else if (pending > this.maxPendingPerSource) {
      session.shutdownRejected(
        new SecureChannelError(
          'rate_limited',
          `more than ${this.maxPendingPerSource} unfinished handshakes from ${source}`,
        ),
      );
    }
  }

  private releasePending(session: SecureSession): void {
    if (!this.pendingSessions.delete(session)) return;
    const source = session.remoteAddress ?? 'unknown';
    const pending = (this.pendingPerSource.get(source) ?? 1) - 1;
    if (pending > 0) this.pendingPerSource.set(source, pending);
    else this.pendingPerSource.delete(source);
  }

  private onSessionEstablished(session: SecureSession): void {
    this.releasePending(session);
    const key = session.peerPublicKey;
    const previous = this.sessionsByKey.get(key);
    this.sessionsByKey.set(key, session);
    if (previous && previous !== session) previous.shutdown('superseded');
    this.logger?.info({ peerId: session.peerId, remoteAddress: session.remoteAddress }, 'secure session established');
    try {
      this.emit('session', session);
    } catch (error) {
      this.logger?.error(
        { err: error instanceof Error ? error.message : String(error) },
        "secure server 'session' listener threw",
      );
    }
  }

  private onSessionClosed(session: SecureSession, info: CloseInfo): void {
    this.releasePending(session);
    this.connections.delete(session);
    const key = session.peerPublicKey;
    if (key && this.sessionsByKey.get(key) === session) this.sessionsByKey.delete(key);
    if (!isRejectReason(info.reason)) return;
    this.counts[info.reason]++;
    const event: RejectionEvent = { reason: info.reason, message: info.error?.message ?? info.reason };
    if (session.remoteAddress) event.remoteAddress = session.remoteAddress;
    if (session.peerId) event.peerId = session.peerId;
    try {
      this.emit('rejection', event);
    } catch (error) {
      this.logger?.error(
        { err: error instanceof Error ? error.message : String(error) },
        "secure server 'rejection' listener threw",
      );
    }
  }

  private sweepExpiredKeys(): void {
    const nowMs = this.context.settings.now();
    for (const session of [...this.sessionsByKey.values()]) session.checkKeyExpiry(nowMs);
  }
}

/** Create a SecureServer and start listening. */
export async function createSecureServer(options: SecureServerOptions): Promise<SecureServer> {
  const server = new SecureServer(options);
  await server.listen();
  return server;
}
