// The benchmarks: each runs alone (xnetmon bench NAME --json) and in the quick set
// (make bench), which writes docs/benchmarks.md with the command for every figure.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { benchFastpath } from './fastpath.js';
import { benchRouteload } from './routeload.js';
import { benchController } from './controller.js';
import { benchChannel } from './channel.js';
import { benchForwardingFeeds, forwardingReport, type ForwardingFigures } from './forwarding.js';
import { machine } from './stats.js';
import { runExperimentSet } from './experiments/index.js';

export {
  EXPERIMENTS,
  runExperimentSet,
  type ExperimentsReport,
  type RunExperimentsOptions,
} from './experiments/index.js';

export interface Benchmark {
  description: string;
  /** quick: fewer and shorter rounds, for development (`xnetmon bench NAME --quick`). */
  run(options?: { quick?: boolean }): Promise<object> | object;
  /** Markdown section for the report, from the figures. */
  report(figures: object): string;
}

export const BENCHMARKS: Record<string, Benchmark> = {
  fastpath: {
    description:
      'per-packet cost of the fast path (BPF_PROG_TEST_RUN) at 1 / 1,000 / 65,536 flows over 1M routes, beside a count-only program and a floor forwarder',
    run: (o) => {
      const rows = benchFastpath(o?.quick ? { rounds: 3, repeat: 5_000, packets: 4_096 } : {});
      const one = rows.find((r) => r.flows === 1) ?? rows[0];
      return { ...one, by_flows: rows };
    },
    report: (f) => {
      const rows = (f as { by_flows: ReturnType<typeof benchFastpath> }).by_flows;
      return [
        '| flows | count-only XDP (ns) | floor (ns) | minimal forwarder (ns) | fast path (ns) | + isolation (ns) | + isolation, no flow cache (ns) | + isolation, trie lookup (ns) | per-call overhead (ns) | isolation / floor | no cache / floor | trie / floor | isolation / floor, net of overhead | no cache / floor, net | flow cache saves (ns) |',
        '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ...rows.map(
          (r) =>
            `| ${r.flows} | ${r.baseline_ns_per_packet} | ${r.floor_ns_per_packet} | ${r.minimal_forwarder_ns_per_packet} | ${r.fastpath_ns_per_packet} | ${r.isolation_ns_per_packet} | ${r.no_flow_cache_ns_per_packet} | ${r.trie_ns_per_packet} | ${r.call_overhead_ns} | ${r.ratio_to_floor} | ${r.no_flow_cache_ratio_to_floor} | ${r.trie_ratio_to_floor} | ${r.ratio_to_floor_net} | ${r.no_flow_cache_ratio_to_floor_net} | ${r.flow_cache_saves_ns} |`,
        ),
        '',
        `${rows[0]?.routes.toLocaleString('en-US')} routes in network 1's table. The floor (\`base_floor\`) parses Ethernet + IPv4, rewrites the MACs, decrements the TTL with the checksum fix, counts and calls \`bpf_redirect_map\`: what any IPv4 forwarder does. ` +
          "One flow: 250 passes per call on the program's own output. Many flows: one call per packet, each to the next destination of a fixed random order, so that every figure of that row includes the per-call overhead " +
          '(the kernel\'s timer and a cold start after the syscall: the count-only program\'s cost per call at one pass minus its cost per pass at 250); the "net" ratios take it out of both sides. ' +
          '"Added by isolation" (accounting, CPU and link punishment checks, the filter check) and "flow cache saves" are medians of per-round differences. ' +
          '"Trie lookup": isolation and flow cache on, but every IPv4 lookup by the LPM trie (the route index off): the lookup before the index, in the same rounds.',
        '',
        `Flow-aware dropping (the flow rate sketch and the rate histogram) runs only on a punished network's packets: it adds ${rows.map((r) => `${r.added_fair_drop_ns} ns at ${r.flows} flow(s)`).join(', ')} ` +
          `to an unpunished one's and ${rows[0]?.added_fair_drop_punished_ns ?? '-'} ns to a punished one's at one flow (with it minus random drops at the same p, paired). BPF run-time statistics (BPF_ENABLE_STATS, on while host.cpu_model is measured) add ${rows[0]?.added_run_time_stats_ns ?? '-'} ns per packet at one flow ` +
          `(kernel.bpf_stats_enabled was ${rows[0]?.bpf_stats_sysctl ?? '-'} at the start: 1 would mean statistics were on for every figure).`,
      ].join('\n');
    },
  },
  routeload: {
    description:
      "loading 1,000,000 IPv4 prefixes into one network's table from TypeScript, and reading them back as adoption at start-up does",
    run: () => benchRouteload(),
    report: (f) => {
      const r = f as ReturnType<typeof benchRouteload>;
      return (
        `${r.routes} routes in ${r.seconds} s (${r.routes_per_second} routes/s) with batch updates; one syscall per route: ${r.single_update_seconds_for_100k} s for 100k, so batches are ${r.batch_speedup}x faster per route. ` +
        `Reading the ${r.adoption_read_routes} installed routes back (adoption at start-up, \`xnetmon routes\`): ${r.adoption_read_seconds_batch} s with batch lookups (mode: ${r.adoption_read_mode}), ` +
        `${r.adoption_read_seconds_per_key} s with get_next_key and a lookup per route: ${r.adoption_read_speedup}x ` +
        `(the kernel's part alone: ${r.adoption_kernel_read_seconds_batch} s against ${r.adoption_kernel_read_seconds_per_key} s).`
      );
    },
  },
  channel: {
    description:
      "a full table of 1,000,000 IPv4 routes from a router's client over the secure channel into the host's maps, the handshake, and incremental updates",
    run: () => benchChannel(),
    report: (f) => {
      const r = f as Awaited<ReturnType<typeof benchChannel>>;
      return `${r.routes} routes end to end in ${r.seconds} s (${r.seconds_without_channel} s for the same load through an in-memory session: the channel adds ${Math.round((r.seconds - r.seconds_without_channel) * 1000)} ms); handshake ${r.handshake_ms} ms median, ${r.handshake_ms_p90} ms p90 (100 in a row, the client and the host each in a fresh process of its own, TCP connect included); incremental updates ${r.updates_per_second} routes/s (batches of 1,000 over the channel).`;
    },
  },
  controller: {
    description:
      'one controller period: read all counters from the kernel, run the law per resource (CPU, 8 links, FIB), write all probabilities',
    run: () => {
      const rows = benchController();
      const at1000 = rows.find((r) => r.networks === 1000 && r.law === 'share') ?? rows[0];
      return { ...at1000, by_networks: rows };
    },
    report: (f) => {
      const rows = (f as { by_networks: ReturnType<typeof benchController> }).by_networks;
      return [
        '| networks | links | law | median period (ms) | p99 (ms) |',
        '| ---: | ---: | --- | ---: | ---: |',
        ...rows.map((r) => `| ${r.networks} | ${r.links} | ${r.law} | ${r.period_ms} | ${r.period_ms_p99} |`),
      ].join('\n');
    },
  },
  forwarding: {
    description:
      "forwarding throughput and forwarder CPU per packet through a host of namespaces: Linux, Linux + iptables (the paper's prototype), a minimal XDP forwarder, XNetMon with and without its flow cache and with trie lookups (its route index off); frames fed as from a NIC (256 and 1M routes, 65,536 destinations and one) and straight from the stack (256)",
    run: (o) => benchForwardingFeeds(o?.quick ? { rounds: 3, seconds: 1 } : {}),
    report: (f) => forwardingReport(f as ForwardingFigures),
  },
};

