// The daemon process's signals, handled from its first moment: Node's default action for
// SIGHUP and SIGTERM ends the process at once, so a signal that arrived while the daemon was
// still loading (a systemd reload during a long start-up, adopting a million routes) killed
// it half-way. The latch is installed before any long work (main.ts, before the host modules
// load) and keeps what arrives until the daemon's life cycle takes over.
// No imports: this module loads before everything else.

export type DaemonSignal = 'SIGTERM' | 'SIGINT' | 'SIGHUP';
const SIGNALS: readonly DaemonSignal[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export interface SignalTarget {
  on(signal: DaemonSignal, listener: () => void): unknown;
}

/** Holds the signals received until a handler takes them (in order of arrival). */
export class SignalLatch {
  private readonly held: DaemonSignal[] = [];
  private handler: ((signal: DaemonSignal) => void) | undefined;

  constructor(target: SignalTarget = process) {
    for (const signal of SIGNALS) target.on(signal, () => this.deliver(signal));
  }

  private deliver(signal: DaemonSignal): void {
    if (this.handler) this.handler(signal);
    else this.held.push(signal);
  }

  /** From now on signals go to `handler`; those held are delivered first. */
  take(handler: (signal: DaemonSignal) => void): void {
    this.handler = handler;
    for (const signal of this.held.splice(0)) handler(signal);
  }
}

let processLatch: SignalLatch | undefined;

/** The process's latch, installed on the first call. */
export function processSignals(): SignalLatch {
  processLatch ??= new SignalLatch();
  return processLatch;
}

export interface RunningDaemon {
  reload(): Promise<unknown>;
  stop(): Promise<void>;
}

export interface LifecycleLog {
  info(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/**
 * Starts the daemon and serves its signals. During start-up a SIGHUP is remembered (the file
 * is read again once the daemon is up: it may have changed after start-up read it) and a
 * SIGTERM or SIGINT stops the daemon cleanly as soon as start-up is done; afterwards SIGHUP
 * reloads and SIGTERM / SIGINT stop. `exit` is called with 0 after a clean stop.
 */
export async function runDaemon(
  latch: SignalLatch,
  start: () => Promise<RunningDaemon>,
  log: LifecycleLog,
  exit: (code: number) => void,
): Promise<void> {
  let daemon: RunningDaemon | undefined;
  let stopping = false;
  let reloadPending = false;
  const reload = (running: RunningDaemon): void => {
    running.reload().then(
      (diff) => log.info({ diff }, 'reloaded'),
      (err: Error) => log.error({ err: err.message }, 'reload rejected; running on the old configuration'),
    );
  };
  const stop = (running: RunningDaemon, signal: string): void => {
    log.info({ signal }, 'stopping');
    running.stop().then(
      () => exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'stopping failed');
        exit(1);
      },
    );
  };
  latch.take((signal) => {
    if (signal === 'SIGHUP') {
      if (stopping) return;
      if (daemon) reload(daemon);
      else {
        reloadPending = true;
        log.info({ signal }, 'reload asked during start-up: the file is read again once the daemon is up');
      }
      return;
    }
    if (stopping) return;
    stopping = true;
    if (daemon) stop(daemon, signal);
    else log.info({ signal }, 'stop asked during start-up: the daemon stops cleanly once started');
  });
  daemon = await start();
  if (stopping) stop(daemon, 'during start-up');
  else if (reloadPending) reload(daemon);
}
