// Client side (the initiator), run inside each virtual router: opens the TCP
// connection, runs the handshake, and rekeys on time and message count.
// Reconnecting is the caller's job; the channel reports why it closed.
// Paper IV-C: the DomU end of the secure communication module.

import { randomBytes, type KeyObject } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { ValidationError } from '../errors/index.js';
import {
  COOKIE_CLIENT_MAX_AGE_MS,
  DEFAULT_REKEY_AFTER_MESSAGES,
  DEFAULT_REKEY_AFTER_SECONDS,
  MessageType,
} from './constants.js';
import { consumeCookieReply, cookieKeyFor, initiationWithMac2 } from './cookie.js';
import { SecureConnection, type CloseInfo, type ConnectionSettings } from './connection.js';
import { ChannelClosedError, ConnectError, SecureChannelError } from './errors.js';
import {
  completeInitiation,
  consumeResponse,
  prepareInitiation,
  staticIdentityFromPrivate,
  type InitiatorHandshake,
  type PreparedInitiation,
  type StaticIdentity,
} from './handshake.js';
import { SessionKeypair } from './keypair.js';
import { parsePrivateKey, parsePublicKey } from './keys.js';
import { positiveCounter, positiveNumber, resolveCommonOptions, type CommonChannelOptions } from './options.js';
import { MadeAhead, sha256, x25519, x25519PublicKeyObject } from './primitives.js';
import { decodeTai64nMs, monotonicTai64n } from './tai64n.js';

export interface ConnectSecureOptions extends CommonChannelOptions {
  host: string;
  port: number;
  /** Client X25519 private key, base64 of the raw 32 bytes. */
  privateKey: string;
  /** The host's X25519 public key (pinned), base64. */
  hostPublicKey: string;
  /** Local address to bind (e.g. the router's address toward the host). */
  localAddress?: string;
  /** Start a new handshake once the keys are this old. Default 120 (WireGuard REKEY_AFTER_TIME). */
  rekeyAfterSeconds?: number;
  /** Start a new handshake after this many records. Default 2^60 (WireGuard REKEY_AFTER_MESSAGES). */
  rekeyAfterMessages?: bigint;
}

interface ClientConfig {
  keys: StaticKeys;
  rekeyAfterMs: number;
  rekeyAfterMessages: bigint;
  handshakeTimeoutMs: number;
}

interface PendingHandshake {
  handshake: InitiatorHandshake;
  /** The initiation as first sent (without mac2): a cookie reply names it, the retry repeats it. */
  initiation: Buffer;
  /** Sent again with mac2 after a cookie reply; a second cookie reply is then refused. */
  retriedWithCookie: boolean;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const EMPTY = Buffer.alloc(0);
const noop = (): void => {};

/** The client's end of the secure channel. */
export class SecureChannel extends SecureConnection {
  readonly hostPublicKey: string;
  private readonly config: ClientConfig;
  private pending: PendingHandshake | null = null;
  private establishedAtMs = 0;
  private established = false;
  private rekeyTimer: NodeJS.Timeout | null = null;
  /** The host's last cookie (under load it wants mac2 made with it) and when it came. */
  private cookie: { value: Buffer; receivedAtMs: number } | null = null;

  /** @internal use connectSecure() */
  constructor(socket: Socket, settings: ConnectionSettings, config: ClientConfig) {
    super(socket, settings);
    this.config = config;
    this.hostPublicKey = config.keys.hostPublicKey.toString('base64');
  }

  /** Client clock (ms) when the first handshake completed. */
  get establishedAt(): number {
    return this.establishedAtMs;
  }

  /** Run a new handshake now (also done automatically); resolves when the new keys are in use. */
  rekey(): Promise<void> {
    if (this.closed) throw new ChannelClosedError(this.closeReason ?? 'closed');
    return this.startHandshake();
  }

  /** @internal first handshake, awaited by connectSecure(). */
  async start(): Promise<void> {
    // Node issues the connect() system call on the next tick. Building the initiation after it
    // (not before) lets the host accept the connection while we compute: measured, a connection
    // whose initiation is built first is established that much later.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.closed) throw new ChannelClosedError(this.closeReason ?? 'peer_closed');
    return this.startHandshake();
  }

  protected override canSendApplicationData(): boolean {
    return this.established;
  }

