// Counters whose value is kept elsewhere (the data plane's per-CPU maps, the manager's quota
// tallies): emitted as they are, with TYPE counter.
//
// Why not prom-client's Counter: it cannot be set, only inc()'d. Feeding it the delta since the
// last read would restart it at 0 with every daemon restart while the pinned maps keep counting,
// so /metrics would disagree with `xnetmon status` and bpftool, and a read that raced a restart
// could add a whole history twice. The source's own cumulative value, exposed as a counter, is
// what Prometheus' rate() and its reset detection expect: it only falls when the maps are
// recreated (`xnetmon down`), which is a reset Prometheus handles.
import type { Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface Sample {
  labels: Labels;
  value: number;
}

export class CumulativeCounter {
  private readonly samples = new Map<string, Sample>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    if (!name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    // prom-client's Registry accepts any object with name and get(); see Registry.registerMetric.
    registry.registerMetric(this as never);
  }

  private key(labels: Labels): string {
    return this.labelNames.map((l) => labels[l] ?? '').join('\u0000');
  }

  /** The source's cumulative value now. */
  set(labels: Labels, value: number | bigint): void {
    this.samples.set(this.key(labels), { labels, value: Number(value) });
  }

  /**
   * For a value derived as a difference of two counters read at slightly different instants
   * (link bytes offered minus carried): a frame counted as offered but not yet as carried would
   * make it rise then fall back, which Prometheus takes for a reset. Never going down keeps it a
   * counter; the overcount lasts until the carried count catches up.
   */
  setMonotonic(labels: Labels, value: number | bigint): void {
    const previous = this.samples.get(this.key(labels))?.value ?? 0;
    this.set(labels, Math.max(previous, Number(value)));
  }

  /** Forgets the series `keep` refuses (a network removed): the next scrape no longer shows them. */
  retain(keep: (labels: Labels) => boolean): void {
    for (const [key, sample] of this.samples) if (!keep(sample.labels)) this.samples.delete(key);
  }

  get(): {
    name: string;
    help: string;
    type: 'counter';
    values: { labels: Labels; value: number }[];
    aggregator: 'sum';
  } {
    return { name: this.name, help: this.help, type: 'counter', values: [...this.samples.values()], aggregator: 'sum' };
  }

  // The Registry calls these on clear()/resetMetrics(); nothing to do for values owned elsewhere.
  reset(): void {
    /* the source owns the value */
  }
}
