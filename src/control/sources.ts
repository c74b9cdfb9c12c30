// The controller's counter sources and drop sinks: the real ones over the data
// plane's maps, and a fake plant for tests (the same interface, so one suite runs both).
import type { DataPlane } from '../dataplane/index.js';
import { FAIR_BUCKETS, MAX_LINKS } from '../loader/index.js';
import type { CounterSource, DropDecision, DropSink, NetworkUsage } from './controller.js';

export function dataPlaneSource(
  dp: DataPlane,
  routeCount: (netId: number) => number,
  routeDemand: (netId: number) => number = routeCount,
): CounterSource {
  return {
    read: (ids) => {
      const u = dp.readUsage(ids);
      const fair = dp.readFair(ids);
      return ids.map(
        (netId, i): NetworkUsage => ({
          fairHist: fair.hist.subarray(i * FAIR_BUCKETS, (i + 1) * FAIR_BUCKETS),
          netId,
          cpuOffered: u.cpuOffered[i],
          cpuCarried: u.cpuCarried[i],
          linkOffered: u.linkOffered.subarray(i * MAX_LINKS, (i + 1) * MAX_LINKS),
          linkCarried: u.linkCarried.subarray(i * MAX_LINKS, (i + 1) * MAX_LINKS),
        }),
      );
    },
    routeCounts: (ids) => ids.map(routeCount),
    routeDemand: (ids) => ids.map(routeDemand),
  };
}

export function dataPlaneSink(dp: DataPlane): DropSink {
  return {
    write: (decisions) => {
      if (decisions.length) dp.setDropsBatch(decisions);
    },
  };
}

/**
 * A fluid model of the host for tests: each period network i offers `offered(i)`
 * cost units (and link bytes on slot 0); the data plane drops with the last written
 * probabilities; the counters accumulate like the real ones.
 */
export class FakePlant implements CounterSource, DropSink {
  private readonly totals = new Map<number, NetworkUsage>();
  private readonly probabilities = new Map<number, DropDecision['drops']>();
  routes = new Map<number, number>();

  constructor(private readonly offered: (netId: number) => { cpu: number; link0?: number }) {}

  /** Advances the plant by one period. */
  tick(netIds: readonly number[]): void {
    for (const id of netIds) {
      const t = this.totals.get(id) ?? {
        netId: id,
        cpuOffered: 0,
        cpuCarried: 0,
        linkOffered: new Array(MAX_LINKS).fill(0),
        linkCarried: new Array(MAX_LINKS).fill(0),
      };
      const o = this.offered(id);
      const p = this.probabilities.get(id);
      const cpuPass = 1 - (p?.cpu ?? 0);
      const linkPass = 1 - (p?.links[0] ?? 0);
      const linkOffered = Array.from(t.linkOffered);
      const linkCarried = Array.from(t.linkCarried);
      linkOffered[0] += (o.link0 ?? 0) * cpuPass;
      linkCarried[0] += (o.link0 ?? 0) * cpuPass * linkPass;
      this.totals.set(id, {
        netId: id,
        cpuOffered: t.cpuOffered + o.cpu,
        cpuCarried: t.cpuCarried + o.cpu * cpuPass,
        linkOffered,
        linkCarried,
      });
    }
  }

  read(ids: readonly number[]): NetworkUsage[] {
    return ids.map(
      (id) =>
        this.totals.get(id) ?? {
          netId: id,
          cpuOffered: 0,
          cpuCarried: 0,
          linkOffered: new Array(MAX_LINKS).fill(0),
          linkCarried: new Array(MAX_LINKS).fill(0),
        },
    );
  }

  routeCounts(ids: readonly number[]): number[] {
    return ids.map((id) => this.routes.get(id) ?? 0);
  }

  write(decisions: readonly DropDecision[]): void {
    for (const d of decisions) this.probabilities.set(d.netId, d.drops);
  }

  probability(netId: number): DropDecision['drops'] | undefined {
    return this.probabilities.get(netId);
  }
}
