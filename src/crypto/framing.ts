// Length-prefixed frames on a TCP stream. The length is validated against the
// message type as soon as the 5 header bytes are in, so an oversized or
// mis-sized frame is refused before its body is buffered.

import {
  COOKIE_REPLY_BODY_BYTES,
  INITIATION_BODY_BYTES,
  INITIATION_WITH_MAC2_BODY_BYTES,
  LENGTH_PREFIX_BYTES,
  MAX_FRAME_LENGTH,
  MIN_DATA_FRAME_LENGTH,
  MessageType,
  RESPONSE_BODY_BYTES,
} from './constants.js';
import { SecureChannelError } from './errors.js';

const FRAME_HEADER_BYTES = LENGTH_PREFIX_BYTES + 1;

/** Check a frame's length prefix against its type; throws the rejection. */
export function validateFrameHeader(length: number, type: number | undefined): void {
  if (length > MAX_FRAME_LENGTH)
    throw new SecureChannelError('oversize', `frame length ${length} above the maximum ${MAX_FRAME_LENGTH}`);
  if (length < 1) throw new SecureChannelError('malformed', 'empty frame');
  if (type === undefined) return;
  switch (type) {
    case MessageType.initiation:
      if (length !== 1 + INITIATION_BODY_BYTES && length !== 1 + INITIATION_WITH_MAC2_BODY_BYTES)
        throw new SecureChannelError('malformed', `initiation frame length ${length}`);
      return;
    case MessageType.response:
      if (length !== 1 + RESPONSE_BODY_BYTES)
        throw new SecureChannelError('malformed', `response frame length ${length}`);
      return;
    case MessageType.cookieReply:
      if (length !== 1 + COOKIE_REPLY_BODY_BYTES)
        throw new SecureChannelError('malformed', `cookie reply frame length ${length}`);
      return;
    case MessageType.data:
      if (length < MIN_DATA_FRAME_LENGTH)
        throw new SecureChannelError('malformed', `data frame length ${length} below ${MIN_DATA_FRAME_LENGTH}`);
      return;
    default:
      throw new SecureChannelError('malformed', `unknown message type ${type}`);
  }
}

/** Splits a byte stream into whole frames (each returned with its length prefix). */
export class FrameDecoder {
  /** Called with each frame's type as soon as its header is in; throws to refuse the frame before buffering it. */
  private readonly admitType: ((type: number) => void) | undefined;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Total size of the frame being assembled (prefix included), once its header is validated. */
  private expected = 0;

  constructor(admitType?: (type: number) => void) {
    this.admitType = admitType;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Feed bytes; returns the frames completed. Throws SecureChannelError on a bad header. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    for (;;) {
      if (this.expected === 0) {
        if (this.buffered < LENGTH_PREFIX_BYTES) break;
        const header = this.peek(Math.min(FRAME_HEADER_BYTES, this.buffered));
        const length = header.readUInt32LE(0);
        validateFrameHeader(length, header.length > LENGTH_PREFIX_BYTES ? header[LENGTH_PREFIX_BYTES] : undefined);
        if (header.length < FRAME_HEADER_BYTES) break;
        this.admitType?.(header[LENGTH_PREFIX_BYTES]);
        this.expected = LENGTH_PREFIX_BYTES + length;
      }
      if (this.buffered < this.expected) break;
      frames.push(this.take(this.expected));
      this.expected = 0;
    }
    return frames;
  }

  /** The stream ended: throws 'truncated' if a partial frame is buffered. */
  end(): void {
    if (this.buffered > 0)
      throw new SecureChannelError('truncated', `stream ended inside a frame (${this.buffered} bytes buffered)`);
  }

  private peek(count: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= count) return first.subarray(0, count);
    return Buffer.concat(this.chunks, count);
  }

  private take(count: number): Buffer {
    this.buffered -= count;
    const first = this.chunks[0];
    if (first.length >= count) {
      // Common case for small frames: a view into the received chunk, no copy.
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const out = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length, count - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
