// xnetmon client: runs inside a virtual router and keeps the host's copy of its
// forwarding table and packet filter equal to its own (paper IV-B), over the
// secure channel (paper IV-C).
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { UpdateTransport } from '../wire/index.js';
import { XnetmonError } from '../errors/index.js';

export function registerClient(program: Command): void {
  program
    .command('client')
    .description('run in a virtual router: watch its FIB, neighbours and nftables filter, and send changes to the host')
    .requiredOption(
      '-c, --config <file>',
      'client configuration (host, host_public_key, private_key_file, tables, interfaces)',
    )
    .addHelpText('after', '\nExamples:\n  xnetmon client -c /etc/xnetmon/client.yaml')
    .action(async (opts: { config: string }) => {
      const [{ loadClientConfig, runClient }, { connectSecure }, { createLogger }] = await Promise.all([
        import('../client/index.js'),
        import('../crypto/index.js'),
        import('../control/logger.js'),
      ]);
      const config = await loadClientConfig(opts.config);
      let privateKey: string;
      try {
        privateKey = readFileSync(config.privateKeyFile, 'utf8').trim();
      } catch (err) {
        throw new XnetmonError(
          'ERR_CONFIG_READ',
          `private_key_file ${config.privateKeyFile}: ${(err as Error).message}`,
        );
      }
      const log = createLogger();
      const transport: UpdateTransport = {
        connect: async () => {
          const channel = await connectSecure({
            host: config.host.host,
            port: config.host.port,
            privateKey,
            hostPublicKey: config.hostPublicKey,
            logger: log,
          });
          return {
            peerId: 'host',
            remoteAddress: `${config.host.host}:${config.host.port}`,
            send: (payload) => channel.send(payload),
            messages: () => channel.messages(),
            close: () => channel.close(),
          };
        },
      };
      const abort = new AbortController();
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => abort.abort());
      await runClient(config, { transport, logger: log, signal: abort.signal });
    });
}
