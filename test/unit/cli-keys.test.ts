// xnetmon keygen: the private key file is 0600 even when --force overwrites a file of another mode.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Command } from 'commander';
import { registerKeys } from '../../src/cli/keys.js';

const scratch = mkdtempSync(join(tmpdir(), 'xnetmon-keygen-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs `xnetmon keygen ...` in-process; returns what it printed. */
async function keygen(...args: string[]): Promise<string> {
  const program = new Command('xnetmon').exitOverride();
  registerKeys(program);
  let printed = '';
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => {
    printed += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await program.parseAsync(['node', 'xnetmon', 'keygen', ...args]);
  } finally {
    process.stdout.write = write;
  }
  return printed;
}

describe('xnetmon keygen', () => {
  it('--force over a 0644 file leaves a 0600 file with the new key, and no temporary file', async () => {
    const out = join(scratch, 'host.key');
    writeFileSync(out, 'old secret\n', { mode: 0o644 });
    chmodSync(out, 0o644);
    const printed = await keygen('-o', out, '--force', '--json');
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const key = readFileSync(out, 'utf8');
    assert.match(key, /^[A-Za-z0-9+/]{43}=\n$/);
    assert.ok(JSON.parse(printed).publicKey);
    assert.deepEqual(readdirSync(scratch), ['host.key']);
  });

  it('a new file is 0600; an existing one without --force is refused and kept', async () => {
    const out = join(scratch, 'router.key');
    await keygen('-o', out);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    const before = readFileSync(out, 'utf8');
    await assert.rejects(keygen('-o', out), { code: 'ERR_EXISTS' });
    assert.equal(readFileSync(out, 'utf8'), before);
  });
});
