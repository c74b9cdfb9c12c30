// Failures that repeat (a full map every period, a hostile router's refused batches) must be
// visible without flooding the log: each kind of failure is counted every time and logged at
// most once per interval, with how many were suppressed since the last line.

/** The part of a pino logger (or the manager's UpdateLogger) this needs. */
export interface FailureLogger {
  warn(fields: object, message: string): void;
}

export interface FailureLogOptions {
  /** At most one line per key in this many milliseconds; default 10 s. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export class FailureLog {
  private readonly intervalMs: number;
  private readonly now: () => number;
  /** key -> failures counted since the map was made. */
  private readonly totals = new Map<string, number>();
  /** key -> when it was last logged, and failures suppressed since. */
  private readonly lastLogged = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: FailureLogger,
    options: FailureLogOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Counts one failure of `key`; logs it unless the key was logged within the interval. Returns whether it logged. */
  report(key: string, fields: object, message: string): boolean {
    this.totals.set(key, (this.totals.get(key) ?? 0) + 1);
    const now = this.now();
    const last = this.lastLogged.get(key);
    if (last && now - last.at < this.intervalMs) {
      last.suppressed++;
      return false;
    }
    const suppressed = last?.suppressed ?? 0;
    this.lastLogged.set(key, { at: now, suppressed: 0 });
    this.logger.warn(
      { ...fields, failures: this.totals.get(key), ...(suppressed > 0 ? { suppressedSinceLastLog: suppressed } : {}) },
      message,
    );
    return true;
  }

  /** Failures of `key` so far. */
  count(key: string): number {
    return this.totals.get(key) ?? 0;
  }

  /** Every key's count, for status and metrics. */
  counts(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }
}
