// Command-line values checked where they are parsed: a bad one is a ValidationError naming the
// option, before anything is sent to the daemon.
import { ValidationError } from '../errors/index.js';

/** A share in [0, 1]; anything else is a ValidationError naming the option. */
export function parseShare(option: string): (value: string) => number {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
      throw new ValidationError(option, `${JSON.stringify(value)} is not a share between 0 and 1`);
    }
    return n;
  };
}

/** A weight W: an integer from 1 to 1000. */
export function parseWeight(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 1000) {
    throw new ValidationError('--weight', `${JSON.stringify(value)} is not an integer from 1 to 1000`);
  }
  return n;
}
