#!/usr/bin/env node
// xnetmon: the one command of the project. Errors are one line on stderr and a
// non-zero exit; every read command takes --json.
import { Command, CommanderError } from 'commander';
import { XnetmonError } from '../errors/index.js';
import { registerLab } from './lab.js';
import { registerBench } from './bench.js';
import { registerOps } from './ops.js';
import { registerKeys } from './keys.js';
import { registerClient } from './client.js';
import { registerExperiments } from './experiments.js';

export function buildProgram(): Command {
  const program = new Command('xnetmon')
    .description('Isolation and plane separation for virtual routers sharing one host')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerOps(program);
  registerKeys(program);
  registerClient(program);
  registerExperiments(program);
  registerLab(program);
  registerBench(program);
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
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

await main();
