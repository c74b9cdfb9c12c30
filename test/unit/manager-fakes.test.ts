// The manager's test doubles (test/support/manager-fakes.ts) keep the real data plane's rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeDataPlane, twoNetworkConfig } from '../support/manager-fakes.js';

test('the fake data plane validates a whole call before writing', () => {
  const dp = new FakeDataPlane();
  // The second route names a next hop that does not exist: the first is not written either.
  assert.throws(() =>
    dp.addRoutes(1, [
      { prefix: '10.0.0.0/8', target: { kind: 'via-vm' } },
      { prefix: '10.1.0.0/16', target: { kind: 'nexthop', nexthopId: 99 } },
    ]),
  );
  assert.deepEqual(dp.view(1), {});
  assert.equal(twoNetworkConfig().networks.length, 2);
});
