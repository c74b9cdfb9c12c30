// The admin client (the CLI's side): one request per connection, its reply checked against the
// request id, and typed calls for the commands whose answers the CLI formats (views.ts).
import { createConnection } from 'node:net';
import { XnetmonError } from '../errors/index.js';
import { z, type ZodType } from 'zod';
import { AdminError, AdminReplyError, MAX_REQUEST_BYTES, parseAdminReply, type AdminRequest } from './protocol.js';
import {
  clientsViewSchema,
  driftViewSchema,
  networkSummarySchema,
  routesViewSchema,
  statusViewSchema,
  type ClientsView,
  type DriftView,
  type NetworkSummary,
  type RoutesView,
  type StatusView,
} from './views.js';

let nextRequestId = 1;

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
    const timer = setTimeout(() => {
      settle(new XnetmonError('ERR_TIMEOUT', `no answer from the daemon on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ ...request, id })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const newline = buffered.indexOf('\n');
      if (newline < 0) {
        if (buffered.length > MAX_REQUEST_BYTES * 64)
          settle(new AdminReplyError("the daemon's reply has no end of line"));
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
      const why =
        err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
          ? 'is the daemon running? (xnetmon up)'
          : err.code === 'EACCES'
            ? "permission denied: the admin socket is root's"
            : err.message;
      settle(new XnetmonError('ERR_ADMIN_SOCKET', `cannot reach the daemon at ${path}: ${why}`));
    });
  });
}

/** Checks a reply against the command's view; a reply of another shape (a daemon of another version) is an AdminReplyError. */
function checked<T>(schema: ZodType<T>, cmd: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new AdminReplyError(
    `the daemon's answer to ${cmd} is not what this CLI reads${where}: ${issue?.message ?? 'unknown shape'}`,
  );
}

export const parseStatusView = (value: unknown): StatusView => checked(statusViewSchema, 'status', value);
export const parseNetworkSummaries = (value: unknown): NetworkSummary[] =>
  checked(z.array(networkSummarySchema), 'net.list', value);
export const parseRoutesView = (value: unknown): RoutesView => checked(routesViewSchema, 'routes', value);
export const parseClientsView = (value: unknown): ClientsView => checked(clientsViewSchema, 'clients', value);
export const parseDriftView = (value: unknown): DriftView => checked(driftViewSchema, 'check', value);

/** The daemon's admin socket, with typed calls for the views the CLI formats. */
export class AdminClient {
  constructor(
    readonly path: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Any command; its result as JSON gave it. */
  request(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    return adminRequest(this.path, args ? { cmd, args } : { cmd }, this.timeoutMs);
  }

  async status(): Promise<StatusView> {
    return parseStatusView(await this.request('status'));
  }

  async routes(network: string, prefix?: string): Promise<RoutesView> {
    return parseRoutesView(
      await this.request('routes', prefix === undefined ? { name: network } : { name: network, prefix }),
    );
  }

  async clients(): Promise<ClientsView> {
    return parseClientsView(await this.request('clients'));
  }

  async check(): Promise<DriftView> {
    return parseDriftView(await this.request('check'));
  }
}
