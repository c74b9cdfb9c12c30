// The xnetmon command tree (main.ts runs it): every command, its examples, and how an error
// becomes one line on stderr and an exit code.
import { Command, CommanderError } from 'commander';
import { XnetmonError } from '../errors/index.js';
import { registerBench } from './bench.js';
import { registerCalibrate } from './calibrate.js';
import { registerClient } from './client.js';
import { registerExperiments } from './experiments.js';
import { registerKeys } from './keys.js';
import { registerLab } from './lab.js';
import { registerOps } from './ops.js';
import { versionLine } from './version.js';

/** Examples for the commands that do not carry their own (`--help` everywhere shows some). */
const EXAMPLES: Record<string, string[]> = {
  down: ['xnetmon down -c /etc/xnetmon/xnetmon.yaml'],
  reload: ['xnetmon reload -c /etc/xnetmon/xnetmon.yaml', 'systemctl reload xnetmon'],
  check: ['xnetmon check', 'xnetmon check --json'],
  status: ['xnetmon status', "xnetmon status --json | jq '.networks[] | {name, drops}'"],
  net: ['xnetmon net list', 'xnetmon net set blue --cpu 0.3 --link eth1=0.5'],
  'net list': ['xnetmon net list --json'],
  'net show': ['xnetmon net show blue'],
  'net add': [
    'xnetmon net add --definition \'{"id":4,"name":"gold","weight":100,"routers":[{"vif":"vif4.0","clientPublicKey":"..."}]}\'',
  ],
  'net del': ['xnetmon net del gold'],
  routes: ['xnetmon routes blue', 'xnetmon routes blue --prefix 10.1.0.0/16 --json'],
  clients: ['xnetmon clients', 'xnetmon clients --json'],
  top: ['xnetmon top', 'xnetmon top --once'],
  lab: ['xnetmon lab up --json', 'xnetmon lab demo'],
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
 * The command tree. Each command's action imports what it needs when it runs: `xnetmon client`
 * runs inside a virtual router, where its process must never map libbpf nor load the host's
 * modules, and `xnetmon --help` or an admin command (status, routes) loads neither the data plane
 * nor the daemon (test/unit/cli-client-lean.test.ts).
 */
export function buildProgram(): Command {
  const program = new Command('xnetmon')
    .description('Isolation and plane separation for virtual routers sharing one host')
    .showHelpAfterError('(run with --help for usage)')
    .version(versionLine('xnetmon'), '-V, --version', "print the version and the BPF object's build id")
    .exitOverride();
  registerOps(program);
  registerKeys(program);
  registerClient(program);
  registerExperiments(program);
  registerLab(program);
  registerBench(program);
  registerCalibrate(program);
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
