#!/usr/bin/env node
// xnetmon: the one command of the project. Errors are one line on stderr and a
// non-zero exit; every read command takes --json.
import { buildProgram, reportError } from './program.js';

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

await main();
