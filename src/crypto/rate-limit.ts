// Token buckets keyed by source address or client key, so handshakes from
// one source or one key cannot use up the host's CPU for the others.

import { ValidationError } from '../errors/index.js';
import type { TokenBucketLimit } from './constants.js';

interface Bucket {
  tokens: number;
  updatedAtMs: number;
}

/** Buckets are dropped once full again, so idle sources cost no memory. */
const PRUNE_THRESHOLD = 4096;

export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: TokenBucketLimit,
    private readonly now: () => number,
  ) {}

  /** True if a token is available for `key` (none taken). */
  peek(key: string): boolean {
    return this.refill(key).tokens >= 1;
  }

  /** Take a token; false when the bucket is empty. */
  take(key: string): boolean {
    const bucket = this.refill(key);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private refill(key: string): Bucket {
    const nowMs = this.now();
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= PRUNE_THRESHOLD) this.prune(nowMs);
      bucket = { tokens: this.limit.burst, updatedAtMs: nowMs };
      this.buckets.set(key, bucket);
      return bucket;
    }
    const elapsedMs = Math.max(0, nowMs - bucket.updatedAtMs);
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + (elapsedMs * this.limit.perSecond) / 1000);
    bucket.updatedAtMs = nowMs;
    return bucket;
  }

  private prune(nowMs: number): void {
    for (const [key, bucket] of this.buckets) {
      const tokens = bucket.tokens + (Math.max(0, nowMs - bucket.updatedAtMs) * this.limit.perSecond) / 1000;
      if (tokens >= this.limit.burst) this.buckets.delete(key);
    }
  }
}

/** One bucket (e.g. the records of one session); no map, no pruning. */
export class TokenBucket {
  private tokens: number;
  private updatedAtMs: number;

  constructor(
    private readonly limit: TokenBucketLimit,
    private readonly now: () => number,
  ) {
    this.tokens = limit.burst;
    this.updatedAtMs = now();
  }

  /** Take a token; false when the bucket is empty. */
  take(): boolean {
    const nowMs = this.now();
    this.tokens = Math.min(
      this.limit.burst,
      this.tokens + (Math.max(0, nowMs - this.updatedAtMs) * this.limit.perSecond) / 1000,
    );
    this.updatedAtMs = nowMs;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export function validateTokenBucketLimit(limit: TokenBucketLimit, path: string): TokenBucketLimit {
  if (!(limit.perSecond >= 0) || !(limit.burst >= 1)) {
    throw new ValidationError(path, 'perSecond must be >= 0 and burst >= 1');
  }
  return { perSecond: limit.perSecond, burst: limit.burst };
}
