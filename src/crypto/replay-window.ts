// Sliding anti-replay window of RFC 6479: a ring of 32-bit words, cleared a
// word at a time as the greatest counter advances, so each check is O(1) and
// the window is 8192 - 32 = 8160 counters wide (WireGuard's layout).

import { ValidationError } from '../errors/index.js';
import { REPLAY_BITMAP_BITS } from './constants.js';

const WORD_BITS = 32;
const WORD_SHIFT = 5n;
const BIT_MASK = 31n;

export class ReplayWindow {
  /** Counters with greatest - counter < windowSize are tracked; older ones are refused. */
  readonly windowSize: bigint;
  private readonly words: Uint32Array;
  private readonly wordMask: bigint;
  private greatest = -1n;

  constructor(bitmapBits = REPLAY_BITMAP_BITS) {
    if (!Number.isInteger(bitmapBits) || bitmapBits < 2 * WORD_BITS || (bitmapBits & (bitmapBits - 1)) !== 0) {
      throw new ValidationError('bitmapBits', 'must be a power of two >= 64');
    }
    this.words = new Uint32Array(bitmapBits / WORD_BITS);
    this.wordMask = BigInt(this.words.length - 1);
    this.windowSize = BigInt(bitmapBits - WORD_BITS);
  }

  /** Greatest counter accepted so far, or -1n. */
  get greatestAccepted(): bigint {
    return this.greatest;
  }

  /** Would `counter` be accepted? Does not change the window (call before the tag is verified). */
  check(counter: bigint): boolean {
    if (counter < 0n) return false;
    if (counter > this.greatest) return true;
    if (this.greatest - counter >= this.windowSize) return false;
    const word = this.words[Number((counter >> WORD_SHIFT) & this.wordMask)];
    return ((word >>> Number(counter & BIT_MASK)) & 1) === 0;
  }

  /** Mark `counter` as seen; false (and no change) if it is a replay or too old. Call only after the tag verified. */
  accept(counter: bigint): boolean {
    if (!this.check(counter)) return false;
    if (counter > this.greatest) {
      const newWord = counter >> WORD_SHIFT;
      if (this.greatest < 0n) {
        this.words.fill(0);
      } else {
        const oldWord = this.greatest >> WORD_SHIFT;
        const toClear = newWord - oldWord;
        if (toClear >= BigInt(this.words.length)) {
          this.words.fill(0);
        } else {
          for (let i = 1n; i <= toClear; i++) this.words[Number((oldWord + i) & this.wordMask)] = 0;
        }
      }
      this.greatest = counter;
    }
    const index = Number((counter >> WORD_SHIFT) & this.wordMask);
    this.words[index] = this.words[index] | (1 << Number(counter & BIT_MASK));
    return true;
  }
}
