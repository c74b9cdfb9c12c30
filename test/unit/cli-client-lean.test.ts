// The router-side client runs inside a virtual router: `xnetmon client` must never load libbpf
// (nor the host's data plane, which loads it), whatever the CLI's other commands import. The
// CLI loads each command's modules when it runs, so --help and the admin commands stay lean too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs the CLI with `args` in a fresh process and reports whether libbpf got mapped into it. */
function mapsLibbpf(args: readonly string[]): boolean {
  const script = `
    process.argv = [process.argv[0], ${JSON.stringify(main)}, ...${JSON.stringify(args)}];
    await import(${JSON.stringify(main)});
    const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
    process.stdout.write(maps.includes('libbpf') ? 'yes' : 'no');
    process.exitCode = 0;`;
  // The command's own output (--help prints to stdout) comes first; the answer is the last word.
  const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const answer = output.slice(-3).trim();
  assert.ok(answer === 'yes' || answer === 'no', `no answer from the probe: ${JSON.stringify(output.slice(-200))}`);
  return answer === 'yes';
}

test('xnetmon client never maps libbpf into its process', () => {
  assert.equal(mapsLibbpf(['client', '-c', '/nonexistent/client.yaml']), false);
});

test('xnetmon --help and the admin commands (status, routes) do not map libbpf either', () => {
  assert.equal(mapsLibbpf(['--help']), false);
  assert.equal(mapsLibbpf(['status', '--socket', '/nonexistent/admin.sock']), false);
  assert.equal(mapsLibbpf(['routes', 'blue', '--socket', '/nonexistent/admin.sock']), false);
});

test('the commands that load the data plane do (the check can fail)', () => {
  assert.equal(mapsLibbpf(['down', '-c', '/nonexistent/xnetmon.yaml']), true);
});
