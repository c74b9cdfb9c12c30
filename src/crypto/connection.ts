// What a client channel and a host session share: framing on the socket, the
// record layer, delivery of messages (events or async iteration with
// backpressure), and closing exactly once with a reason.

import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ValidationError, XnetmonError } from '../errors/index.js';
import { MAX_RECORD_PAYLOAD_BYTES, MessageType } from './constants.js';
import { ChannelClosedError, SecureChannelError, isRejectReason, type CloseReason } from './errors.js';
import { FrameDecoder } from './framing.js';
import { receiveRecord, type ReceivedRecord, type RecordLimits, type SessionKeypair } from './keypair.js';

/** pino-compatible logger; every method takes (object, message). */
export interface SecureChannelLogger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface CloseInfo {
  reason: CloseReason;
  /** The rejection or socket error behind the close, if any. */
  error?: Error;
}

export type SecureConnectionEvents = {
  /** A decrypted, authenticated, fresh application payload (never empty). */
  message: [payload: Buffer];
  /** Emitted once; the connection is unusable afterwards. */
  close: [info: CloseInfo];
  /** New session keys are in use (after a rekey handshake). */
  rekey: [info: { keysCreatedAtMs: number }];
};

export interface ConnectionSettings {
  now: () => number;
  limits: RecordLimits;
  logger?: SecureChannelLogger;
}

/** Shared so a send allocates no promise when the socket has room. */
const RESOLVED: Promise<void> = Promise.resolve();
/** Reasons after which an async iterator over messages ends normally instead of throwing. */
const ORDERLY_CLOSE: ReadonlySet<CloseReason> = new Set<CloseReason>(['closed', 'peer_closed']);
/** Async iterators pause the socket above this many queued bytes and resume below a quarter of it. */
const ITERATOR_HIGH_WATER_BYTES = 16 * 1024 * 1024;
/** A graceful close waits this long for the peer to close its side. */
const GRACEFUL_CLOSE_MS = 5_000;

export abstract class SecureConnection extends EventEmitter<SecureConnectionEvents> {
  protected readonly socket: Socket;
  protected readonly settings: ConnectionSettings;
  /** Keys records are sent under. */
  protected sendingKeypair: SessionKeypair | null = null;
  /** Keys records are accepted under (the sending keys and, during a rekey, the previous ones). */
  protected receivingKeypairs: SessionKeypair[] = [];
  // A data frame before any keys is refused from its header, so an unauthenticated peer cannot make us buffer 1 MiB.
  private readonly decoder = new FrameDecoder((type) => {
    if (type === MessageType.data && this.receivingKeypairs.length === 0)
      throw new SecureChannelError('unexpected_message', 'data record before the handshake');
  });
  /** Messages that arrived while nobody listened (e.g. before the 'session' handler attached one); bounded by pausing the socket. */
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private closeInfo: CloseInfo | null = null;
  private drainWaiter: Promise<void> | null = null;
  private readonly pausedBy = new Set<object>();
  /** Kept because a destroyed socket forgets its peer address. */
  private peerAddress: string | undefined;
  private peerPort: number | undefined;

  protected constructor(socket: Socket, settings: ConnectionSettings) {
    super();
    this.socket = socket;
    this.settings = settings;
    this.peerAddress = socket.remoteAddress;
    this.peerPort = socket.remotePort;
    socket.once('connect', () => {
      this.peerAddress = socket.remoteAddress;
      this.peerPort = socket.remotePort;
    });
    // 'newListener' is not in the typed event map; it is EventEmitter's own.
    (this as unknown as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message' && this.held.length > 0) queueMicrotask(() => this.releaseHeld());
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (error: Error) => this.terminate('socket_error', error));
    socket.on('close', () => this.terminate('peer_closed'));
  }

  get closed(): boolean {
    return this.closeInfo !== null;
  }

  get closeReason(): CloseReason | undefined {
    return this.closeInfo?.reason;
  }

  get remoteAddress(): string | undefined {
    return this.peerAddress;
  }

  /**
   * Encrypt and write one record. Throws (synchronously) if the channel is
   * closed, the payload is empty or above 1 MiB, or the keys hit a limit.
   * The promise resolves when the socket can take more (or the channel
   * closed): await it for backpressure; it never rejects.
   */
  send(payload: Uint8Array): Promise<void> {
    if (this.closeInfo) throw new ChannelClosedError(this.closeInfo.reason);
    if (!(payload instanceof Uint8Array)) throw new ValidationError('payload', 'must be a Buffer or Uint8Array');
    // Empty plaintexts are reserved for keepalives (key confirmation).
    if (payload.length === 0) throw new ValidationError('payload', 'must not be empty');
    if (payload.length > MAX_RECORD_PAYLOAD_BYTES)
      throw new ValidationError('payload', `must be at most ${MAX_RECORD_PAYLOAD_BYTES} bytes`);
    const keypair = this.sendingKeypair;
    if (!keypair || !this.canSendApplicationData())
      throw new ChannelClosedError('unexpected_message', 'secure channel not established');
    this.sendRecord(keypair, payload);
    this.afterSend(keypair);
    return this.socket.writableNeedDrain ? this.waitForDrain() : RESOLVED;
  }

