// The flow cache rests per CPU when its hit rate is low (bpf/xnetmon.h: XNM_FLOW_WINDOW,
// XNM_FLOW_MIN_HITS, XNM_FLOW_REST): a wide traffic mix stops paying for probes and fills
// that save nothing, one flow keeps its hits, and forwarding is the same either way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane } from '../../src/dataplane/index.js';
import { runXdp, XdpAction, FLOW_WINDOW, FLOW_REST, flowCacheStateLayout } from '../../src/loader/index.js';
import { buildFrame, parseFrame } from '../../src/packet/index.js';
import { Scratch } from '../support/host.js';
import { fastpathFixture, MAC, TABLE1_COSTS, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xfc');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
  dp.configure({
    accounting: true,
    punish: true,
    filter: true,
    flowCache: true,
    pathCost: TABLE1_COSTS,
    costPerKib: 1,
  });
  dp.addRoutes(1, [{ prefix: '10.70.0.0/16', target: { kind: 'nexthop', nexthopId: fx.nexthopLoop } }]);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

const perCpu = () => {
  const map = dp.object.map('xnm_flow_cache_state');
  const value = map.lookup(Buffer.alloc(4));
  assert.ok(value);
  return map.perCpuSlices(value).map((b) => flowCacheStateLayout.decode(b) as Record<string, number>);
};
/** Any change of a route bumps the generation, which empties the cache and restarts its windows. */
const newGeneration = () =>
  dp.addRoutes(1, [{ prefix: '10.70.0.0/16', target: { kind: 'nexthop', nexthopId: fx.nexthopLoop } }]);
const frameTo = (dst: string) =>
  buildFrame({ dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst, ttl: 255, udp: { sport: 1, dport: 2 }, payload: 18 } });

test('a window of misses rests the cache on its CPU, and forwarding goes on the same', () => {
  newGeneration(); // every window starts afresh
  assert.ok(perCpu().every((s) => s.rest === 0 && s.probes === 0));
  // Every packet a flow of its own: each probe misses. Enough that some CPU fills a window.
  for (let i = 0; i < FLOW_WINDOW * 4; i++) {
    const frame = frameTo(`10.70.${i >> 8}.${i & 255}`);
    const out = runXdp(dp.object.program('xnm_phys_in'), { data: frame, ingressIfindex: fx.phys });
    assert.equal(out.retval, XdpAction.REDIRECT);
    assert.equal(parseFrame(out.data).dst, MAC.blueP, "the route's next hop, cache or no cache");
  }
  const states = perCpu();
  const resting = states.some((s) => s.rests >= 1 && s.rest > 0 && s.rest <= FLOW_REST);
  assert.ok(resting, `a CPU rests: ${JSON.stringify(states)}`);
  newGeneration();
  assert.ok(
    perCpu().every((s) => s.rest === 0),
    'a new generation ends the rest',
  );
});

test('one flow hits: its CPU never rests', () => {
  newGeneration();
  // One call, one CPU: the program reruns on its own output, which the loop next hop addresses to blue again.
  const prog = dp.object.program('xnm_phys_in');
  const out = runXdp(prog, { data: frameTo('10.70.9.9'), ingressIfindex: fx.phys, repeat: FLOW_WINDOW * 2 + 16 });
  assert.equal(out.retval, XdpAction.REDIRECT);
  const states = perCpu();
  assert.ok(
    states.every((s) => s.rests === 0 && s.rest === 0),
    JSON.stringify(states),
  );
  assert.ok(
    states.some((s) => s.hits > 0),
    'hits were counted',
  );
});
