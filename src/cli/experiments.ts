// xnetmon experiments [NAME]: the paper's section V on a lab of namespaces, XNetMon against
// the paper's baseline in the same run. `make experiments` writes docs/experiments.md.
import type { Command } from 'commander';
import { XnetmonError } from '../errors/index.js';

/** The experiments of bench/experiments (checked against it by test/unit/cli-args.test.ts), named
 *  here so that the CLI's help does not load the benchmarks and the data plane. */
export const EXPERIMENT_NAMES = ['update', 'rtt', 'links', 'convergence'] as const;

export function registerExperiments(program: Command): void {
  program
    .command('experiments')
    .description(`run the paper's experiments (section V): ${EXPERIMENT_NAMES.join(', ')}; all when no name is given`)
    .argument('[name]', 'one experiment')
    .option('--json', 'print the figures as one JSON object')
    .option(
      '--write <file>',
      'write the markdown report here (and the figures as JSON beside it, SVGs in figures/ beside it)',
    )
    .option('--quick', 'a short version of each experiment (fewer trials, wider confidence intervals)')
    .addHelpText(
      'after',
      '\nRuns labs of network namespaces as root; one lab at a time.\n\nExamples:\n  xnetmon experiments --quick\n  xnetmon experiments links --json\n  xnetmon experiments --write docs/experiments.md',
    )
    .action(async (name: string | undefined, opts: { json?: boolean; write?: string; quick?: boolean }) => {
      if (name && !EXPERIMENT_NAMES.some((n) => n === name)) {
        throw new XnetmonError(
          'ERR_USAGE',
          `unknown experiment ${JSON.stringify(name)} (one of: ${EXPERIMENT_NAMES.join(', ')})`,
        );
      }
      const { runExperimentSet } = await import('../../bench/index.js');
      const report = await runExperimentSet({ name, quick: opts.quick, write: opts.write });
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ machine: report.machine, date: report.date, quick: report.quick, experiments: Object.fromEntries(report.experiments.map((e) => [e.name, e.figures])) })}\n`,
        );
      } else {
        for (const e of report.experiments) process.stdout.write(`\n## ${e.title}\n\n${e.markdown}\n`);
      }
    });
}
