// The admin socket: its directory (ours at 0700, or someone else's left alone but
// checked), request ids, caps on connections, requests in flight and idle time,
// and a CLI that turns a malformed reply into one typed error.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AdminServer, adminRequest, checkSocketDirectory, type AdminResponse } from '../../src/admin/index.js';

const scratch = mkdtempSync(join(tmpdir(), 'xnetmon-admin-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => join(scratch, `d${++counter}`);
const modeOf = (path: string): number => statSync(path).mode & 0o7777;

/** A line-oriented client: send lines, read response lines. */
class LineClient {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiters: ((line: string | null) => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      for (let newline = this.buffered.indexOf('\n'); newline >= 0; newline = this.buffered.indexOf('\n')) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        const waiter = this.waiters.shift();
        if (waiter) waiter(line);
        else this.lines.push(line);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const waiter of this.waiters.splice(0)) waiter(null);
    });
  }

  static open(path: string): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(path, () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  send(value: unknown): void {
    this.socket.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);
  }

  next(): Promise<AdminResponse | null> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line) as AdminResponse);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) =>
      this.waiters.push((l) => resolve(l === null ? null : (JSON.parse(l) as AdminResponse))),
    );
  }
}

describe('admin socket directory', () => {
  it('creates its own directory with mode 0700 and removes it on close', async () => {
    const dir = freshDir();
    const server = new AdminServer(join(dir, 'admin.sock'), () => 'pong');
    await server.listen();
    assert.equal(modeOf(dir), 0o700);
    assert.equal(modeOf(join(dir, 'admin.sock')) & 0o777, 0o600);
    await server.close();
    assert.equal(existsSync(dir), false);
  });

  it('leaves the mode of a sticky, world-writable directory it did not create (like /tmp) alone', async () => {
    const dir = freshDir();
    mkdirSync(dir); // made here, not by the server
    chmodSync(dir, 0o1777);
    const server = new AdminServer(join(dir, 'admin.sock'), () => 'pong');
    await server.listen();
    assert.equal(modeOf(dir), 0o1777, 'the daemon changed a directory it did not create');
    await server.close();
    assert.equal(existsSync(dir), true, 'the daemon removed a directory it did not create');
  });

  it('refuses a group/world-writable directory without the sticky bit, and leaves it unchanged', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const server = new AdminServer(join(dir, 'admin.sock'), () => 'pong');
    await assert.rejects(server.listen(), {
      code: 'ERR_ADMIN_SOCKET_DIR',
      message: /writable by group or others without the sticky bit/,
    });
    assert.equal(modeOf(dir), 0o777);
    assert.equal(existsSync(join(dir, 'admin.sock')), false);
  });

  it('refuses a directory owned by another user', async () => {
    const dir = freshDir();
    mkdirSync(dir, { mode: 0o755 });
    const uid = process.getuid?.() ?? 0;
    if (uid === 0) {
      chownSync(dir, 65534, 65534);
      const server = new AdminServer(join(dir, 'admin.sock'), () => 'pong');
      await assert.rejects(server.listen(), { code: 'ERR_ADMIN_SOCKET_DIR', message: /owned by uid 65534/ });
    } else {
      // Not root (make test-unit needs no root): the directory is ours, checked as if another user ran the daemon.
      const refusal = { code: 'ERR_ADMIN_SOCKET_DIR', message: new RegExp(`owned by uid ${uid}`) };
      assert.throws(() => checkSocketDirectory(dir, uid + 1), refusal);
    }
  });

  it('does not delete something that is not a socket at the socket path', async () => {
    const dir = freshDir();
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'admin.sock'), 'precious');
    await assert.rejects(new AdminServer(join(dir, 'admin.sock'), () => 'pong').listen(), {
      code: 'ERR_ADMIN_SOCKET_DIR',
    });
    assert.equal(existsSync(join(dir, 'admin.sock')), true);
  });
});