  /** Close gracefully: buffered records are flushed, then the TCP stream ends. */
  close(): void {
    this.terminate('closed');
  }

  /**
   * Messages as an async iterator; ends on a local or peer close, throws
   * ChannelClosedError on a rejection. Messages that arrived before any
   * 'message' listener or iterator existed are held and delivered first.
   */
  messages(): AsyncIterableIterator<Buffer> {
    return this.createMessageIterator();
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this.createMessageIterator();
  }

  /** Handle an initiation or response frame (role specific). */
  protected abstract handleHandshakeFrame(frame: Buffer, type: number): void;

  /** May application data be sent now? (A host session only once confirmed.) */
  protected abstract canSendApplicationData(): boolean;

  /** Called after every authenticated record, before delivery. */
  protected onRecordAuthenticated(record: ReceivedRecord): void {
    void record;
  }

  /** Called after each sent record (client: rekey on count or age). */
  protected afterSend(keypair: SessionKeypair): void {
    void keypair;
  }

  /** Called once when the connection closes (timers, registries). */
  protected onTerminated(info: CloseInfo): void {
    void info;
  }

  /**
   * Level of the line logged when this connection is rejected. The host logs rejections of
   * unauthenticated connections at debug: a flood would otherwise write one warning per
   * connection; the daemon writes a rate-limited summary of them instead (control/rejection-log.ts).
   */
  protected rejectionLogLevel(): 'warn' | 'debug' {
    return 'warn';
  }

  protected log(level: 'debug' | 'info' | 'warn' | 'error', obj: object, msg: string): void {
    const logger = this.settings.logger;
    if (!logger) return;
    if (level === 'debug') logger.debug?.(obj, msg);
    else logger[level](obj, msg);
  }

  protected logContext(): Record<string, unknown> {
    return { remoteAddress: this.peerAddress, remotePort: this.peerPort };
  }

  /** Seal and write one record (payload may be empty: a keepalive). */
  protected sendRecord(keypair: SessionKeypair, payload: Uint8Array): void {
    let parts: Buffer[];
    try {
      parts = keypair.seal(payload, this.settings.now(), this.settings.limits);
    } catch (error) {
      this.fail(error);
      throw error;
    }
    this.writeFrame(parts);
  }

  protected writeFrame(parts: readonly Buffer[]): void {
    if (parts.length === 1) {
      this.socket.write(parts[0]);
      return;
    }
    this.socket.cork();
    for (const part of parts) this.socket.write(part);
    this.socket.uncork();
  }

  protected findReceivingKeypair(index: number): SessionKeypair | undefined {
    for (const keypair of this.receivingKeypairs) if (keypair.localIndex === index) return keypair;
    return undefined;
  }

  /** Close because of an error: a SecureChannelError closes with its reason. */
  protected fail(error: unknown): void {
    if (error instanceof SecureChannelError) {
      this.terminate(error.reason, error);
    } else {
      const wrapped = error instanceof Error ? error : new XnetmonError('ERR_INTERNAL', String(error));
      this.log('error', { ...this.logContext(), err: wrapped }, 'secure channel internal error');
      this.terminate('socket_error', wrapped);
    }
  }

