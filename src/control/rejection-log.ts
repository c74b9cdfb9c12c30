// Refused secure-channel connections, logged at a bounded rate. One line per
// rejection let a flood from 20,000 sources write 27,000 warnings; now the first
// rejection of each reason in an interval is logged at once (an operator sees a new
// kind of trouble immediately) and everything else goes into one summary line per
// interval: counts by reason, how many distinct sources, a few of them as examples.
import type { RejectReason, RejectionEvent } from '../crypto/index.js';

export interface RejectionLogger {
  warn(obj: object, msg?: string): void;
}

export interface RejectionLogOptions {
  logger: RejectionLogger;
  /** Length of one summary interval. Default 10 s. */
  intervalMs?: number;
  /** Milliseconds clock; injected by tests. Default Date.now. */
  now?: () => number;
}

export const REJECTION_SUMMARY_INTERVAL_MS = 10_000;
/** Example sources in a summary line: enough to grep for, short enough to stay one line. */
const EXAMPLE_SOURCES = 5;
/** Distinct sources remembered per interval; beyond it the count is reported as at least this. */
const MAX_TRACKED_SOURCES = 100_000;

export class RejectionLog {
  private readonly logger: RejectionLogger;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private intervalStartMs: number;
  private counts = new Map<RejectReason, number>();
  private sources = new Set<string>();
  /** Rejections logged on their own line this interval (not repeated in the summary's "more" count). */
  private loggedAtOnce = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: RejectionLogOptions) {
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? REJECTION_SUMMARY_INTERVAL_MS;
    this.now = options.now ?? Date.now;
    this.intervalStartMs = this.now();
  }

  /** Flush summaries on time even when no further rejection arrives. */
  start(): void {
    this.timer ??= setInterval(() => this.flushIfDue(), Math.max(1, Math.floor(this.intervalMs / 4)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.flush();
  }

  record(event: RejectionEvent): void {
    this.flushIfDue();
    const seen = this.counts.get(event.reason) ?? 0;
    this.counts.set(event.reason, seen + 1);
    const source = event.remoteAddress ?? 'unknown';
    if (this.sources.size < MAX_TRACKED_SOURCES) this.sources.add(source);
    if (seen === 0) {
      this.loggedAtOnce++;
      this.logger.warn(
        { reason: event.reason, remote: event.remoteAddress, peer: event.peerId },
        `secure channel rejected: ${event.message}`,
      );
    }
  }

  /** Write the summary now if the interval is over. */
  flushIfDue(): void {
    if (this.now() - this.intervalStartMs >= this.intervalMs) this.flush();
  }

  /** Write the summary of the interval (if anything beyond the first of each reason) and start a new one. */
  flush(): void {
    const total = [...this.counts.values()].reduce((sum, count) => sum + count, 0);
    if (total > this.loggedAtOnce) {
      const seconds = Math.round((this.now() - this.intervalStartMs) / 100) / 10;
      const distinct = this.sources.size >= MAX_TRACKED_SOURCES ? `>=${MAX_TRACKED_SOURCES}` : this.sources.size;
      const examples = [...this.sources].slice(0, EXAMPLE_SOURCES);
      this.logger.warn(
        { reasons: Object.fromEntries(this.counts), total, sources: distinct, examples, seconds },
        `secure channel rejected ${total} connections from ${distinct} sources in ${seconds} s`,
      );
    }
    this.counts = new Map();
    this.sources = new Set();
    this.loggedAtOnce = 0;
    this.intervalStartMs = this.now();
  }
}
