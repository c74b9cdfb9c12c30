// xnetmon keygen: an X25519 identity for the host or a virtual router.
import type { Command } from 'commander';
import { writeFileSync, existsSync } from 'node:fs';
import { generateKeyPair } from '../crypto/index.js';
import { XnetmonError } from '../errors/index.js';

export function registerKeys(program: Command): void {
  program.command('keygen')
    .description('generate a key pair: the private key goes to a file (mode 0600), the public key to stdout')
    .requiredOption('-o, --out <file>', 'where to write the private key (base64)')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print {"publicKey": ...}')
    .addHelpText('after', '\nExamples:\n  xnetmon keygen -o /etc/xnetmon/host.key      # then put the public key in each client.yaml\n  xnetmon keygen -o /etc/xnetmon/router.key    # then list the public key under the network\'s routers')
    .action((opts: { out: string; force?: boolean; json?: boolean }) => {
      if (existsSync(opts.out) && !opts.force) throw new XnetmonError('ERR_EXISTS', `${opts.out} exists (use --force to overwrite it)`);
      const pair = generateKeyPair();
      writeFileSync(opts.out, `${pair.privateKey}\n`, { mode: 0o600 });
      process.stdout.write(opts.json ? `${JSON.stringify({ publicKey: pair.publicKey })}\n` : `${pair.publicKey}\n`);
    });
}
