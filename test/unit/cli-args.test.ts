// The CLI's argument handling: bad values are refused with an error naming the option before
// anything is sent to the daemon (no daemon runs here: a request would fail another way), unknown
// commands and missing options are usage errors, and the command names that the CLI lists without
// loading the benchmarks match the benchmarks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram, reportError } from '../../src/cli/program.js';
import { parseShare, parseWeight } from '../../src/cli/args.js';
import { BENCHMARK_NAMES } from '../../src/cli/bench.js';
import { EXPERIMENT_NAMES } from '../../src/cli/experiments.js';
import { ValidationError, XnetmonError } from '../../src/errors/index.js';

/** The program with commander's own messages silenced (it writes usage errors to stderr). */
function quietProgram(): Command {
  const program = buildProgram();
  const quiet = (command: Command): void => {
    command.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    command.commands.forEach(quiet);
  };
  quiet(program);
  return program;
}

const run = (...args: string[]): Promise<Command> =>
  quietProgram().parseAsync(['node', 'xnetmon', ...args, '--socket', '/nonexistent/admin.sock']);
const invalid = (path: string, message: RegExp) => (err: unknown) =>
  err instanceof ValidationError && err.path === path && message.test(err.message);

test('a share is a number in [0, 1]; anything else names the option', () => {
  assert.equal(parseShare('--cpu')('0.25'), 0.25);
  assert.equal(parseShare('--cpu')('1'), 1);
  assert.equal(parseShare('--cpu')('0'), 0);
  for (const bad of ['', ' ', '1.5', '-0.1', 'half', 'NaN', 'Infinity']) {
    assert.throws(() => parseShare('--fib')(bad), invalid('--fib', /is not a share between 0 and 1/), bad);
  }
});

test('a weight is an integer from 1 to 1000', () => {
  assert.equal(parseWeight('1'), 1);
  assert.equal(parseWeight('1000'), 1000);
  for (const bad of ['0', '1001', '2.5', '-3', 'heavy', '']) {
    assert.throws(() => parseWeight(bad), invalid('--weight', /is not an integer from 1 to 1000/), bad);
  }
});

test('net set: a bad value is refused by name, and nothing to change is an error', async () => {
  await assert.rejects(run('net', 'set', 'blue', '--cpu', '2'), invalid('--cpu', /"2" is not a share/));
  await assert.rejects(run('net', 'set', 'blue', '--weight', '0'), invalid('--weight', /"0"/));
  const linkError = (err: unknown) => err instanceof ValidationError && err.path.startsWith('--link');
  await assert.rejects(run('net', 'set', 'blue', '--link', 'eth1'), linkError);
  await assert.rejects(run('net', 'set', 'blue'), invalid('net set', /nothing to change/));
});

test('net add: a definition that is not JSON is refused by name', async () => {
  await assert.rejects(run('net', 'add', '--definition', '{"id":4,'), invalid('--definition', /is not valid JSON/));
});

test('unknown commands, unknown options and missing arguments are commander usage errors', async () => {
  const usage = (code: string) => (err: unknown) => err instanceof Error && (err as { code?: string }).code === code;
  await assert.rejects(quietProgram().parseAsync(['node', 'xnetmon', 'frobnicate']), usage('commander.unknownCommand'));
  await assert.rejects(
    quietProgram().parseAsync(['node', 'xnetmon', 'status', '--colour']),
    usage('commander.unknownOption'),
  );
  await assert.rejects(quietProgram().parseAsync(['node', 'xnetmon', 'routes']), usage('commander.missingArgument'));
  await assert.rejects(
    quietProgram().parseAsync(['node', 'xnetmon', 'net', 'add']),
    usage('commander.missingMandatoryOptionValue'),
  );
});

test('an unknown benchmark or experiment is a usage error listing the names', async () => {
  await assert.rejects(
    quietProgram().parseAsync(['node', 'xnetmon', 'bench', 'warp']),
    (err: unknown) =>
      err instanceof XnetmonError && err.code === 'ERR_USAGE' && err.message.includes(BENCHMARK_NAMES.join(', ')),
  );
  await assert.rejects(
    quietProgram().parseAsync(['node', 'xnetmon', 'experiments', 'warp']),
    (err: unknown) =>
      err instanceof XnetmonError && err.code === 'ERR_USAGE' && err.message.includes(EXPERIMENT_NAMES.join(', ')),
  );
});

test('an admin command without a daemon says how to start one', async () => {
  await assert.rejects(
    run('status'),
    (err: unknown) => err instanceof XnetmonError && err.code === 'ERR_ADMIN_SOCKET' && /xnetmon up/.test(err.message),
  );
});

test('the names the CLI lists are the benchmarks and experiments that exist', async () => {
  const { BENCHMARKS, EXPERIMENTS } = await import('../../bench/index.js');
  assert.deepEqual([...BENCHMARK_NAMES].sort(), Object.keys(BENCHMARKS).sort());
  assert.deepEqual([...EXPERIMENT_NAMES].sort(), Object.keys(EXPERIMENTS).sort());
});

test('reportError: one line naming the problem, exit code 1', () => {
  const written: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    written.push(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    assert.equal(reportError(new ValidationError('--cpu', '"2" is not a share between 0 and 1')), 1);
  } finally {
    process.stderr.write = original;
  }
  assert.equal(written.length, 1);
  assert.match(written[0], /^xnetmon: .*--cpu.*"2" is not a share between 0 and 1\n$/);
});
