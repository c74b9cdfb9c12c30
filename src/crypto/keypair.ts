// One set of transport keys and the state that goes with it (send counter,
// replay window, learned clock offset), and the receive checks in the order
// docs/protocol.md §4.3 gives. Transport-free, so tests drive it directly.

import { DEFAULT_E_MAX_MS, DEFAULT_REJECT_AFTER_MESSAGES, DEFAULT_REJECT_AFTER_SECONDS } from './constants.js';
import { SecureChannelError } from './errors.js';
import type { TransportKeys } from './handshake.js';
import { openRecord, readRecordHeader, sealRecordParts } from './record.js';
import { ReplayWindow } from './replay-window.js';

export interface RecordLimits {
  /** Counters at or above this are refused (WireGuard REJECT_AFTER_MESSAGES). */
  rejectAfterMessages: bigint;
  /** Keys older than this are refused (WireGuard REJECT_AFTER_TIME). */
  rejectAfterSeconds: number;
  /** Paper IV-C, eq. (1): e_max in ms. */
  eMaxMs: number;
}

export const DEFAULT_RECORD_LIMITS: RecordLimits = {
  rejectAfterMessages: DEFAULT_REJECT_AFTER_MESSAGES,
  rejectAfterSeconds: DEFAULT_REJECT_AFTER_SECONDS,
  eMaxMs: DEFAULT_E_MAX_MS,
};

export class SessionKeypair {
  readonly sendKey: Buffer;
  readonly receiveKey: Buffer;
  readonly localIndex: number;
  readonly remoteIndex: number;
  /** Local clock (ms) when the handshake completed. */
  readonly createdAtMs: number;
  /**
   * Receiver-side clock offset learned at the handshake: our clock at receipt
   * minus the peer's handshake timestamp (one-way delay included, as in
   * every later record). On the host this is the paper's delta_est = T_host - T_client.
   */
  readonly clockOffsetMs: number;
  readonly replay = new ReplayWindow();
  sendCounter = 0n;
  /** True once a record under these keys has authenticated (key confirmation). */
  confirmed = false;

  constructor(keys: TransportKeys, createdAtMs: number, clockOffsetMs: number) {
    this.sendKey = keys.sendKey;
    this.receiveKey = keys.receiveKey;
    this.localIndex = keys.localIndex;
    this.remoteIndex = keys.remoteIndex;
    this.createdAtMs = createdAtMs;
    this.clockOffsetMs = clockOffsetMs;
  }

  ageMs(nowMs: number): number {
    return nowMs - this.createdAtMs;
  }

  /** Seal the next record; refuses at the counter or age limit. */
  seal(payload: Uint8Array, nowMs: number, limits: RecordLimits): Buffer[] {
    if (this.sendCounter >= limits.rejectAfterMessages)
      throw new SecureChannelError('counter_limit', 'send counter reached REJECT_AFTER_MESSAGES');
    if (this.ageMs(nowMs) >= limits.rejectAfterSeconds * 1000)
      throw new SecureChannelError('key_expired', 'keys older than REJECT_AFTER_SECONDS');
    const parts = sealRecordParts({
      key: this.sendKey,
      receiverIndex: this.remoteIndex,
      counter: this.sendCounter,
      senderTimeMs: nowMs,
      payload,
    });
    this.sendCounter++;
    return parts;
  }
}

export interface ReceivedRecord {
  keypair: SessionKeypair;
  counter: bigint;
  senderTimeMs: number;
  payload: Buffer;
}

/**
 * All checks on a data frame, cheapest first; the replay window moves only
 * after the tag verified, so forged counters cannot push it forward.
 */
export function receiveRecord(
  frame: Buffer,
  findKeypair: (receiverIndex: number) => SessionKeypair | undefined,
  nowMs: number,
  limits: RecordLimits,
): ReceivedRecord {
  const header = readRecordHeader(frame);
  const keypair = findKeypair(header.receiverIndex);
  if (!keypair) throw new SecureChannelError('unknown_index', `no keys for receiver index ${header.receiverIndex}`);
  if (keypair.ageMs(nowMs) >= limits.rejectAfterSeconds * 1000)
    throw new SecureChannelError('key_expired', 'record under keys older than REJECT_AFTER_SECONDS');
  if (header.counter >= limits.rejectAfterMessages)
    throw new SecureChannelError('counter_limit', `record counter ${header.counter} at or above REJECT_AFTER_MESSAGES`);
  if (!keypair.replay.check(header.counter))
    throw new SecureChannelError('replay', `record counter ${header.counter} already seen or older than the window`);
  const opened = openRecord(frame, keypair.receiveKey, header);
  if (!keypair.replay.accept(header.counter))
    throw new SecureChannelError('replay', `record counter ${header.counter} already seen`);
  // Paper IV-C, eq. (1): refuse when |(T_receiver - T_sender) - delta_est| > e_max.
  const deviationMs = nowMs - opened.senderTimeMs - keypair.clockOffsetMs;
  if (Math.abs(deviationMs) > limits.eMaxMs) {
    throw new SecureChannelError(
      'skew',
      `record timestamp deviates ${deviationMs} ms from the learned clock offset (e_max ${limits.eMaxMs} ms)`,
    );
  }
  keypair.confirmed = true;
  return { keypair, counter: header.counter, senderTimeMs: opened.senderTimeMs, payload: opened.payload };
}
