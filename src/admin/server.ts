// The admin server: a Unix socket owned by root, mode 0600 in a 0700 directory (so other users
// cannot even reach it), serving the admin protocol (protocol.ts) to one handler. No TCP admin port.
import { chmodSync, lstatSync, mkdirSync, rmdirSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { XnetmonError, ValidationError } from '../errors/index.js';
import {
  ADMIN_IDLE_TIMEOUT_MS,
  ADMIN_MAX_CONNECTIONS,
  ADMIN_MAX_IN_FLIGHT_PER_CONNECTION,
  MAX_REQUEST_BYTES,
  bigintReplacer,
  parseRequest,
  withId,
  type AdminRequest,
  type AdminResponse,
} from './protocol.js';

export type AdminHandler = (request: AdminRequest) => Promise<unknown> | unknown;

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
  if (stat.uid !== uid && stat.uid !== 0) {
    throw new AdminSocketError(
      `${directory} (for the admin socket) is owned by uid ${stat.uid}, not by this process (uid ${uid}) ` +
        'or root: another user could replace the socket',
    );
  }
  if ((stat.mode & GROUP_OR_WORLD_WRITABLE) !== 0 && (stat.mode & STICKY_BIT) === 0) {
    throw new AdminSocketError(
      `${directory} (for the admin socket) is writable by group or others without the sticky bit ` +
        `(mode ${(stat.mode & 0o7777).toString(8)}): another user could replace the socket`,
    );
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

  constructor(
    private readonly path: string,
    private readonly handler: AdminHandler,
    limits: AdminServerLimits = {},
  ) {
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
    let stat: Stats;
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
      const busy: AdminResponse = {
        ok: false,
        error: { code: 'ERR_BUSY', message: `more than ${this.maxConnections} admin connections` },
      };
      socket.end(`${JSON.stringify(busy)}\n`);
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
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const request = parseRequest(line);
        if ('error' in request) {
          reply(request);
          continue;
        }
        if (inFlight >= this.maxInFlight) {
          const message = `more than ${this.maxInFlight} requests in flight on this connection`;
          reply(withId({ ok: false, error: { code: 'ERR_BUSY', message } }, request.id));
          continue;
        }
        inFlight++;
        void this.answer(request).then((response) => {
          inFlight--;
          reply(response);
        });
      }
      if (buffered.length > MAX_REQUEST_BYTES) {
        socket.end(
          `${JSON.stringify({ ok: false, error: { code: 'ERR_TOO_LARGE', message: 'request too large' } })}\n`,
        );
        buffered = '';
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private async answer(request: AdminRequest): Promise<AdminResponse> {
    try {
      return withId({ ok: true, result: await this.handler(request) }, request.id);
    } catch (err) {
      if (err instanceof XnetmonError) {
        const path = err instanceof ValidationError ? { path: err.path } : {};
        return withId({ ok: false, error: { code: err.code, message: err.message, ...path } }, request.id);
      }
      return withId(
        { ok: false, error: { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } },
        request.id,
      );
    }
  }
}
