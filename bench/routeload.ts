// Loading a full IPv4 table (1,000,000 prefixes) into one network's LPM trie from
// TypeScript, with batch updates: the time from columns in memory to routes in
// the kernel, and the same table through the one-syscall-per-route path for the
// side-by-side ratio. Then reading it back as the manager does when it adopts the
// installed routes at start-up (and as `xnetmon routes` does): batch lookups beside
// get_next_key and a lookup per route, in the same run.
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
  /** Reading the installed table back (DataPlane.listRoutes, what adoption at start-up reads). */
  adoption_read_routes: number;
  adoption_read_seconds_batch: number;
  adoption_read_seconds_per_key: number;
  adoption_read_speedup: number;
  /** The kernel's part of the same reads: the raw map read without decoding the routes. */
  adoption_kernel_read_seconds_batch: number;
  adoption_kernel_read_seconds_per_key: number;
  /** How the kernel let the batch read go: 'batch', or 'per-key' where it refuses batch lookups of LPM tries. */
  adoption_read_mode: string;
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
    const specs = Array.from({ length: single }, (_, i) => ({
      prefix: `12.${(i >> 8) & 255}.${i & 255}.0/24`,
      target: { kind: 'nexthop' as const, nexthopId: fx.nexthopBlue },
    }));
    for (let i = 0; i < single; i += 1) dp.addRoutes(1, [specs[i]]);
    const singleSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    // Adoption: the whole table read back, per key (the way before batch lookups), then in batches.
    const read = (lookup: 'batch' | 'per-key'): { seconds: number; count: number } => {
      const t = process.hrtime.bigint();
      const count = dp.listRoutes(1, { lookup }).length;
      return { seconds: Number(process.hrtime.bigint() - t) / 1e9, count };
    };
    const perKey = read('per-key');
    const batch = read('batch');
    const raw = (lookup: 'batch' | 'per-key'): number => {
      const t = process.hrtime.bigint();
      dp.object.map('xnm_routes4').lookupAll(65536, lookup);
      return Number(process.hrtime.bigint() - t) / 1e9;
    };
    const rawPerKey = raw('per-key');
    const rawBatch = raw('batch');
    return {
      routes,
      seconds: round(seconds, 3),
      routes_per_second: Math.round(routes / seconds),
      single_update_seconds_for_100k: round(singleSeconds, 3),
      batch_speedup: round(singleSeconds / single / (seconds / routes), 1),
      adoption_read_routes: batch.count,
      adoption_read_seconds_batch: round(batch.seconds, 3),
      adoption_read_seconds_per_key: round(perKey.seconds, 3),
      adoption_read_speedup: round(perKey.seconds / batch.seconds, 1),
      adoption_kernel_read_seconds_batch: round(rawBatch, 3),
      adoption_kernel_read_seconds_per_key: round(rawPerKey, 3),
      adoption_read_mode: dp.routeLookupModes().routes4 ?? 'unknown',
    };
  } finally {
    dp.close();
    scratch.cleanup();
  }
}
