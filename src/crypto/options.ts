// Validation of the settings the client and the host share (limits, timers, clock).

import { ValidationError } from '../errors/index.js';
import {
  DEFAULT_E_MAX_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_REJECT_AFTER_MESSAGES,
  DEFAULT_REJECT_AFTER_SECONDS,
} from './constants.js';
import type { SecureChannelLogger } from './connection.js';
import type { RecordLimits } from './keypair.js';

const U64_MAX = 2n ** 64n - 1n;

export interface CommonChannelOptions {
  /** Paper IV-C, eq. (1): largest accepted |(T_now - T_sender) - delta_est| in ms. Default 2000. */
  eMaxMs?: number;
  /** Refuse records under keys older than this. Default 180 (WireGuard REJECT_AFTER_TIME). */
  rejectAfterSeconds?: number;
  /** Refuse record counters at or above this. Default 2^64 - 2^13 - 1 (WireGuard REJECT_AFTER_MESSAGES). */
  rejectAfterMessages?: bigint;
  /** Handshake must complete within this. Default 5000 ms. */
  handshakeTimeoutMs?: number;
  /** Wall clock in ms since the Unix epoch; inject for deterministic tests. Default Date.now. */
  now?: () => number;
  logger?: SecureChannelLogger;
}

export function positiveNumber(value: number | undefined, fallback: number, path: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0)) throw new ValidationError(path, 'must be a positive number');
  return value;
}

export function positiveCounter(value: bigint | undefined, fallback: bigint, path: string): bigint {
  if (value === undefined) return fallback;
  if (typeof value !== 'bigint' || value <= 0n || value > U64_MAX)
    throw new ValidationError(path, 'must be a bigint in 1..2^64-1');
  return value;
}

export interface ResolvedCommonOptions {
  limits: RecordLimits;
  handshakeTimeoutMs: number;
  now: () => number;
  logger?: SecureChannelLogger;
}

export function resolveCommonOptions(options: CommonChannelOptions): ResolvedCommonOptions {
  if (options.now !== undefined && typeof options.now !== 'function')
    throw new ValidationError('now', 'must be a function returning ms');
  const resolved: ResolvedCommonOptions = {
    limits: {
      eMaxMs: positiveNumber(options.eMaxMs, DEFAULT_E_MAX_MS, 'eMaxMs'),
      rejectAfterSeconds: positiveNumber(
        options.rejectAfterSeconds,
        DEFAULT_REJECT_AFTER_SECONDS,
        'rejectAfterSeconds',
      ),
      rejectAfterMessages: positiveCounter(
        options.rejectAfterMessages,
        DEFAULT_REJECT_AFTER_MESSAGES,
        'rejectAfterMessages',
      ),
    },
    handshakeTimeoutMs: positiveNumber(options.handshakeTimeoutMs, DEFAULT_HANDSHAKE_TIMEOUT_MS, 'handshakeTimeoutMs'),
    now: options.now ?? Date.now,
  };
  if (options.logger) resolved.logger = options.logger;
  return resolved;
}
