// xnetmon bench NAME [--json]: each benchmark alone, printing one JSON object of
// figures; `bench all --write FILE` runs the quick set and writes the report.
import type { Command } from 'commander';
import { XnetmonError } from '../errors/index.js';

/** The benchmarks of bench/index.ts (checked against it by test/unit/cli-args.test.ts), named here
 *  so that the CLI's help does not load the benchmarks and the data plane. */
export const BENCHMARK_NAMES = ['fastpath', 'routeload', 'channel', 'controller', 'forwarding'] as const;

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark: ${BENCHMARK_NAMES.join(', ')}, or all`)
    .argument('<name>', 'benchmark name')
    .option('--json', 'print one JSON object of figures')
    .option('--write <file>', 'with "all": write the markdown report here')
    .option('--quick', 'fewer and shorter rounds (fastpath, forwarding): for development, not for the report')
    .addHelpText(
      'after',
      '\nExamples:\n  xnetmon bench fastpath --json\n  xnetmon bench routeload --json\n  xnetmon bench all --write docs/benchmarks.md',
    )
    .action(async (name: string, opts: { json?: boolean; write?: string; quick?: boolean }) => {
      if (name !== 'all' && !BENCHMARK_NAMES.some((n) => n === name)) {
        throw new XnetmonError(
          'ERR_USAGE',
          `unknown benchmark ${JSON.stringify(name)} (one of: ${BENCHMARK_NAMES.join(', ')}, all)`,
        );
      }
      const { BENCHMARKS, runAll } = await import('../../bench/index.js');
      if (name === 'all') {
        await runAll(opts.write);
        return;
      }
      const bench = BENCHMARKS[name];
      if (!bench) throw new XnetmonError('ERR_USAGE', `benchmark ${JSON.stringify(name)} is not in bench/index.ts`);
      const figures = await bench.run({ quick: opts.quick ?? false });
      process.stdout.write(opts.json ? `${JSON.stringify(figures)}\n` : `${JSON.stringify(figures, null, 2)}\n`);
    });
}