  /** Close exactly once with a reason; rejections drop the socket at once, orderly closes flush it. */
  protected terminate(reason: CloseReason, error?: Error): void {
    if (this.closeInfo) return;
    const info: CloseInfo = error ? { reason, error } : { reason };
    this.closeInfo = info;
    if (reason === 'closed' || reason === 'server_closed' || reason === 'peer_removed' || reason === 'superseded') {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), GRACEFUL_CLOSE_MS).unref();
    } else {
      this.socket.destroy();
    }
    this.sendingKeypair = null;
    this.receivingKeypairs = [];
    if (isRejectReason(reason))
      this.log(
        this.rejectionLogLevel(),
        { ...this.logContext(), reason, err: error?.message },
        'secure channel rejected',
      );
    else this.log('debug', { ...this.logContext(), reason }, 'secure channel closed');
    this.onTerminated(info);
    this.safeEmit('close', info);
  }

  /** Emit to user listeners; a throwing listener is logged, never unwinds into the socket handlers. */
  protected safeEmit<K extends keyof SecureConnectionEvents>(event: K, ...args: SecureConnectionEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: SecureConnectionEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.log(
        'error',
        { ...this.logContext(), err: error instanceof Error ? error.message : String(error), event },
        'secure channel listener threw',
      );
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closeInfo) return;
    let frames: Buffer[];
    try {
      frames = this.decoder.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    for (const frame of frames) {
      if (this.closeInfo) return;
      try {
        this.handleFrame(frame);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
  }

  private handleFrame(frame: Buffer): void {
    const type = frame[4];
    if (type !== MessageType.data) {
      this.handleHandshakeFrame(frame, type);
      return;
    }
    if (this.receivingKeypairs.length === 0)
      throw new SecureChannelError('unexpected_message', 'data record before the handshake');
    const record = receiveRecord(
      frame,
      (index) => this.findReceivingKeypair(index),
      this.settings.now(),
      this.settings.limits,
    );
    this.onRecordAuthenticated(record);
    if (record.payload.length > 0 && !this.closeInfo) this.deliver(record.payload);
  }

  private deliver(payload: Buffer): void {
    if (this.held.length === 0 && this.listenerCount('message') > 0) {
      this.safeEmit('message', payload);
      return;
    }
    this.held.push(payload);
    this.heldBytes += payload.length;
    if (this.heldBytes > ITERATOR_HIGH_WATER_BYTES) this.setPaused(this.held, true);
  }

  private releaseHeld(): void {
    while (this.held.length > 0 && this.listenerCount('message') > 0) {
      const payload = this.held.shift() as Buffer;
      this.heldBytes -= payload.length;
      this.safeEmit('message', payload);
    }
    if (this.heldBytes <= ITERATOR_HIGH_WATER_BYTES / 4 && this.pausedBy.has(this.held))
      this.setPaused(this.held, false);
  }

  private onEnd(): void {
    if (this.closeInfo) return;
    try {
      this.decoder.end();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.terminate('peer_closed');
  }

  private waitForDrain(): Promise<void> {
    this.drainWaiter ??= new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.off('close', done);
        this.drainWaiter = null;
        resolve();
      };
      this.socket.on('drain', done);
      this.on('close', done);
    });
    return this.drainWaiter;
  }

  private setPaused(owner: object, paused: boolean): void {
    if (paused) this.pausedBy.add(owner);
    else this.pausedBy.delete(owner);
    if (this.closeInfo) return;
    if (this.pausedBy.size > 0) this.socket.pause();
    else this.socket.resume();
  }

  private createMessageIterator(): AsyncIterableIterator<Buffer> {
    const owner = {};
    const queue: Buffer[] = [];
    let queuedBytes = 0;
    let waiter: { resolve: (result: IteratorResult<Buffer>) => void; reject: (error: Error) => void } | null = null;
    let finished = false;

    const closedError = (): Error | null => {
      const info = this.closeInfo;
      if (!info || ORDERLY_CLOSE.has(info.reason)) return null;
      return new ChannelClosedError(info.reason, undefined, info.error ? { cause: info.error } : undefined);
    };
    const cleanup = (): void => {
      finished = true;
      this.off('message', onMessage);
      this.off('close', onClose);
      if (!this.closeInfo) this.setPaused(owner, false);
    };
    const onMessage = (payload: Buffer): void => {
      if (waiter) {
        const current = waiter;
        waiter = null;
        current.resolve({ value: payload, done: false });
        return;
      }
      queue.push(payload);
      queuedBytes += payload.length;
      if (queuedBytes > ITERATOR_HIGH_WATER_BYTES) this.setPaused(owner, true);
    };
    const onClose = (): void => {
      if (!waiter) return;
      const current = waiter;
      waiter = null;
      const error = closedError();
      cleanup();
      if (error) current.reject(error);
      else current.resolve({ value: undefined, done: true });
    };
    this.on('message', onMessage);
    this.on('close', onClose);
    this.releaseHeld(); // now, so a next() right after a close still sees them

    const iterator: AsyncIterableIterator<Buffer> = {
      next: (): Promise<IteratorResult<Buffer>> => {
        const payload = queue.shift();
        if (payload) {
          queuedBytes -= payload.length;
          if (queuedBytes < ITERATOR_HIGH_WATER_BYTES / 4 && this.pausedBy.has(owner)) this.setPaused(owner, false);
          return Promise.resolve({ value: payload, done: false });
        }
        if (finished) return Promise.resolve({ value: undefined, done: true });
        if (this.closeInfo) {
          const error = closedError();
          cleanup();
          return error ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => {
          waiter = { resolve, reject };
        });
      },
      return: (): Promise<IteratorResult<Buffer>> => {
        cleanup();
        queue.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
