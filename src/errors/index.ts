// One error base for the whole project: every error has a stable `code` that
// operators and tests can match on, and keeps its `cause` (undici's habit).

export class XnetmonError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A kernel or libbpf call failed; `errno` is positive (EINVAL = 22). */
export class SystemCallError extends XnetmonError {
  readonly errno: number;
  readonly call: string;

  constructor(call: string, errno: number, detail?: string) {
    super('ERR_SYSCALL', `${call} failed: ${errnoName(errno)} (${errno})${detail ? `: ${detail}` : ''}`);
    this.errno = errno;
    this.call = call;
  }
}

/** Bad input from a config file, CLI argument, route or message; `path` names the field. */
export class ValidationError extends XnetmonError {
  readonly path: string;

  constructor(path: string, message: string) {
    super('ERR_INVALID', `${path}: ${message}`);
    this.path = path;
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  7: 'E2BIG',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  24: 'EMFILE',
  28: 'ENOSPC',
  95: 'EOPNOTSUPP',
  524: 'ENOTSUPP',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

export { FailureLog, type FailureLogger, type FailureLogOptions } from './failures.js';
