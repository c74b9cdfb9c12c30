// The client inside a virtual router. Paper IV-B: it monitors the router's forwarding table
// and packet filter and transmits every change to Dom0 through the secure channel (IV-C).
// On every (re)connection it sends its whole state, ending with EndOfSync, so that the host
// can sweep what the router no longer has (graceful restart, RFC 4724 style).
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  MAX_FILTER_RULES_ON_WIRE,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeMessage,
  encodeEndOfSync,
  encodeFilterReplace,
  encodeHello,
  encodeNeighbourBatch,
  encodeRouteBatches,
  neighbourBatchFromLists,
  routeChangesFromLists,
  silentLogger,
  type UpdateLogger,
  type UpdateMessage,
  type UpdateSession,
  type UpdateTransport,
  type WireRoute,
} from '../wire/index.js';
import type { ClientConfig } from './config.js';
import { diffSnapshots, EMPTY_SNAPSHOT, isEmptyChange, type KernelSnapshot, type SnapshotChanges } from './diff.js';
import { KernelWatcher, type SnapshotSource } from './watcher.js';

export interface ClientOptions {
  /** How to reach the host: the lead wires this to the secure channel. */
  readonly transport: UpdateTransport;
  readonly logger?: UpdateLogger;
  /** Ends the client: the session is closed and runClient resolves. */
  readonly signal?: AbortSignal;
  /** Where snapshots come from; default: a KernelWatcher over this machine's kernel. */
  readonly source?: SnapshotSource;
  /** Largest protocol message (the channel's record limit). */
  readonly maxMessageBytes?: number;
  /** First reconnect delay; it doubles up to config.reconnectMaxMs. */
  readonly reconnectInitialMs?: number;
  /** Delay before a resync that follows a refused batch; it doubles up to resyncRetryMaxMs. */
  readonly resyncRetryInitialMs?: number;
  readonly resyncRetryMaxMs?: number;
  /** Messages sent but not yet acknowledged before the client waits. */
  readonly window?: number;
}

/** What the client did, for `xnetmon client` status output and tests. */
export interface ClientStatus {
  readonly connected: boolean;
  readonly sessions: number;
  readonly resyncs: number;
  readonly lastResyncAt: Date | null;
  readonly messagesSent: number;
  readonly refusedBatches: number;
  readonly lastError: string | null;
}

const NEIGHBOURS_PER_BATCH = 20_000;

/** A wake-up call: `wait` resolves on the next `notify` (or after `ms`). */
class Wakeup {
  private waiters: (() => void)[] = [];

  notify(): void {
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (ms !== undefined)
        timer = setTimeout(
          () => {
            this.waiters = this.waiters.filter((w) => w !== done);
            resolve();
          },
          Math.max(0, ms),
        );
    });
  }
}

class SessionClosed extends Error {}

export class UpdateClient {
  private readonly logger: UpdateLogger;
  private readonly source: SnapshotSource;
  private readonly wakeup = new Wakeup();
  private readonly maxMessageBytes: number;
  private readonly window: number;
  private latest: KernelSnapshot | null = null;
  private stopped = false;
  private status: { -readonly [K in keyof ClientStatus]: ClientStatus[K] } = {
    connected: false,
    sessions: 0,
    resyncs: 0,
    lastResyncAt: null,
    messagesSent: 0,
    refusedBatches: 0,
    lastError: null,
  };

  constructor(
    private readonly config: ClientConfig,
    private readonly options: ClientOptions,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.window = options.window ?? 64;
    this.source =
      options.source ??
      new KernelWatcher({
        tables: config.tables,
        interfaces: config.interfaces,
        filter: config.filter,
        coalesceMs: config.coalesceMs,
        pollIntervalMs: config.pollIntervalMs,
        logger: this.logger,
      });
  }

  getStatus(): ClientStatus {
    return { ...this.status };
  }

