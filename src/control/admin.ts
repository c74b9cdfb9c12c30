// The admin API: a Unix socket owned by root, mode 0600 in a 0700 directory (so
// other users cannot even reach it), carrying one JSON request per line and one
// JSON response per line, each response with the id of its request. No TCP admin port.
import { chmodSync, lstatSync, mkdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { XnetmonError, ValidationError } from '../errors/index.js';

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

export type AdminHandler = (request: AdminRequest) => Promise<unknown> | unknown;

const MAX_REQUEST_BYTES = 1 << 20;
/** The CLI opens one connection per command; 32 is far more than an operator and a monitoring job use, and bounds what a runaway script can hold. */
export const ADMIN_MAX_CONNECTIONS = 32;
/** Requests one connection may have in flight: the handler may take a while (reload), and a pipelining client must not queue unbounded work. Further ones get ERR_BUSY. */
export const ADMIN_MAX_IN_FLIGHT_PER_CONNECTION = 4;
/** A connection with no request in flight and no traffic for this long is closed, so forgotten clients do not hold connection slots. */
export const ADMIN_IDLE_TIMEOUT_MS = 60_000;

export interface AdminServerLimits {
  maxConnections?: number;
  maxInFlightPerConnection?: number;
  idleTimeoutMs?: number;
}

/** The directory of the socket is unsafe (another user could replace the socket), or the path is taken. */
export class AdminSocketError extends XnetmonError {
  constructor(message: string) {
    super('ERR_ADMIN_SOCKET_DIR', message);
  }
}

const STICKY_BIT = 0o1000;
const GROUP_OR_WORLD_WRITABLE = 0o022;

/**
 * A directory we did not create is left as it is, but it must be safe: owned by us (or
 * root), and not writable by group or others unless sticky (like /tmp), since whoever can
 * write there can remove our socket and put theirs in its place.
 */
export function checkSocketDirectory(directory: string, uid = process.getuid?.() ?? 0): void {
  const stat = statSync(directory);
  if (!stat.isDirectory()) throw new AdminSocketError(`${directory} (for the admin socket) is not a directory`);
  if (stat.uid !== uid && stat.uid !== 0) throw new AdminSocketError(`${directory} (for the admin socket) is owned by uid ${stat.uid}, not by this process (uid ${uid}) or root: another user could replace the socket`);
  if ((stat.mode & GROUP_OR_WORLD_WRITABLE) !== 0 && (stat.mode & STICKY_BIT) === 0) {
    throw new AdminSocketError(`${directory} (for the admin socket) is writable by group or others without the sticky bit (mode ${(stat.mode & 0o7777).toString(8)}): another user could replace the socket`);
  }
}

export class AdminServer {
  private server: Server | undefined;
  private readonly connections = new Set<Socket>();
  /** The directory we made for the socket, removed again on close; undefined when it existed. */
  private createdDirectory: string | undefined;
  private readonly maxConnections: number;
  private readonly maxInFlight: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly path: string, private readonly handler: AdminHandler, limits: AdminServerLimits = {}) {
    this.maxConnections = limits.maxConnections ?? ADMIN_MAX_CONNECTIONS;
    this.maxInFlight = limits.maxInFlightPerConnection ?? ADMIN_MAX_IN_FLIGHT_PER_CONNECTION;
    this.idleTimeoutMs = limits.idleTimeoutMs ?? ADMIN_IDLE_TIMEOUT_MS;
  }

  async listen(): Promise<void> {
    const directory = dirname(this.path);
    // mkdirSync returns the first directory it created, undefined when the path existed.
    const created = mkdirSync(directory, { recursive: true, mode: 0o700 });
    if (created !== undefined) {
      chmodSync(directory, 0o700); // ours: exactly 0700 whatever the umask
      this.createdDirectory = directory;
    } else {
      checkSocketDirectory(directory);
    }
    this.removeStaleSocket();
    const server = createServer((socket) => this.serve(socket));
    // Bind with umask 0177, so the socket is never reachable by others, not even between bind and chmod.
    const previousUmask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.path, () => resolve());
      });
    } finally {
      process.umask(previousUmask);
    }
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
    this.removeStaleSocket();
    if (this.createdDirectory) {
      try {
        rmdirSync(this.createdDirectory); // only if empty
      } catch {
        // Something else was put there: not ours to remove.
      }
      this.createdDirectory = undefined;
    }
  }

  /** A socket left by a killed daemon is removed; anything else at the path is refused, not deleted. */
  private removeStaleSocket(): void {
    let stat;
    try {
      stat = lstatSync(this.path);
    } catch {
      return;
    }
    if (!stat.isSocket()) throw new AdminSocketError(`${this.path} exists and is not a socket: not removed`);
    unlinkSync(this.path);
  }

  private serve(socket: Socket): void {
    if (this.connections.size >= this.maxConnections) {
      socket.on('error', () => socket.destroy());
      socket.end(`${JSON.stringify({ ok: false, error: { code: 'ERR_BUSY', message: `more than ${this.maxConnections} admin connections` } })}\n`);
      return;
    }
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    let buffered = '';
    let inFlight = 0;
    const reply = (response: AdminResponse): void => {
      if (!socket.destroyed) socket.write(`${JSON.stringify(response, bigintReplacer)}\n`);
    };
    socket.setEncoding('utf8');
    socket.setTimeout(this.idleTimeoutMs);
    socket.on('timeout', () => {
      if (inFlight === 0) socket.destroy();
    });
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const request = parseRequest(line);
        if ('error' in request) {
          reply(request);
          continue;
        }
        if (inFlight >= this.maxInFlight) {
          reply(withId({ ok: false, error: { code: 'ERR_BUSY', message: `more than ${this.maxInFlight} requests in flight on this connection` } }, request.id));
          continue;
        }
        inFlight++;
        void this.answer(request).then((response) => {
          inFlight--;
          reply(response);
        });
      }
      if (buffered.length > MAX_REQUEST_BYTES) {
        socket.end(`${JSON.stringify({ ok: false, error: { code: 'ERR_TOO_LARGE', message: 'request too large' } })}\n`);
        buffered = '';
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private async answer(request: AdminRequest): Promise<AdminResponse> {
    try {
      return withId({ ok: true, result: await this.handler(request) }, request.id);
    } catch (err) {
      if (err instanceof XnetmonError) return withId({ ok: false, error: { code: err.code, message: err.message, ...(err instanceof ValidationError ? { path: err.path } : {}) } }, request.id);
      return withId({ ok: false, error: { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } }, request.id);
    }
  }
}

