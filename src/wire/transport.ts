// What the update protocol needs from the secure channel (paper IV-C), and nothing more:
// the lead wires these to src/crypto (SecureSession on the host, connectSecure in the client).

/** One authenticated session of the secure channel. */
export interface UpdateSession {
  /**
   * The peer's authenticated identity. On the host: the network name whose router key
   * completed the handshake; the manager trusts it to pick the network's tables.
   */
  readonly peerId: string;
  /**
   * On the host: the client public key (base64) that completed the handshake, naming which of
   * the network's routers this is. Absent (in-memory sessions): the network's first router.
   */
  readonly peerPublicKey?: string | undefined;
  /** Where the peer connects from ("192.0.2.7:40312"), for `xnetmon clients`. */
  readonly remoteAddress?: string | undefined;
  /** Sends one payload (one protocol message); rejects once the session is closed. */
  send(payload: Buffer): Promise<void>;
  /** The peer's payloads, in order; the iteration ends (or throws) when the session closes. */
  messages(): AsyncIterable<Buffer>;
  close(): void;
}

/** The client's way to reach the host: resolves to an established session, or rejects. */
export interface UpdateTransport {
  connect(signal: AbortSignal): Promise<UpdateSession>;
}

/** pino-compatible logger: every method takes (fields, message). */
export interface UpdateLogger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** A logger that drops everything (tests, or when the caller passes none). */
export const silentLogger: UpdateLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};

/** Time, injectable so that stale-route timers can be tested without waiting. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Payloads in arrival order for one reader: `iterate()` yields them as they come and ends
 * once the queue is closed and drained. The in-memory sessions (benchmarks, tests) use it.
 */
export class PayloadQueue {
  private readonly items: Buffer[] = [];
  private reader: (() => void) | null = null;
  private closed = false;

  push(...payloads: Buffer[]): void {
    this.items.push(...payloads);
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  iterate(): AsyncIterable<Buffer> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Buffer>> => {
          for (;;) {
            const payload = this.items.shift();
            if (payload) return { value: payload, done: false };
            if (this.closed) return { value: undefined, done: true };
            await new Promise<void>((resolve) => {
              this.reader = resolve;
            });
          }
        },
      }),
    };
  }

  private wake(): void {
    const reader = this.reader;
    this.reader = null;
    reader?.();
  }
}
