// Threaded NAPI's kthread time counts as packet work: NapiThreadClock sums the growth of every
// `napi/` thread's utime + stime, ignores other tasks, and never goes back when a thread exits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NapiThreadClock, USER_HZ } from '../../src/cpu/index.js';

function task(root: string, pid: number, comm: string, utime: number, stime: number): void {
  mkdirSync(join(root, String(pid)), { recursive: true });
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
  writeFileSync(
    join(root, String(pid), 'stat'),
    `${pid} (${comm}) S 2 0 0 0 -1 2129984 0 0 0 0 ${utime} ${stime} 0 0 20 0 1 0\n`,
  );
}

test('NapiThreadClock: only napi threads, only growth, monotonic when a thread exits', () => {
  const root = mkdtempSync(join(tmpdir(), 'napi-clock-'));
  try {
    const tick = 1e9 / USER_HZ;
    const clock = new NapiThreadClock();
    task(root, 10, 'napi/ext0-8193', 100, 50);
    task(root, 11, 'ksoftirqd/0', 500, 500);
    task(root, 12, 'kworker/0:1 (x)', 5, 5);
    assert.equal(clock.read(root), 0, 'the first sight of a thread is its baseline');
    task(root, 10, 'napi/ext0-8193', 130, 60);
    task(root, 11, 'ksoftirqd/0', 900, 900);
    assert.equal(clock.read(root), 40 * tick);
    rmSync(join(root, '10'), { recursive: true });
    task(root, 13, 'napi/vif1.0-8194', 7, 0);
    assert.equal(clock.read(root), 40 * tick, 'an exited thread takes nothing back; a new one starts at its baseline');
    task(root, 13, 'napi/vif1.0-8194', 9, 1);
    assert.equal(clock.read(root), 43 * tick);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
