// The admin API: a Unix socket owned by root, mode 0600 in a 0700 directory (so
// other users cannot even reach it), carrying one JSON request per line and one
// JSON response per line. No TCP admin port.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { XnetmonError, ValidationError } from '../errors/index.js';

export interface AdminRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

export type AdminResponse =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; path?: string } };

export type AdminHandler = (request: AdminRequest) => Promise<unknown> | unknown;

const MAX_REQUEST_BYTES = 1 << 20;

export class AdminServer {
  private server: Server | undefined;

  constructor(private readonly path: string, private readonly handler: AdminHandler) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    chmodSync(dirname(this.path), 0o700);
    if (existsSync(this.path)) unlinkSync(this.path); // a stale socket of a killed daemon
    const server = createServer((socket) => this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
    this.server = server;
  }

  private serve(socket: Socket): void {
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_REQUEST_BYTES) {
        socket.end(`${JSON.stringify({ ok: false, error: { code: 'ERR_TOO_LARGE', message: 'request too large' } })}\n`);
        return;
      }
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        void this.answer(line).then((response) => socket.write(`${JSON.stringify(response, bigintReplacer)}\n`));
      }
    });
    socket.on('error', () => socket.destroy());
  }

  private async answer(line: string): Promise<AdminResponse> {
    let request: AdminRequest;
    try {
      request = JSON.parse(line) as AdminRequest;
      if (typeof request.cmd !== 'string') throw new Error('no cmd');
    } catch {
      return { ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'request is not a JSON object with a "cmd" string' } };
    }
    try {
      return { ok: true, result: await this.handler(request) };
    } catch (err) {
      if (err instanceof XnetmonError) return { ok: false, error: { code: err.code, message: err.message, ...(err instanceof ValidationError ? { path: err.path } : {}) } };
      return { ok: false, error: { code: 'ERR_INTERNAL', message: err instanceof Error ? err.message : String(err) } };
    }
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (existsSync(this.path)) unlinkSync(this.path);
  }
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

/** One request to the daemon; resolves with its result or rejects with its error. */
export function adminRequest(path: string, request: AdminRequest, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new XnetmonError('ERR_TIMEOUT', `no answer from the daemon on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      socket.end();
      const response = JSON.parse(buffered.slice(0, newline)) as AdminResponse;
      if (response.ok) resolve(response.result);
      else reject(new AdminError(response.error.code, response.error.message, response.error.path));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'is the daemon running? (xnetmon up)' : err.code === 'EACCES' ? 'permission denied: the admin socket is root\'s' : err.message;
      reject(new XnetmonError('ERR_ADMIN_SOCKET', `cannot reach the daemon at ${path}: ${why}`));
    });
  });
}