function isRequestId(value: unknown): value is AdminRequestId {
  return (typeof value === 'string' && value.length <= 128) || (typeof value === 'number' && Number.isFinite(value));
}

function withId(response: AdminResponse, id: AdminRequestId | undefined): AdminResponse {
  return id === undefined ? response : { ...response, id };
}

/** A request line, or the response refusing it (with its id when one could be read). */
function parseRequest(line: string): AdminRequest | (AdminResponse & { ok: false }) {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    value = undefined;
  }
  const object = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  const id = isRequestId(object?.id) ? object.id : undefined;
  if (!object || typeof object.cmd !== 'string' || (object.id !== undefined && id === undefined)) {
    return withId({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'request is not a JSON object with a "cmd" string (and an optional "id", a string or a number)' } }, id) as AdminResponse & { ok: false };
  }
  return object as unknown as AdminRequest;
}

export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** An error the daemon answered with, re-raised in the CLI with its code and path. */
export class AdminError extends XnetmonError {
  constructor(code: string, message: string, readonly path?: string) {
    super(code, message);
  }
}

/** The daemon's reply could not be understood (not JSON, no `ok`, another request's id). */
export class AdminReplyError extends XnetmonError {
  constructor(message: string) {
    super('ERR_ADMIN_REPLY', message);
  }
}

let nextRequestId = 1;

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
  if (typeof value !== 'object' || value === null || typeof (value as { ok?: unknown }).ok !== 'boolean') {
    throw new AdminReplyError(`the daemon's reply has no "ok" field: ${JSON.stringify(line.slice(0, 80))}`);
  }
  const reply = value as Record<string, unknown>;
  if (reply.id !== undefined && reply.id !== expectedId) throw new AdminReplyError(`the daemon's reply is for request ${JSON.stringify(reply.id)}, not ${JSON.stringify(expectedId)}`);
  if (reply.ok === false) {
    const error = reply.error as Record<string, unknown> | undefined;
    if (typeof error?.code !== 'string' || typeof error.message !== 'string') throw new AdminReplyError('the daemon refused the request without an error code and message');
  }
  return reply as unknown as AdminResponse;
}

/** One request to the daemon; resolves with its result or rejects with an XnetmonError (never throws out of a socket handler). */
export function adminRequest(path: string, request: AdminRequest, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const id = request.id ?? nextRequestId++;
    const socket = createConnection(path);
    let buffered = '';
    let settled = false;
    const settle = (error: Error | null, result?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(result);
    };
    const timer = setTimeout(() => settle(new XnetmonError('ERR_TIMEOUT', `no answer from the daemon on ${path} within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ ...request, id })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_REQUEST_BYTES * 64) settle(new AdminReplyError('the daemon\'s reply has no end of line'));
        return;
      }
      try {
        const response = parseAdminReply(buffered.slice(0, newline), id);
        if (response.ok) settle(null, response.result);
        else settle(new AdminError(response.error.code, response.error.message, response.error.path));
      } catch (error) {
        settle(error as Error);
      }
    });
    socket.on('end', () => settle(new AdminReplyError(`the daemon closed the connection on ${path} without a reply`)));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the daemon running? (xnetmon up)' : err.code === 'EACCES' ? 'permission denied: the admin socket is root\'s' : err.message;
      settle(new XnetmonError('ERR_ADMIN_SOCKET', `cannot reach the daemon at ${path}: ${why}`));
    });
  });
}
