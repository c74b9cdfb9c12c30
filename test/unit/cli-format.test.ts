// `xnetmon status` and `top` (one formatter): a share above the configured R is marked and
// explained, and the traffic of no network has its line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, OVER_R_NOTE } from '../../src/cli/format.js';
import type { StatusView } from '../../src/admin/index.js';

const status = (carried: number, noNetwork: Record<string, number> = {}): StatusView => ({
  uptimeS: 5, law: 'share', periodMs: 100, control: true, lastPeriod: { period: 3, durationMs: 0.5 }, noNetwork,
  drift: { networks: [], entries: 0 }, attachments: [], controllerFailures: {},
  networks: [{
    id: 1, name: 'red', weight: 500, reserve: { cpu: 0.2, fib: 0, links: {} }, quotas: null,
    routes: 2, forwarded: 10, toRouter: 1, drops: { drop_cpu: 4 },
    resources: [{ resource: 'cpu', capacity: 1000, reserved: 200, offered: 1500, carried, target: 200, dropProbability: 0.3 }],
  }],
});

test('a use above the configured R is marked >R and explained', () => {
  const text = formatStatus(status(1140));
  assert.match(text, /red\s+cpu\s+114\.0% >R\s+20\.0%/);
  assert.ok(text.includes(OVER_R_NOTE));
});

test('within R: no mark, no note', () => {
  const text = formatStatus(status(900));
  assert.match(text, /red\s+cpu\s+90\.0%\s+20\.0%/);
  assert.doesNotMatch(text, />R/);
});

test('traffic of no network has its line, by reason', () => {
  assert.match(formatStatus(status(900, { pass_host: 12, drop_malformed: 3 })), /^\(no network\)\s+pass_host=12 drop_malformed=3$/m);
  assert.doesNotMatch(formatStatus(status(900)), /no network/);
});
