// `xnetmon up`: the daemon's process life: signals (held from the process's start, see
// signals.ts), reload, clean stop.
import { Daemon, createLogger, channelAuthority } from '../control/index.js';
import { processSignals, runDaemon } from './signals.js';

export async function startDaemon(configPath: string, options: { noControl?: boolean }): Promise<void> {
  const latch = processSignals();
  const log = createLogger();
  log.info({ config: configPath }, 'starting');
  const start = () => Daemon.start({ configPath, logger: log, noControl: options.noControl }, channelAuthority);
  await runDaemon(latch, start, log, (code) => process.exit(code));
}
