// The daemon's and the client's log: JSON lines (pino), pretty on a terminal. A leaf module,
// so that the router-side client can log without loading the host's modules.
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';

/** pino-pretty is a development dependency: the Debian packages ship without it, and log JSON on a terminal too. */
function prettyAvailable(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

export function createLogger(): Logger {
  return process.stdout.isTTY && prettyAvailable()
    ? pino({ transport: { target: 'pino-pretty', options: { colorize: true } } })
    : pino();
}
