// The daemon's and the client's log: JSON lines (pino), pretty on a terminal. A leaf module,
// so that the router-side client can log without loading the host's modules.
import { pino, type Logger } from 'pino';

export function createLogger(): Logger {
  return process.stdout.isTTY
    ? pino({ transport: { target: 'pino-pretty', options: { colorize: true } } })
    : pino();
}
