// xnetmon keygen: an X25519 identity for the host or a virtual router.
import type { Command } from 'commander';
import { closeSync, existsSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { generateKeyPair } from '../crypto/index.js';
import { XnetmonError } from '../errors/index.js';

export function registerKeys(program: Command): void {
  program
    .command('keygen')
    .description('generate a key pair: the private key goes to a file (mode 0600), the public key to stdout')
    .requiredOption('-o, --out <file>', 'where to write the private key (base64)')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print {"publicKey": ...}')
    .addHelpText(
      'after',
      "\nExamples:\n  xnetmon keygen -o /etc/xnetmon/host.key      # then put the public key in each client.yaml\n  xnetmon keygen -o /etc/xnetmon/router.key    # then list the public key under the network's routers",
    )
    .action((opts: { out: string; force?: boolean; json?: boolean }) => {
      if (existsSync(opts.out) && !opts.force)
        throw new XnetmonError('ERR_EXISTS', `${opts.out} exists (use --force to overwrite it)`);
      const pair = generateKeyPair();
      writePrivateKeyFile(opts.out, `${pair.privateKey}\n`);
      process.stdout.write(opts.json ? `${JSON.stringify({ publicKey: pair.publicKey })}\n` : `${pair.publicKey}\n`);
    });
}

/**
 * Writes a private key readable by its owner only, also over an existing file of another
 * mode: writeFileSync's mode applies only when it creates the file, so an old 0644 key file
 * would keep 0644 with the new secret in it. Written to a new file (O_EXCL, 0600) in the same
 * directory and renamed over the old one, so the secret is never in a readable file, and a
 * crash leaves the old key or the new one, not half of one.
 */
function writePrivateKeyFile(path: string, contents: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'wx', 0o600);
  try {
    writeSync(fd, contents);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temporary);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw new XnetmonError('ERR_KEY_WRITE', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
  }
}
