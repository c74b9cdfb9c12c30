// Transport data records: ChaCha20-Poly1305 under the direction's key, nonce =
// the 64-bit counter, additional data = the 17-byte cleartext header.
// Paper IV-C, Fig. 3(b): updates travel under symmetric encryption, each carrying the sender's timestamp.

import { ValidationError } from '../errors/index.js';
import {
  DATA_HEADER_BYTES,
  LENGTH_PREFIX_BYTES,
  MAX_FRAME_LENGTH,
  MAX_RECORD_PAYLOAD_BYTES,
  MIN_DATA_FRAME_LENGTH,
  MessageType,
  RECORD_TIMESTAMP_BYTES,
} from './constants.js';
import { SecureChannelError } from './errors.js';
import { aeadOpen, aeadSealParts } from './primitives.js';

/** Bytes before the ciphertext: length(4) type(1) receiver_index(4) counter(8). Also the AEAD additional data. */
export const RECORD_HEADER_BYTES = LENGTH_PREFIX_BYTES + 1 + DATA_HEADER_BYTES;
const OFFSET_RECEIVER_INDEX = 5;
const OFFSET_COUNTER = 9;
const U64_MAX = 2n ** 64n - 1n;

export interface SealRecordInput {
  key: Uint8Array;
  /** The receiver's index (its localIndex). */
  receiverIndex: number;
  counter: bigint;
  /** Sender wall clock, ms since the Unix epoch. */
  senderTimeMs: number;
  payload: Uint8Array;
}

/** The record as buffers to write in order (header, ciphertext pieces, tag): no copy of the payload. */
export function sealRecordParts(input: SealRecordInput): Buffer[] {
  if (input.payload.length > MAX_RECORD_PAYLOAD_BYTES)
    throw new ValidationError('payload', `above ${MAX_RECORD_PAYLOAD_BYTES} bytes`);
  if (input.counter < 0n || input.counter > U64_MAX) throw new ValidationError('counter', 'must be a u64');
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES + RECORD_TIMESTAMP_BYTES);
  header.writeUInt32LE(MIN_DATA_FRAME_LENGTH + input.payload.length, 0);
  header[4] = MessageType.data;
  header.writeUInt32LE(input.receiverIndex, OFFSET_RECEIVER_INDEX);
  header.writeBigUInt64LE(input.counter, OFFSET_COUNTER);
  const timestamp = header.subarray(RECORD_HEADER_BYTES);
  timestamp.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(input.senderTimeMs))));
  const ad = header.subarray(0, RECORD_HEADER_BYTES);
  const [sealedTimestamp, ...rest] = aeadSealParts(input.key, input.counter, ad, [timestamp, input.payload]);
  sealedTimestamp.copy(timestamp); // the header buffer now holds header || encrypted timestamp
  return [header, ...rest];
}

export function sealRecord(input: SealRecordInput): Buffer {
  return Buffer.concat(sealRecordParts(input));
}

export interface RecordHeader {
  receiverIndex: number;
  counter: bigint;
}

/** Parse the cleartext header of a data frame (full frame, length prefix included). */
export function readRecordHeader(frame: Buffer): RecordHeader {
  const length = frame.length - LENGTH_PREFIX_BYTES;
  if (
    frame.length < LENGTH_PREFIX_BYTES + MIN_DATA_FRAME_LENGTH ||
    frame.readUInt32LE(0) !== length ||
    frame[4] !== MessageType.data
  ) {
    throw new SecureChannelError('malformed', 'data record too short or with a wrong length or type');
  }
  if (length > MAX_FRAME_LENGTH) throw new SecureChannelError('oversize', 'data record above the maximum size');
  return { receiverIndex: frame.readUInt32LE(OFFSET_RECEIVER_INDEX), counter: frame.readBigUInt64LE(OFFSET_COUNTER) };
}

export interface OpenedRecord {
  senderTimeMs: number;
  payload: Buffer;
}

/** Verify and decrypt a data frame. Freshness checks (window, skew, limits) are the caller's: see keypair.ts. */
export function openRecord(
  frame: Buffer,
  key: Uint8Array,
  header: RecordHeader = readRecordHeader(frame),
): OpenedRecord {
  const plaintext = aeadOpen(
    key,
    header.counter,
    frame.subarray(0, RECORD_HEADER_BYTES),
    frame.subarray(RECORD_HEADER_BYTES),
  );
  if (!plaintext) throw new SecureChannelError('decrypt', 'data record did not authenticate');
  return {
    senderTimeMs: Number(plaintext.readBigUInt64LE(0)),
    payload: plaintext.subarray(RECORD_TIMESTAMP_BYTES),
  };
}
