// The admin protocol: one JSON request per line, one JSON response per line, each response with
// the id of its request; what both the daemon's server and the CLI's client read and write.
import { XnetmonError } from '../errors/index.js';

/** Requests may carry an `id` (string or number); the response echoes it. */
export type AdminRequestId = string | number;

export interface AdminRequest {
  cmd: string;
  args?: Record<string, unknown>;
  id?: AdminRequestId;
}

export type AdminResponse =
  | { ok: true; result: unknown; id?: AdminRequestId }
  | { ok: false; error: { code: string; message: string; path?: string }; id?: AdminRequestId };

export const MAX_REQUEST_BYTES = 1 << 20;
/**
 * The CLI opens one connection per command; 32 is far more than an operator and a monitoring job
 * use, and bounds what a runaway script can hold.
 */
export const ADMIN_MAX_CONNECTIONS = 32;
/**
 * Requests one connection may have in flight: the handler may take a while (reload), and a
 * pipelining client must not queue unbounded work. Further ones get ERR_BUSY.
 */
export const ADMIN_MAX_IN_FLIGHT_PER_CONNECTION = 4;
/** A connection with no request in flight and no traffic for this long is closed, so forgotten clients do not hold connection slots. */
export const ADMIN_IDLE_TIMEOUT_MS = 60_000;

export function isRequestId(value: unknown): value is AdminRequestId {
  return (typeof value === 'string' && value.length <= 128) || (typeof value === 'number' && Number.isFinite(value));
}

export function withId(response: AdminResponse, id: AdminRequestId | undefined): AdminResponse {
  return id === undefined ? response : { ...response, id };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A request line, or the response refusing it (with its id when one could be read). */
export function parseRequest(line: string): AdminRequest | (AdminResponse & { ok: false }) {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    value = undefined;
  }
  const object = isRecord(value) ? value : undefined;
  const id = isRequestId(object?.id) ? object.id : undefined;
  const badId = object?.id !== undefined && id === undefined;
  const badArgs = object?.args !== undefined && !isRecord(object.args);
  if (!object || typeof object.cmd !== 'string' || badId || badArgs) {
    const message =
      'request is not a JSON object with a "cmd" string (and optional "args", an object, and "id", a string or a number)';
    return { ok: false, error: { code: 'ERR_BAD_REQUEST', message }, ...(id === undefined ? {} : { id }) };
  }
  const args = isRecord(object.args) ? object.args : undefined;
  return { cmd: object.cmd, ...(args ? { args } : {}), ...(id === undefined ? {} : { id }) };
}

export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** An error the daemon answered with, re-raised in the CLI with its code and path. */
export class AdminError extends XnetmonError {
  constructor(
    code: string,
    message: string,
    readonly path?: string,
  ) {
    super(code, message);
  }
}

/** The daemon's reply could not be understood (not JSON, no `ok`, another request's id). */
export class AdminReplyError extends XnetmonError {
  constructor(message: string) {
    super('ERR_ADMIN_REPLY', message);
  }
}

/**
 * Checks one reply line against the request id. A reply without an id is accepted (a daemon
 * from before ids were echoed); one with another id is not.
 */
export function parseAdminReply(line: string, expectedId: AdminRequestId): AdminResponse {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AdminReplyError(`the daemon's reply is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (!isRecord(value) || typeof value.ok !== 'boolean') {
    throw new AdminReplyError(`the daemon's reply has no "ok" field: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (value.id !== undefined && value.id !== expectedId) {
    throw new AdminReplyError(
      `the daemon's reply is for request ${JSON.stringify(value.id)}, not ${JSON.stringify(expectedId)}`,
    );
  }
  const id = isRequestId(value.id) ? { id: value.id } : {};
  if (value.ok) return { ok: true, result: value.result, ...id };
  const error = isRecord(value.error) ? value.error : undefined;
  if (typeof error?.code !== 'string' || typeof error.message !== 'string') {
    throw new AdminReplyError('the daemon refused the request without an error code and message');
  }
  const path = typeof error.path === 'string' ? { path: error.path } : {};
  return { ok: false, error: { code: error.code, message: error.message, ...path }, ...id };
}
