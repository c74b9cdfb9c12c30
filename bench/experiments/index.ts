// The paper's evaluation (section V), each experiment comparing XNetMon with the paper's
// baseline in the same run: `xnetmon experiments [NAME]`, and `make experiments`, which
// writes docs/experiments.md, docs/experiments.json and the SVG figures in docs/figures/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { machine } from '../stats.js';
import { updateExperiment } from './update.js';
import { rttExperiment } from './rtt.js';
import { linksExperiment } from './links.js';
import { convergenceExperiment } from './convergence.js';
import type { Experiment, ExperimentResult } from './common.js';

export type { Experiment, ExperimentResult, ExperimentContext } from './common.js';

export const EXPERIMENTS: Record<string, Experiment> = {
  update: updateExperiment,
  rtt: rttExperiment,
  links: linksExperiment,
  convergence: convergenceExperiment,
};

export interface RunExperimentsOptions {
  /** One experiment by name; all when absent. */
  name?: string;
  quick?: boolean;
  /** Markdown report path; docs/experiments.json is written beside it (same name, .json). */
  write?: string;
  /** Where the SVG figures go; default: `figures/` beside the report, or a scratch directory. */
  figuresDir?: string;
  log?: (line: string) => void;
}

export interface ExperimentsReport {
  machine: string;
  date: string;
  quick: boolean;
  command: string;
  experiments: ExperimentResult[];
  /** Experiments re-run alone since (`xnetmon experiments NAME --write ...`). */
  updates?: { command: string; date: string; quick: boolean }[];
}

export async function runExperimentSet(options: RunExperimentsOptions = {}): Promise<ExperimentsReport> {
  const names = options.name ? [options.name] : Object.keys(EXPERIMENTS);
  for (const n of names)
    if (!EXPERIMENTS[n])
      throw new Error(`unknown experiment ${JSON.stringify(n)} (one of: ${Object.keys(EXPERIMENTS).join(', ')})`);
  // Without a report to write, the figures go to a scratch directory: a trial run never overwrites docs/figures.
  const figuresDir =
    options.figuresDir ??
    (options.write ? join(dirname(resolve(options.write)), 'figures') : join(tmpdir(), 'xnetmon-figures'));
  mkdirSync(figuresDir, { recursive: true });
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const quick = options.quick ?? false;
  const results: ExperimentResult[] = [];
  for (const name of names) {
    const experiment = EXPERIMENTS[name];
    log(`experiment ${name}: ${experiment.title}`);
    const started = Date.now();
    results.push(await experiment.run({ quick, figuresDir, log }));
    log(`experiment ${name}: ${((Date.now() - started) / 1000).toFixed(0)} s; figures in ${figuresDir}`);
  }
  const report: ExperimentsReport = {
    machine: machine(),
    date: new Date().toISOString(),
    quick,
    command: `xnetmon experiments${options.name ? ` ${options.name}` : ''}${quick ? ' --quick' : ''}${options.write ? ` --write ${options.write}` : ''}`,
    experiments: results,
  };
  if (options.write) writeExperimentsReport(mergeIntoExisting(report, options.write), options.write, figuresDir);
  return report;
}

function jsonPathOf(mdPath: string): string {
  return `${mdPath.replace(/\.md$/, '')}.json`;
}

/** One experiment re-run with --write replaces its own section of an existing report; the others stay. */
function mergeIntoExisting(report: ExperimentsReport, mdPath: string): ExperimentsReport {
  const jsonPath = jsonPathOf(mdPath);
  if (report.experiments.length === Object.keys(EXPERIMENTS).length || !existsSync(jsonPath)) return report;
  const previous = JSON.parse(readFileSync(jsonPath, 'utf8')) as ExperimentsReport;
  const fresh = new Map(report.experiments.map((e) => [e.name, e]));
  const names = Object.keys(EXPERIMENTS).filter((n) => fresh.has(n) || previous.experiments.some((e) => e.name === n));
  return {
    ...previous,
    experiments: names.map((n) => fresh.get(n) ?? previous.experiments.find((e) => e.name === n)!),
    updates: [...(previous.updates ?? []), { command: report.command, date: report.date, quick: report.quick }],
  };
}

export function writeExperimentsReport(report: ExperimentsReport, mdPath: string, figuresDir: string): void {
  writeFileSync(mdPath, experimentsMarkdown(report, mdPath, figuresDir));
  writeFileSync(jsonPathOf(mdPath), `${JSON.stringify(report, null, 1)}\n`);
}

function experimentsMarkdown(report: ExperimentsReport, mdPath: string, figuresDir: string): string {
  const rel = (file: string) =>
    join(figuresDir === join(dirname(resolve(mdPath)), 'figures') ? 'figures' : figuresDir, file);
  const out = [
    "# Experiments: the paper's section V, reproduced",
    '',
    `Measured on ${report.machine}, ${report.date.slice(0, 16)}Z: a shared 2-core VM (other engineers' builds and tests ran at the same time), namespaces and veth pairs, not Xen. Absolute figures are hints; each experiment runs XNetMon and the paper's baseline side by side in the same run.`,
    `Regenerate with \`make experiments\` (\`xnetmon experiments --write docs/experiments.md\`, about 10 minutes, about 3 with \`--quick\`); this file was written by \`${report.command}\`${report.quick ? ' (the quick form: fewer trials, wider intervals)' : ''}${(report.updates ?? []).map((u) => `, then \`${u.command}\` (${u.date.slice(0, 16)}Z)`).join('')}. Every figure's raw data is in \`docs/experiments.json\`.`,
  ];
  out.push('', '## Summary', '', '| experiment | target or question | met | measured |', '| --- | --- | --- | --- |');
  for (const r of report.experiments) {
    for (const t of r.targets)
      out.push(`| ${r.name} | ${t.target} | ${t.met === null ? '-' : t.met ? 'yes' : 'no'} | ${t.measured} |`);
  }
  for (const r of report.experiments) {
    out.push('', `## ${r.title}`, '', `Command: \`${r.command}\``, '', r.markdown);
    for (const f of r.files) out.push('', `![${f.title}](${rel(f.file)})`);
  }
  return `${out.join('\n')}\n`;
}