  protected override handleHandshakeFrame(frame: Buffer, type: number): void {
    if (type === MessageType.cookieReply) {
      this.handleCookieReply(frame);
      return;
    }
    if (type !== MessageType.response)
      throw new SecureChannelError('unexpected_message', 'client received a handshake initiation');
    const pending = this.pending;
    if (!pending) throw new SecureChannelError('unexpected_message', 'handshake response without a pending initiation');
    const { keys, timestamp } = consumeResponse(pending.handshake, frame);
    const nowMs = this.settings.now();
    // Paper IV-C: our side of the clock offset, T_client - T_host at receipt of the host's timestamp.
    const keypair = new SessionKeypair(keys, nowMs, nowMs - decodeTai64nMs(timestamp));
    // The host sent the response before any record under the new keys, so the old ones can go now.
    this.sendingKeypair = keypair;
    this.receivingKeypairs = [keypair];
    this.pending = null;
    clearTimeout(pending.timer);
    // Keepalive: confirms the keys to the host, which only then treats the session as established.
    this.sendRecord(keypair, EMPTY);
    if (!this.established) {
      this.established = true;
      this.establishedAtMs = nowMs;
      this.startRekeyTimer();
    } else {
      this.safeEmit('rekey', { keysCreatedAtMs: nowMs });
    }
    pending.resolve();
  }

  protected override afterSend(keypair: SessionKeypair): void {
    if (this.pending) return;
    if (
      keypair.sendCounter >= this.config.rekeyAfterMessages ||
      keypair.ageMs(this.settings.now()) >= this.config.rekeyAfterMs
    ) {
      this.startHandshake();
    }
  }

  protected override onTerminated(info: CloseInfo): void {
    if (this.rekeyTimer) clearInterval(this.rekeyTimer);
    this.rekeyTimer = null;
    const pending = this.pending;
    this.pending = null;
    if (pending) {
      clearTimeout(pending.timer);
      pending.reject(
        info.error instanceof SecureChannelError
          ? info.error
          : new ChannelClosedError(info.reason, undefined, info.error ? { cause: info.error } : undefined),
      );
    }
  }

  /**
   * The host is under load and did no DH for our initiation: keep its cookie and send the
   * same initiation again with mac2 (it was not processed, so its timestamp is still fresh).
   */
  private handleCookieReply(frame: Buffer): void {
    const pending = this.pending;
    if (!pending) throw new SecureChannelError('unexpected_message', 'cookie reply without a pending initiation');
    if (pending.retriedWithCookie)
      throw new SecureChannelError('unexpected_message', 'a second cookie reply to the same initiation');
    const cookie = consumeCookieReply(frame, pending.initiation, this.config.keys.hostCookieKey);
    this.cookie = { value: cookie, receivedAtMs: this.settings.now() };
    pending.retriedWithCookie = true;
    this.writeFrame([initiationWithMac2(pending.initiation, cookie)]);
  }

  /** The cookie while the host still accepts it (it rotates its secret every 2 minutes). */
  private freshCookie(): Buffer | null {
    if (this.cookie && this.settings.now() - this.cookie.receivedAtMs < COOKIE_CLIENT_MAX_AGE_MS)
      return this.cookie.value;
    this.cookie = null;
    return null;
  }

  private startHandshake(): Promise<void> {
    if (this.pending) return this.pending.done;
    const keys = this.config.keys;
    const prepared = keys.initiations.take();
    const timestamp = monotonicTai64n(keys.identity.publicKey.toString('base64'), this.settings.now());
    const { frame, handshake } = completeInitiation(prepared, timestamp, this.newLocalIndex());
    let resolve = noop;
    let reject: (error: Error) => void = noop;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Automatic rekeys are not awaited; the close event reports their failure.
    done.catch(noop);
    const timer = setTimeout(() => {
      this.terminate(
        'handshake_timeout',
        new SecureChannelError(
          'handshake_timeout',
          `no handshake response within ${this.config.handshakeTimeoutMs} ms`,
        ),
      );
    }, this.config.handshakeTimeoutMs);
    timer.unref();
    const cookie = this.freshCookie();
    this.pending = { handshake, initiation: frame, retriedWithCookie: cookie !== null, done, resolve, reject, timer };
    this.writeFrame([cookie ? initiationWithMac2(frame, cookie) : frame]);
    return done;
  }

  private startRekeyTimer(): void {
    const intervalMs = Math.max(10, Math.min(1_000, this.config.rekeyAfterMs / 4));
    this.rekeyTimer = setInterval(() => {
      const keypair = this.sendingKeypair;
      if (!this.pending && keypair && keypair.ageMs(this.settings.now()) >= this.config.rekeyAfterMs)
        this.startHandshake();
    }, intervalMs);
    this.rekeyTimer.unref();
  }

