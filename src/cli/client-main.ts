#!/usr/bin/env node
// xnetmon-client: the command of the router package (xnetmon-client.deb), which ships only the
// client's modules (wire, crypto, net, config) and none of the host's: `xnetmon client` and
// `xnetmon keygen` under a name of their own. `xnetmon-client -c FILE` is `xnetmon client -c FILE`.
import { Command, CommanderError } from 'commander';
import { XnetmonError } from '../errors/index.js';
import { registerClient } from './client.js';
import { registerKeys } from './keys.js';
import { versionLine } from './version.js';

const OWN_OPTIONS = new Set(['-V', '--version', '-h', '--help']);

/** The argument list with `client` put first when the command starts with the client's options. */
export function clientArgv(argv: readonly string[]): string[] {
  const first = argv[2];
  return first?.startsWith('-') && !OWN_OPTIONS.has(first)
    ? [...argv.slice(0, 2), 'client', ...argv.slice(2)]
    : [...argv];
}

export function buildClientProgram(): Command {
  const program = new Command('xnetmon-client')
    .description("XNetMon's client for a virtual router: replicate its FIB and packet filter to the host")
    .usage('-c /etc/xnetmon/client.yaml | keygen -o FILE | --version')
    .showHelpAfterError('(run with --help for usage)')
    .version(versionLine('xnetmon-client'), '-V, --version', "print the version and the BPF object's build id")
    .exitOverride();
  registerClient(program);
  registerKeys(program);
  return program;
}

/** As `xnetmon`: one line on stderr and a non-zero exit (main.ts's twin: importing main.ts would run it). */
function reportError(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode;
  const message = err instanceof XnetmonError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`xnetmon-client: ${message}\n`);
  return 1;
}

try {
  await buildClientProgram().parseAsync(clientArgv(process.argv));
} catch (err) {
  process.exitCode = reportError(err);
}