/** The hand-written sections of an earlier report (from its first `## ` heading to the first
 *  generated section): which machine each figure comes from and why they differ stay true
 *  only if a person writes them, so a regenerated report keeps them. */
function handWrittenSections(path: string): string[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('## '));
  const headings = new Set(Object.keys(BENCHMARKS).map((name) => `## ${name}`));
  const generated = lines.findIndex((l) => headings.has(l));
  if (start < 0 || generated <= start) return [];
  const kept = lines.slice(start, generated);
  while (kept.length && kept[kept.length - 1] === '') kept.pop();
  return ['', ...kept];
}

export async function runAll(write?: string): Promise<void> {
  const sections: string[] = [
    '# Benchmarks',
    '',
    `Measured on ${machine()}, ${new Date().toISOString().slice(0, 10)}: a shared 2-core VM, so absolute times are hints; compare the side-by-side ratios.`,
    'Regenerate all with `make bench`; each section gives the command that runs it alone.',
    ...(write ? handWrittenSections(write) : []),
  ];
  for (const [name, bench] of Object.entries(BENCHMARKS)) {
    process.stderr.write(`bench ${name}: ${bench.description}\n`);
    const figures = await bench.run();
    process.stdout.write(`${JSON.stringify({ bench: name, ...figures })}\n`);
    sections.push(
      '',
      `## ${name}`,
      '',
      bench.description,
      '',
      `Command: \`xnetmon bench ${name} --json\``,
      '',
      bench.report(figures),
      '',
      '```json',
      JSON.stringify(figures),
      '```',
    );
  }
  if (write) writeFileSync(write, `${sections.join('\n')}\n`);
}

/** `make experiments`: the paper's section V, every experiment; the report is written to `write`
 *  (markdown) and beside it as JSON, the figures to docs/figures/. */
export async function runExperiments(write?: string): Promise<void> {
  await runExperimentSet({ write });
}
