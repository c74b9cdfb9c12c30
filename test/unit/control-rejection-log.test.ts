// Refused connections are logged at a bounded rate: the first of each reason at
// once, the rest as one summary line per interval (fake clock, fake logger).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RejectionLog } from '../../src/control/rejection-log.js';
import type { RejectReason } from '../../src/crypto/index.js';

function harness() {
  let nowMs = 1_000_000;
  const lines: { obj: Record<string, unknown>; msg: string }[] = [];
  const log = new RejectionLog({
    logger: { warn: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }) },
    intervalMs: 10_000,
    now: () => nowMs,
  });
  const reject = (reason: RejectReason, remoteAddress: string): void =>
    log.record({ reason, remoteAddress, message: `refused ${remoteAddress}` });
  return { log, lines, reject, advance: (ms: number) => (nowMs += ms) };
}

describe('RejectionLog', () => {
  it('a flood from 20,000 sources writes one line per reason and one summary per interval', () => {
    const { log, lines, reject, advance } = harness();
    for (let i = 0; i < 20_000; i++)
      reject(i % 2 ? 'rate_limited' : 'mac1', `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(lines.length, 2, 'only the first rejection of each reason at once');
    assert.deepEqual(
      lines.map((l) => l.obj.reason),
      ['mac1', 'rate_limited'],
    );
    advance(10_000);
    log.flushIfDue();
    assert.equal(lines.length, 3);
    const summary = lines[2]!;
    assert.deepEqual(summary.obj.reasons, { mac1: 10_000, rate_limited: 10_000 });
    assert.equal(summary.obj.total, 20_000);
    assert.equal(summary.obj.sources, 20_000);
    assert.deepEqual(summary.obj.examples, ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
    assert.match(summary.msg, /rejected 20000 connections from 20000 sources in 10 s/);
    assert.ok(
      lines.every((l) => JSON.stringify(l).length < 400),
      'each line stays short',
    );
  });

  it('no summary before the interval is over, none for a quiet interval, and a new interval logs the first again', () => {
    const { log, lines, reject, advance } = harness();
    reject('decrypt', '192.0.2.1');
    reject('decrypt', '192.0.2.1');
    advance(9_999);
    log.flushIfDue();
    assert.equal(lines.length, 1);
    advance(1);
    reject('decrypt', '192.0.2.2'); // the interval is over: summary first, then this one at once
    assert.equal(lines.length, 3);
    assert.equal(lines[1]!.obj.total, 2);
    assert.equal(lines[1]!.obj.sources, 1);
    assert.equal(lines[2]!.obj.reason, 'decrypt');
    advance(10_000);
    log.flushIfDue();
    assert.equal(lines.length, 3, 'one rejection already logged at once needs no summary');
    advance(10_000);
    log.flushIfDue();
    assert.equal(lines.length, 3, 'a quiet interval writes nothing');
  });
});
