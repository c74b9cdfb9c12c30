// The watcher's scheduling with a fake command runner: a burst of monitor events costs a few
// dumps, an event during a dump causes one more dump (so the last change is always seen), a
// monitor that dies is restarted with backoff, and an unreadable nft keeps the last filter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KernelWatcher, type CommandRunner, type KernelSnapshot } from '../../src/client/index.js';
import { LINKS, NEIGHBOURS, NFT_SUBSET, ROUTES4, ROUTES6 } from '../support/client-samples.js';
import { MemoryLogger } from '../support/manager-fakes.js';

class FakeKernel implements CommandRunner {
  routes4: object[] = [...(ROUTES4 as object[])];
  nftWorks = true;
  dumps = 0;
  dumpMs = 15;
  readonly monitors: { command: string; onLine: () => void; onExit: (error?: Error) => void; stopped: boolean }[] = [];

  async run(command: string, args: readonly string[]): Promise<string> {
    const what = `${command} ${args.join(' ')}`;
    if (what === 'ip -json -4 route show table all') this.dumps++;
    // Read the state when the command starts, answer when it ends: a change meanwhile is missed by this dump.
    const answer = {
      'ip -json link show': LINKS,
      'ip -json -4 route show table all': this.routes4,
      'ip -json -6 route show table all': ROUTES6,
      'ip -json neigh show': NEIGHBOURS,
      'nft -j list ruleset': NFT_SUBSET,
    }[what];
    const works = command !== 'nft' || this.nftWorks;
    const text = JSON.stringify(answer);
    await new Promise((resolve) => setTimeout(resolve, this.dumpMs));
    if (!works) throw new Error('nft: command not found');
    if (answer === undefined) throw new Error(`unexpected command ${what}`);
    return text;
  }

  watch(
    command: string,
    _args: readonly string[],
    onLine: () => void,
    onExit: (error?: Error) => void,
  ): { stop(): void } {
    const monitor = { command, onLine, onExit, stopped: false };
    this.monitors.push(monitor);
    return {
      stop: () => {
        monitor.stopped = true;
      },
    };
  }

  event(): void {
    for (const m of this.monitors) if (!m.stopped && m.command === 'ip') m.onLine();
  }

  addRoute(i: number): void {
    this.routes4 = [...this.routes4, { dst: `10.200.${i}.0/24`, gateway: '10.1.0.2', dev: 'eth0', flags: [] }];
  }
}

function start(kernel: FakeKernel, logger = new MemoryLogger()) {
  const snapshots: KernelSnapshot[] = [];
  const watcher = new KernelWatcher({
    tables: ['main', 'local'],
    interfaces: null,
    filter: true,
    coalesceMs: 10,
    pollIntervalMs: 60_000,
    commands: kernel,
    logger,
    monitorRestartMs: 5,
  });
  watcher.start((s) => snapshots.push(s));
  return { watcher, snapshots, logger, last: () => snapshots[snapshots.length - 1]! };
}

test('a burst of events costs a few dumps and the last state is seen', async () => {
  const kernel = new FakeKernel();
  const { watcher, last } = start(kernel);
  try {
    await watcher.settled();
    const before = kernel.dumps;
    for (let i = 0; i < 100; i++) {
      kernel.addRoute(i);
      kernel.event();
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await watcher.settled();
    assert.ok(kernel.dumps - before <= 6, `${kernel.dumps - before} dumps`);
    assert.equal([...last().routes.keys()].filter((p) => p.startsWith('10.200.')).length, 100);
  } finally {
    watcher.stop();
  }
});

test('a change during a dump is caught by the next dump', async () => {
  const kernel = new FakeKernel();
  kernel.dumpMs = 40;
  const { watcher, last } = start(kernel);
  try {
    await watcher.settled();
    kernel.event();
    await new Promise((resolve) => setTimeout(resolve, 20)); // the coalescing delay passed: a dump is running
    kernel.addRoute(7);
    kernel.event();
    await watcher.settled();
    assert.ok(last().routes.has('10.200.7.0/24'));
  } finally {
    watcher.stop();
  }
});

test('a monitor that ends is restarted, and a failing one is reported once', async () => {
  const kernel = new FakeKernel();
  const { watcher, logger } = start(kernel);
  try {
    await watcher.settled();
    for (let round = 0; round < 4; round++) {
      const live = kernel.monitors.filter((m) => m.command === 'ip' && !m.stopped);
      assert.equal(live.length, 1);
      live[0]!.stopped = true;
      live[0]!.onExit(new Error('ip monitor ended'));
      const count = kernel.monitors.length;
      while (kernel.monitors.length === count) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(
      logger.lines.filter((l) => l.level === 'warn' && l.message.startsWith('kernel monitor ended')).length,
      1,
    );
  } finally {
    watcher.stop();
  }
});

test('when nft cannot be read the last filter is kept', async () => {
  const kernel = new FakeKernel();
  const { watcher, last, logger } = start(kernel);
  try {
    await watcher.settled();
    assert.equal(last().filter!.length, 13);
    kernel.nftWorks = false;
    kernel.addRoute(1);
    kernel.event();
    await watcher.settled();
    assert.ok(last().routes.has('10.200.1.0/24'));
    assert.equal(last().filter!.length, 13);
    assert.ok(logger.lines.some((l) => l.message.includes('cannot read the nftables ruleset')));
  } finally {
    watcher.stop();
  }
});