  /** Runs until the signal aborts: connects, resyncs, sends changes, reconnects with backoff. */
  async run(): Promise<void> {
    const signal = this.options.signal ?? new AbortController().signal;
    const onAbort = (): void => {
      this.stopped = true;
      this.wakeup.notify();
    };
    signal.addEventListener('abort', onAbort);
    this.source.start((snapshot) => {
      this.latest = snapshot;
      this.wakeup.notify();
    });
    const initial = this.options.reconnectInitialMs ?? 100;
    let delay = initial;
    try {
      while (!this.stopped) {
        let session: UpdateSession;
        try {
          session = await this.options.transport.connect(signal);
        } catch (error) {
          if (this.stopped) break;
          this.status.lastError = errorText(error);
          this.logger.warn({ err: errorText(error), retryMs: delay }, 'cannot reach the host');
          await this.wakeup.wait(delay);
          delay = Math.min(delay * 2, this.config.reconnectMaxMs);
          continue;
        }
        const synced = await this.serve(session);
        if (synced) delay = initial;
        if (this.stopped) break;
        this.logger.info({ retryMs: delay }, 'session with the host closed; reconnecting');
        await this.wakeup.wait(delay);
        delay = Math.min(delay * 2, this.config.reconnectMaxMs);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.source.stop();
    }
  }

  /** One session: full resync, then changes as they come. Returns whether a resync completed. */
  private async serve(session: UpdateSession): Promise<boolean> {
    this.status.sessions++;
    this.status.connected = true;
    let closed = false;
    let synced = false;
    let sequence = 0;
    let resyncDue: number | null = null;
    const resyncRetryInitial = this.options.resyncRetryInitialMs ?? 1000;
    const resyncRetryMax = this.options.resyncRetryMaxMs ?? 60_000;
    let resyncDelay = resyncRetryInitial;
    const pending = new Map<number, { what: string }>();
    let endOfSync: number | null = null;
    const next = (): number => {
      sequence = sequence >= 0xffffffff ? 1 : sequence + 1;
      return sequence;
    };

    const reader = (async () => {
      try {
        for await (const payload of session.messages()) {
          let message: UpdateMessage;
          try {
            message = decodeMessage(payload);
          } catch (error) {
            this.logger.error(
              { err: error instanceof ProtocolError ? error.message : errorText(error) },
              'undecodable message from the host',
            );
            continue;
          }
          if (message.type !== 'ack') continue;
          const sent = pending.get(message.sequence);
          pending.delete(message.sequence);
          if (message.ok) {
            if (message.sequence === endOfSync) {
              synced = true;
              resyncDelay = resyncRetryInitial;
              this.status.resyncs++;
              this.status.lastResyncAt = new Date();
              this.logger.info({ routes: this.latest?.routes.size ?? 0 }, 'host replica in sync');
            }
          } else {
            this.status.refusedBatches++;
            this.status.lastError = `${message.errorCode}: ${message.errorMessage}`;
            this.logger.error(
              {
                sequence: message.sequence,
                what: sent?.what ?? 'hello',
                code: message.errorCode,
                err: message.errorMessage,
              },
              'the host refused an update; resyncing later',
            );
            // The host's replica now lacks that batch: start again from a full resync, with backoff.
            if (message.errorCode !== 'ERR_VERSION' && message.errorCode !== 'ERR_PROTOCOL' && resyncDue === null) {
              resyncDue = Date.now() + resyncDelay;
              resyncDelay = Math.min(resyncDelay * 2, resyncRetryMax);
            }
          }
          this.wakeup.notify();
        }
      } catch (error) {
        this.logger.debug({ err: errorText(error) }, 'session reader ended');
      } finally {
        closed = true;
        this.wakeup.notify();
      }
    })();

    const send = async (payload: Buffer, seq: number | null, what: string): Promise<void> => {
      while (pending.size >= this.window && !closed && !this.stopped) await this.wakeup.wait(1000);
      if (closed || this.stopped) throw new SessionClosed();
      if (seq !== null) pending.set(seq, { what });
      await session.send(payload);
      this.status.messagesSent++;
    };

    const sendChanges = async (changes: SnapshotChanges): Promise<void> => {
      const neighbourAdds = changes.neighbourAdds.map((n) => ({
        address: n.address,
        mac: n.mac,
        interface: n.interface,
      }));
      const neighbourDeletes = changes.neighbourDeletes.map((n) => ({ address: n.address, interface: n.interface }));
      // Neighbours first: routes that arrive after them resolve to a next hop at once.
      for (let i = 0; i < Math.max(neighbourAdds.length, neighbourDeletes.length); i += NEIGHBOURS_PER_BATCH) {
        const seq = next();
        const batch = neighbourBatchFromLists(
          seq,
          neighbourAdds.slice(i, i + NEIGHBOURS_PER_BATCH),
          neighbourDeletes.slice(i, i + NEIGHBOURS_PER_BATCH),
        );
        await send(encodeNeighbourBatch(batch), seq, 'neighbours');
      }
      if (changes.routeAdds.length > 0 || changes.routeDeletes.length > 0) {
        const adds: WireRoute[] = changes.routeAdds.map((r) => ({
          prefix: r.prefix,
          kind: r.kind,
          gateway: r.gateway,
          interface: r.interface,
        }));
        const routeChanges = routeChangesFromLists(adds, changes.routeDeletes);
        const batches = [
          ...encodeRouteBatches(routeChanges, {
            firstSequence: sequence >= 0xffffffff ? 1 : sequence + 1,
            maxBytes: this.maxMessageBytes,
          }),
        ];
        for (const batch of batches) {
          sequence = batch.sequence;
          await send(batch.payload, batch.sequence, `routes (${batch.entries})`);
        }
      }
      if (changes.filter !== null) {
        if (changes.filter.length > MAX_FILTER_RULES_ON_WIRE) {
          this.logger.error(
            { rules: changes.filter.length },
            `the filter has more than ${MAX_FILTER_RULES_ON_WIRE} rules: not replicated`,
          );
        } else {
          const seq = next();
          await send(encodeFilterReplace({ sequence: seq, rules: changes.filter }), seq, 'filter');
        }
      }
    };

    const resync = async (snapshot: KernelSnapshot): Promise<KernelSnapshot> => {
      resyncDue = null;
      await send(encodeHello({ version: PROTOCOL_VERSION, clientName: this.config.name }), null, 'hello');
      await sendChanges(diffSnapshots(EMPTY_SNAPSHOT, snapshot));
      const seq = next();
      endOfSync = seq;
      await send(encodeEndOfSync({ sequence: seq }), seq, 'end of sync');
      this.logger.info(
        {
          routes: snapshot.routes.size,
          neighbours: snapshot.neighbours.size,
          filterRules: snapshot.filter?.length ?? null,
        },
        'full resync sent',
      );
      return snapshot;
    };

    try {
      while (this.latest === null && !closed && !this.stopped) await this.wakeup.wait();
      if (closed || this.stopped || this.latest === null) return synced;
      let hostView = await resync(this.latest);
      while (!closed && !this.stopped) {
        if (resyncDue !== null && Date.now() >= resyncDue) {
          hostView = await resync(this.latest);
          continue;
        }
        if (this.latest !== hostView) {
          const snapshot = this.latest;
          const changes = diffSnapshots(hostView, snapshot);
          if (!isEmptyChange(changes)) await sendChanges(changes);
          hostView = snapshot;
          continue;
        }
        await this.wakeup.wait(resyncDue === null ? undefined : resyncDue - Date.now());
      }
    } catch (error) {
      if (!(error instanceof SessionClosed)) {
        this.status.lastError = errorText(error);
        this.logger.warn({ err: errorText(error) }, 'sending to the host failed');
      }
    } finally {
      this.status.connected = false;
      session.close();
      await reader;
    }
    return synced;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `xnetmon client -c client.yaml`: replicates this router's tables to the host until `signal`
 * aborts. The caller provides the transport (the secure channel to config.host).
 */
export async function runClient(config: ClientConfig, options: ClientOptions): Promise<void> {
  await new UpdateClient(config, options).run();
}