  private newLocalIndex(): number {
    for (;;) {
      const index = randomBytes(4).readUInt32LE(0);
      if (!this.receivingKeypairs.some((keypair) => keypair.localIndex === index)) return index;
    }
  }
}

interface StaticKeys {
  identity: StaticIdentity;
  hostPublicKey: Buffer;
  /** The host's static key imported into OpenSSL once, for each handshake's es. */
  hostKey: KeyObject;
  /** DH(client static, host static): the same for every handshake, computed once. */
  staticShared: Buffer;
  /** HASH("cookie--" || host static): decrypts the host's cookie replies. */
  hostCookieKey: Buffer;
  /**
   * The initiation's DH (es) and the encryption of our static key, done after each
   * handshake for the next one (a rekey or a reconnect); only the timestamp is sealed
   * when the initiation is sent. Measured: ~0.1 ms off every handshake but a process's first.
   */
  initiations: MadeAhead<PreparedInitiation>;
}

// A client reconnects with the same keys again and again; importing the private
// key and the static-static DH cost ~0.5 ms, so keep the last few (keyed by a hash, not the key).
const staticKeysCache = new Map<string, StaticKeys>();
const STATIC_KEYS_CACHE_SIZE = 16;

function resolveStaticKeys(privateKey: string, hostPublicKeyBase64: string): StaticKeys {
  const cacheKey =
    typeof privateKey === 'string' && typeof hostPublicKeyBase64 === 'string'
      ? sha256(Buffer.from(`${privateKey}\n${hostPublicKeyBase64}`)).toString('hex')
      : '';
  const cached = staticKeysCache.get(cacheKey);
  if (cached) return cached;
  const identity = staticIdentityFromPrivate(parsePrivateKey(privateKey, 'privateKey'));
  const hostPublicKey = parsePublicKey(hostPublicKeyBase64, 'hostPublicKey');
  const hostKey = x25519PublicKeyObject(hostPublicKey);
  const staticShared = x25519(identity.privateKey, hostPublicKey);
  const initiations = new MadeAhead(() =>
    prepareInitiation({ initiator: identity, responderPublicKey: hostPublicKey, staticShared, responderKey: hostKey }),
  );
  const keys: StaticKeys = {
    identity,
    hostPublicKey,
    hostKey,
    staticShared,
    hostCookieKey: cookieKeyFor(hostPublicKey),
    initiations,
  };
  if (staticKeysCache.size >= STATIC_KEYS_CACHE_SIZE)
    staticKeysCache.delete(staticKeysCache.keys().next().value as string);
  staticKeysCache.set(cacheKey, keys);
  return keys;
}

/** Connect to the host, run the handshake, and resolve with an established channel. */
export async function connectSecure(options: ConnectSecureOptions): Promise<SecureChannel> {
  const common = resolveCommonOptions(options);
  if (typeof options.host !== 'string' || options.host.length === 0)
    throw new ValidationError('host', 'must be a host name or address');
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
    throw new ValidationError('port', 'must be 1..65535');
  const keys = resolveStaticKeys(options.privateKey, options.hostPublicKey);
  const rekeyAfterSeconds = positiveNumber(options.rekeyAfterSeconds, DEFAULT_REKEY_AFTER_SECONDS, 'rekeyAfterSeconds');
  if (rekeyAfterSeconds >= common.limits.rejectAfterSeconds)
    throw new ValidationError('rekeyAfterSeconds', 'must be below rejectAfterSeconds');
  const rekeyAfterMessages = positiveCounter(
    options.rekeyAfterMessages,
    DEFAULT_REKEY_AFTER_MESSAGES,
    'rekeyAfterMessages',
  );
  if (rekeyAfterMessages >= common.limits.rejectAfterMessages)
    throw new ValidationError('rekeyAfterMessages', 'must be below rejectAfterMessages');
  const config: ClientConfig = {
    keys,
    rekeyAfterMs: rekeyAfterSeconds * 1000,
    rekeyAfterMessages,
    handshakeTimeoutMs: common.handshakeTimeoutMs,
  };
  const settings: ConnectionSettings = { now: common.now, limits: common.limits };
  if (common.logger) settings.logger = common.logger;

  const socket = connect({
    host: options.host,
    port: options.port,
    noDelay: true,
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
  });
  const channel = new SecureChannel(socket, settings, config);
  try {
    await channel.start();
  } catch (error) {
    channel.close();
    if (!connected) throw new ConnectError(`cannot connect to ${options.host}:${options.port}`, { cause: error });
    if (error instanceof ChannelClosedError && (error.reason === 'peer_closed' || error.reason === 'socket_error')) {
      throw new ChannelClosedError(
        error.reason,
        'host closed the connection during the handshake (wrong host key, unknown client key, rate limit or replayed timestamp: see the host log)',
        { cause: error },
      );
    }
    throw error;
  }
  return channel;
}
