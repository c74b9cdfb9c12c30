#!/usr/bin/env node
// xnetmon: the one command of the project. Errors are one line on stderr and a
// non-zero exit; every read command takes --json.
import { Command, CommanderError } from 'commander';
import { XnetmonError } from '../errors/index.js';
import { registerClient } from './client.js';
import { versionLine } from './version.js';
import { processSignals } from './signals.js';

/** Examples for the commands that do not carry their own (`--help` everywhere shows some). */
const EXAMPLES: Record<string, string[]> = {
  'down': ['xnetmon down -c /etc/xnetmon/xnetmon.yaml'],
  'reload': ['xnetmon reload -c /etc/xnetmon/xnetmon.yaml', 'systemctl reload xnetmon'],
  'check': ['xnetmon check', 'xnetmon check --json'],
  'status': ['xnetmon status', 'xnetmon status --json | jq \'.networks[] | {name, drops}\''],
  'net': ['xnetmon net list', 'xnetmon net set blue --cpu 0.3 --link eth1=0.5'],
  'net list': ['xnetmon net list --json'],
  'net show': ['xnetmon net show blue'],
  'net add': ['xnetmon net add --definition \'{"id":4,"name":"gold","weight":100,"routers":[{"vif":"vif4.0","clientPublicKey":"..."}]}\''],
  'net del': ['xnetmon net del gold'],
  'routes': ['xnetmon routes blue', 'xnetmon routes blue --prefix 10.1.0.0/16 --json'],
  'clients': ['xnetmon clients', 'xnetmon clients --json'],
  'top': ['xnetmon top', 'xnetmon top --once'],
  'lab': ['xnetmon lab up --json', 'xnetmon lab demo'],
  'lab down': ['xnetmon lab down --prefix xl1a2b'],
  'lab load': ['xnetmon lab load --prefix xl1a2b --json'],
  'lab demo': ['xnetmon lab demo --quick', 'make lab'],
};

function addExamples(command: Command, path: string[] = []): void {
  for (const sub of command.commands) {
    const name = [...path, sub.name()].join(' ');
    const examples = EXAMPLES[name];
    if (examples) sub.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}`);
    addExamples(sub, [...path, sub.name()]);
  }
}

/**
 * The command tree. `xnetmon client` runs inside a virtual router: for it only the client's
 * command is loaded, so that its process never maps libbpf nor loads the host's modules
 * (the host commands' modules import the data plane at load time).
 */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const program = new Command('xnetmon')
    .description('Isolation and plane separation for virtual routers sharing one host')
    .showHelpAfterError('(run with --help for usage)')
    .version(versionLine('xnetmon'), '-V, --version', 'print the version and the BPF object\'s build id')
    .exitOverride();
  if (argv[2] === 'client') {
    registerClient(program);
    return program;
  }
  const [{ registerOps }, { registerKeys }, { registerExperiments }, { registerLab }, { registerBench }] = await Promise.all([
    import('./ops.js'), import('./keys.js'), import('./experiments.js'), import('./lab.js'), import('./bench.js'),
  ]);
  registerOps(program);
  registerKeys(program);
  registerClient(program);
  registerExperiments(program);
  registerLab(program);
  registerBench(program);
  addExamples(program);
  return program;
}

export function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  if (err instanceof XnetmonError) {
    process.stderr.write(`xnetmon: ${err.message}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`xnetmon: ${message}\n`);
  return 1;
}

async function main(): Promise<void> {
  // The daemon holds its signals from here, before the host modules load (signals.ts).
  if (process.argv[2] === 'up') processSignals();
  try {
    await (await buildProgram()).parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

await main();
