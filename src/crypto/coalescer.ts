// Batches small application messages (e.g. 12-byte route updates) into large
// records: per-record cost (one AEAD setup, one syscall) is then paid per
// ~64 KiB instead of per route. A pushed chunk is never split across records,
// so each record is a whole number of self-delimiting application messages.

import { ValidationError } from '../errors/index.js';
import { MAX_RECORD_PAYLOAD_BYTES } from './constants.js';

/** Shared so the hot path allocates no promise per message (async hooks make each one costly). */
const RESOLVED: Promise<void> = Promise.resolve();

export interface RecordSink {
  send(payload: Uint8Array): Promise<void>;
}

export interface CoalescerOptions {
  /** Flush when this many bytes are pending. Default 64 KiB; at most 1 MiB. */
  maxRecordBytes?: number;
  /** Flush pending bytes after this delay; 0 flushes on the next turn of the event loop. Default 0. */
  maxDelayMs?: number;
}

export class RecordCoalescer {
  private readonly sink: RecordSink;
  private readonly maxRecordBytes: number;
  private readonly maxDelayMs: number;
  private buffer: Buffer;
  private used = 0;
  private timer: NodeJS.Timeout | NodeJS.Immediate | null = null;

  constructor(sink: RecordSink, options: CoalescerOptions = {}) {
    this.sink = sink;
    this.maxRecordBytes = options.maxRecordBytes ?? 64 * 1024;
    this.maxDelayMs = options.maxDelayMs ?? 0;
    if (
      !Number.isInteger(this.maxRecordBytes) ||
      this.maxRecordBytes < 1 ||
      this.maxRecordBytes > MAX_RECORD_PAYLOAD_BYTES
    ) {
      throw new ValidationError('maxRecordBytes', `must be an integer in 1..${MAX_RECORD_PAYLOAD_BYTES}`);
    }
    if (!(this.maxDelayMs >= 0)) throw new ValidationError('maxDelayMs', 'must be >= 0');
    this.buffer = Buffer.allocUnsafe(this.maxRecordBytes);
  }

  /** Bytes waiting for the next record. */
  get pendingBytes(): number {
    return this.used;
  }

  /**
   * Queue one message. Resolves at once unless this push filled a record, in
   * which case it resolves when the sink accepted it (await it for backpressure).
   */
  push(message: Uint8Array): Promise<void> {
    if (message.length === 0) return RESOLVED;
    if (message.length > this.maxRecordBytes)
      throw new ValidationError('message', `longer than maxRecordBytes (${this.maxRecordBytes})`);
    let sent: Promise<void> | null = null;
    if (this.used + message.length > this.maxRecordBytes) sent = this.flushNow();
    this.buffer.set(message, this.used);
    this.used += message.length;
    if (this.used === this.maxRecordBytes) sent = this.flushNow();
    else this.schedule();
    return sent ?? RESOLVED;
  }

  /** Send whatever is pending now. */
  flush(): Promise<void> {
    return this.flushNow();
  }

  private flushNow(): Promise<void> {
    this.cancelTimer();
    if (this.used === 0) return RESOLVED;
    const record = this.buffer.subarray(0, this.used);
    // A fresh buffer: the sink may keep a reference to the record.
    this.buffer = Buffer.allocUnsafe(this.maxRecordBytes);
    this.used = 0;
    return this.sink.send(record);
  }

  private schedule(): void {
    if (this.timer) return;
    const run = (): void => {
      this.timer = null;
      // A failed send surfaces on the channel ('close' event); nothing to do here.
      try {
        this.flushNow().catch(() => undefined);
      } catch {
        // The channel closed: its 'close' event carries the reason.
      }
    };
    this.timer = this.maxDelayMs > 0 ? setTimeout(run, this.maxDelayMs) : setImmediate(run);
  }

  private cancelTimer(): void {
    if (!this.timer) return;
    if ('hasRef' in this.timer && 'refresh' in this.timer) clearTimeout(this.timer);
    else clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = null;
  }
}
