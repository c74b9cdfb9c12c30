// The daemon's signals from its first moment: a SIGHUP or SIGTERM during a long start-up is
// held, not fatal; once up, the held reload runs and a held stop stops it cleanly (exit 0).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { SignalLatch, runDaemon, type DaemonSignal, type RunningDaemon } from '../../src/cli/signals.js';

class FakeDaemon implements RunningDaemon {
  reloads = 0;
  stops = 0;
  async reload(): Promise<unknown> {
    this.reloads++;
    return {};
  }
  async stop(): Promise<void> {
    this.stops++;
  }
}

function setup() {
  const target = new EventEmitter();
  const latch = new SignalLatch(target as unknown as { on(signal: DaemonSignal, listener: () => void): unknown });
  const daemon = new FakeDaemon();
  let finishStart!: () => void;
  const started = new Promise<void>((resolve) => {
    finishStart = resolve;
  });
  const exits: number[] = [];
  const lines: string[] = [];
  const log = { info: (_: object, m: string) => lines.push(m), error: (_: object, m: string) => lines.push(m) };
  const run = runDaemon(
    latch,
    async () => {
      await started;
      return daemon;
    },
    log,
    (code) => exits.push(code),
  );
  const send = (s: DaemonSignal) => target.emit(s);
  const tick = () => new Promise((r) => setImmediate(r));
  return { daemon, finishStart, run, exits, lines, send, tick, latch, target };
}

describe('daemon signals', () => {
  it('the latch holds signals that arrive before anyone handles them, and hands them over in order', () => {
    const target = new EventEmitter();
    const latch = new SignalLatch(target as never);
    target.emit('SIGHUP');
    target.emit('SIGTERM');
    const seen: string[] = [];
    latch.take((s) => seen.push(s));
    target.emit('SIGINT');
    assert.deepEqual(seen, ['SIGHUP', 'SIGTERM', 'SIGINT']);
    assert.equal(target.listenerCount('SIGHUP'), 1, "a handler is installed: Node's default (exit) never runs");
  });

  it('a SIGHUP during start-up does not stop it; the file is reloaded once the daemon is up', async () => {
    const t = setup();
    t.send('SIGHUP');
    t.send('SIGHUP');
    await t.tick();
    assert.equal(t.daemon.reloads, 0, 'nothing to reload yet');
    t.finishStart();
    await t.run;
    await t.tick();
    assert.equal(t.daemon.reloads, 1, 'one reload for the signals held');
    assert.deepEqual(t.exits, []);
    t.send('SIGHUP');
    await t.tick();
    assert.equal(t.daemon.reloads, 2, 'afterwards, each SIGHUP reloads');
  });

  it('a SIGTERM during start-up stops the daemon cleanly as soon as it is up (exit 0), once', async () => {
    const t = setup();
    t.send('SIGTERM');
    t.send('SIGINT');
    t.send('SIGHUP');
    t.finishStart();
    await t.run;
    await t.tick();
    assert.equal(t.daemon.stops, 1);
    assert.equal(t.daemon.reloads, 0, 'no reload once stopping');
    assert.deepEqual(t.exits, [0]);
  });

  it('after start-up, SIGTERM stops with exit 0', async () => {
    const t = setup();
    t.finishStart();
    await t.run;
    t.send('SIGTERM');
    await t.tick();
    assert.equal(t.daemon.stops, 1);
    assert.deepEqual(t.exits, [0]);
  });
});
