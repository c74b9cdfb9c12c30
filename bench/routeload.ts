// Loading a full IPv4 table (1,000,000 prefixes) into one network's LPM trie from
// TypeScript, with batch updates: the time from columns in memory to routes in
// the kernel, and the same table through the one-syscall-per-route path for the
// side-by-side ratio.
import { DataPlane } from '../src/dataplane/index.js';
import { Scratch, fastpathFixture } from '../src/lab/index.js';
import { fillRoutes } from './fastpath.js';
import { round } from './stats.js';

export interface RouteloadFigures {
  routes: number;
  seconds: number;
  routes_per_second: number;
  single_update_seconds_for_100k: number;
  batch_speedup: number;
}

export function benchRouteload(options: { routes?: number } = {}): RouteloadFigures {
  const routes = options.routes ?? 1_000_000;
  const scratch = new Scratch('xbr');
  const dp = DataPlane.open({ maxRoutes4: routes + 1024 });
  try {
    const fx = fastpathFixture(dp, scratch);
    const start = process.hrtime.bigint();
    fillRoutes(dp, 1, routes, fx.nexthopBlue);
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    // The naive path for comparison: one bpf_map_update_elem per route, 100k of them.
    const single = 100_000;
    const t0 = process.hrtime.bigint();
    const specs = Array.from({ length: single }, (_, i) => ({ prefix: `12.${(i >> 8) & 255}.${i & 255}.0/24`, target: { kind: 'nexthop' as const, nexthopId: fx.nexthopBlue } }));
    for (let i = 0; i < single; i += 1) dp.addRoutes(1, [specs[i]]);
    const singleSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return {
      routes, seconds: round(seconds, 3), routes_per_second: Math.round(routes / seconds),
      single_update_seconds_for_100k: round(singleSeconds, 3),
      batch_speedup: round((singleSeconds / single) / (seconds / routes), 1),
    };
  } finally {
    dp.close();
    scratch.cleanup();
  }
}