describe('admin requests', { timeout: 10_000 }, () => {
  it('echoes the request id; a malformed request gets ERR_BAD_REQUEST', async () => {
    const path = join(freshDir(), 'admin.sock');
    const server = new AdminServer(path, (request) => ({ cmd: request.cmd }));
    await server.listen();
    try {
      const client = await LineClient.open(path);
      client.send({ cmd: 'status', id: 'abc' });
      assert.deepEqual(await client.next(), { ok: true, result: { cmd: 'status' }, id: 'abc' });
      client.send({ cmd: 'status', id: 7 });
      assert.equal((await client.next())?.id, 7);
      client.send({ cmd: 'status' });
      assert.equal((await client.next())?.id, undefined);
      client.send('not json');
      const bad = await client.next();
      assert.equal(bad?.ok, false);
      assert.equal(bad?.ok === false && bad.error.code, 'ERR_BAD_REQUEST');
      client.send({ cmd: 'status', id: { nested: true } });
      assert.equal((await client.next())?.ok, false);
      client.socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('more than 4 requests in flight on one connection: the extra ones get ERR_BUSY with their id', async () => {
    const path = join(freshDir(), 'admin.sock');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = new AdminServer(path, async (request) => {
      await gate;
      return request.id;
    });
    await server.listen();
    try {
      const client = await LineClient.open(path);
      for (let id = 1; id <= 6; id++) client.send({ cmd: 'slow', id });
      const busy = [await client.next(), await client.next()];
      assert.deepEqual(
        busy.map((r) => r?.ok === false && [r.error.code, r.id]),
        [
          ['ERR_BUSY', 5],
          ['ERR_BUSY', 6],
        ],
      );
      release();
      const answered = [await client.next(), await client.next(), await client.next(), await client.next()];
      assert.deepEqual(answered.map((r) => r?.id).sort(), [1, 2, 3, 4]);
      client.socket.destroy();
    } finally {
      await server.close();
    }
  });

  it('connections beyond the cap get ERR_BUSY and are closed; idle connections are closed', async () => {
    const path = join(freshDir(), 'admin.sock');
    const server = new AdminServer(path, () => 'pong', { maxConnections: 2, idleTimeoutMs: 150 });
    await server.listen();
    try {
      const first = await LineClient.open(path);
      const second = await LineClient.open(path);
      const third = await LineClient.open(path);
      const refused = await third.next();
      assert.equal(refused?.ok === false && refused.error.code, 'ERR_BUSY');
      assert.equal(await third.next(), null);
      first.send({ cmd: 'ping', id: 1 });
      assert.equal((await first.next())?.ok, true);
      // Nothing more: both are closed once idle.
      assert.equal(await first.next(), null);
      assert.equal(await second.next(), null);
      // A slot is free again.
      const fourth = await LineClient.open(path);
      fourth.send({ cmd: 'ping', id: 2 });
      assert.equal((await fourth.next())?.ok, true);
      fourth.socket.destroy();
    } finally {
      await server.close();
    }
  });
});

describe('adminRequest (the CLI side)', { timeout: 10_000 }, () => {
  /** A fake daemon that answers every request with `reply(requestLine)`. */
  async function fakeDaemon(
    reply: (line: string) => string | null,
  ): Promise<{ path: string; close: () => Promise<void> }> {
    const dir = freshDir();
    mkdirSync(dir, { mode: 0o700 });
    const path = join(dir, 'fake.sock');
    const server = createServer((socket) => {
      socket.setEncoding('utf8');
      socket.on('error', () => undefined);
      socket.once('data', (line: string) => {
        const answer = reply(line.trim());
        if (answer === null) socket.end();
        else socket.write(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(path, () => resolve()));
    return { path, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  for (const [what, reply] of [
    ['not JSON', () => 'Segmentation fault\n'],
    ['no ok field', () => '{"result": 1}\n'],
    ["another request's id", () => '{"ok": true, "result": 1, "id": "someone-else"}\n'],
    ['ok false without an error', () => '{"ok": false}\n'],
    ['no reply at all', () => null],
  ] as const) {
    it(`a reply with ${what} is one ERR_ADMIN_REPLY error, not a crash`, async () => {
      const daemon = await fakeDaemon(reply);
      try {
        await assert.rejects(
          adminRequest(daemon.path, { cmd: 'status' }, 2_000),
          (error: Error & { code?: string }) => {
            assert.equal(error.code, 'ERR_ADMIN_REPLY');
            assert.doesNotMatch(error.message, /\n/);
            return true;
          },
        );
      } finally {
        await daemon.close();
      }
    });
  }

  it('sends an id and takes the reply that echoes it; errors keep their code', async () => {
    const path = join(freshDir(), 'admin.sock');
    const server = new AdminServer(path, (request) => {
      if (request.cmd === 'fail') throw new Error('nope');
      return { got: request.cmd, id: request.id };
    });
    await server.listen();
    try {
      const result = (await adminRequest(path, { cmd: 'status' })) as { got: string; id: unknown };
      assert.equal(result.got, 'status');
      assert.ok(typeof result.id === 'number', 'the CLI sends an id');
      await assert.rejects(adminRequest(path, { cmd: 'fail' }), { code: 'ERR_INTERNAL', message: 'nope' });
    } finally {
      await server.close();
    }
  });
});
