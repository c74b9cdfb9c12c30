#!/usr/bin/env node
// xnetmon: the one command of the project. Errors are one line on stderr and a
// non-zero exit; every read command takes --json.
import { processSignals } from './signals.js';
import { buildProgram, reportError } from './program.js';

async function main(): Promise<void> {
  // The daemon holds its signals from here, before the host modules load (signals.ts).
  if (process.argv[2] === 'up') processSignals();
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

await main();
