// `xnetmon up`: the daemon's process life: signals, reload, clean stop.
import { Daemon, createLogger, channelAuthority } from '../control/index.js';

export async function startDaemon(configPath: string, options: { noControl?: boolean }): Promise<void> {
  const log = createLogger();
  const daemon = await Daemon.start({ configPath, logger: log, noControl: options.noControl }, channelAuthority);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void daemon.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    daemon.reload().then(
      (diff) => log.info({ diff }, 'reloaded'),
      (err: Error) => log.error({ err: err.message }, 'reload rejected; running on the old configuration'),
    );
  });
}
