// TAI64N timestamps (12 bytes: u64 BE seconds label || u32 BE nanoseconds), as
// WireGuard sends them in the initiation. Byte order makes memcmp order equal
// time order, which is how the host compares them.

import { ValidationError } from '../errors/index.js';
import { TAI64N_BYTES } from './constants.js';

/** TAI64 label of the Unix epoch plus the 10 s TAI-UTC offset of 1970, as WireGuard does. */
const TAI64_EPOCH_LABEL = 0x400000000000000an;
const NANOS_PER_SECOND = 1_000_000_000;

export function encodeTai64n(unixMs: number, extraNanos = 0): Buffer {
  if (!Number.isFinite(unixMs) || unixMs < 0)
    throw new ValidationError('unixMs', 'must be a non-negative number of milliseconds');
  const ms = Math.floor(unixMs);
  let seconds = BigInt(Math.floor(ms / 1000));
  let nanos = (ms % 1000) * 1_000_000 + extraNanos;
  seconds += BigInt(Math.floor(nanos / NANOS_PER_SECOND));
  nanos %= NANOS_PER_SECOND;
  const out = Buffer.alloc(TAI64N_BYTES);
  out.writeBigUInt64BE(TAI64_EPOCH_LABEL + seconds, 0);
  out.writeUInt32BE(nanos, 8);
  return out;
}

/** Milliseconds since the Unix epoch (sub-millisecond part dropped). */
export function decodeTai64nMs(timestamp: Uint8Array): number {
  const view = Buffer.from(timestamp.buffer, timestamp.byteOffset, timestamp.byteLength);
  const seconds = view.readBigUInt64BE(0) - TAI64_EPOCH_LABEL;
  return Number(seconds) * 1000 + Math.floor(view.readUInt32BE(8) / 1_000_000);
}

/** Add one nanosecond. */
export function nextTai64n(timestamp: Uint8Array): Buffer {
  const out = Buffer.from(timestamp);
  const nanos = out.readUInt32BE(8) + 1;
  if (nanos >= NANOS_PER_SECOND) {
    out.writeBigUInt64BE(out.readBigUInt64BE(0) + 1n, 0);
    out.writeUInt32BE(0, 8);
  } else {
    out.writeUInt32BE(nanos, 8);
  }
  return out;
}

// Last timestamp issued per initiator static key in this process, so two
// handshakes in the same millisecond (or under a frozen test clock) still send
// strictly increasing timestamps and the host's replay check passes.
const lastIssued = new Map<string, Buffer>();

export function monotonicTai64n(initiatorKeyId: string, unixMs: number): Buffer {
  let candidate = encodeTai64n(unixMs);
  const previous = lastIssued.get(initiatorKeyId);
  if (previous && Buffer.compare(candidate, previous) <= 0) candidate = nextTai64n(previous);
  lastIssued.set(initiatorKeyId, candidate);
  return candidate;
}
