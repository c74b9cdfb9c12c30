// Operator commands: up, down, reload, check, status, net, routes, clients, top. Each action loads what
// it needs when it runs (the daemon and the data plane only for up and down; the admin client for
// the rest), so that `xnetmon --help` and the admin commands never load libbpf.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import type { AdminClient } from '../admin/index.js';
import { ValidationError } from '../errors/index.js';
import { driftFound, formatClients, formatDrift, formatNetworks, formatRoutes, formatStatus } from './format.js';
import { parseShare, parseWeight } from './args.js';

const DEFAULT_CONFIG = '/etc/xnetmon/xnetmon.yaml';
const DEFAULT_SOCKET = '/run/xnetmon/admin.sock';

interface SocketOpts {
  config?: string;
  socket?: string;
  json?: boolean;
}

async function socketPath(opts: SocketOpts): Promise<string> {
  if (opts.socket) return opts.socket;
  const path = opts.config ?? DEFAULT_CONFIG;
  if (!opts.config && !existsSync(path)) return DEFAULT_SOCKET;
  const { loadConfigFile } = await import('../config/index.js');
  return (await loadConfigFile(path)).host.adminSocket;
}

type AdminModule = typeof import('../admin/index.js');

/** The admin client of the daemon the options name, and the admin module's view checks. */
async function admin(opts: SocketOpts): Promise<{ client: AdminClient; views: AdminModule }> {
  const views = await import('../admin/index.js');
  return { client: new views.AdminClient(await socketPath(opts)), views };
}

/** Prints the daemon's answer as it came with --json, else as `human` formats it. */
function print(opts: { json?: boolean }, value: unknown, human: (v: unknown) => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${human(value)}\n`);
}

function withSocket(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', "the daemon's config (to find its admin socket)")
    .option('--socket <path>', 'the admin socket')
    .option('--json', 'print JSON');
}

export function registerOps(program: Command): void {
  program
    .command('up')
    .description('run the host daemon in the foreground (systemd-friendly)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--no-control', "account but never punish (the experiments' baseline)")
    .addHelpText(
      'after',
      '\nExamples:\n  xnetmon up -c /etc/xnetmon/xnetmon.yaml\n\nSIGHUP reloads the file; SIGTERM stops the daemon and leaves forwarding running.',
    )
    .action(async (opts: { config: string; control: boolean }) => {
      const { startDaemon } = await import('./daemon-main.js');
      await startDaemon(opts.config, { noControl: !opts.control });
    });

  program
    .command('down')
    .description('detach every program of the configuration and remove the pinned maps')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .action(async (opts: { config: string }) => {
      const { tearDown } = await import('../control/index.js');
      const result = await tearDown(opts.config);
      process.stdout.write(`detached ${result.detached.join(', ')}; removed the pins under ${result.pinDir}\n`);
    });

  withSocket(program.command('reload'))
    .description('re-read the config file: applied whole, or rejected whole with the error')
    .action(async (opts: SocketOpts) => {
      const { client } = await admin(opts);
      print(opts, await client.request('reload'), () => 'configuration reloaded');
    });

  withSocket(program.command('status'))
    .description('networks, reservations, usage against reservation per resource, drop probabilities, drops by reason')
    .action(async (opts: SocketOpts) => {
      const { client, views } = await admin(opts);
      print(opts, await client.request('status'), (v) => formatStatus(views.parseStatusView(v)));
    });

  withSocket(program.command('check'))
    .description(
      'what differs between the data plane and the running configuration, without changing anything ' +
        '(exit 2 when something does)',
    )
    .addHelpText('after', '\nxnetmon reload (or a restart) repairs what check shows.')
    .action(async (opts: SocketOpts) => {
      const { client, views } = await admin(opts);
      const raw = await client.request('check');
      const drift = views.parseDriftView(raw);
      print(opts, raw, () => formatDrift(drift));
      if (driftFound(drift)) process.exitCode = 2;
    });

  const net = program.command('net').description('virtual network definitions, changed live');
  withSocket(net.command('list'))
    .description('list networks')
    .action(async (opts: SocketOpts) => {
      const { client, views } = await admin(opts);
      print(opts, await client.request('net.list'), (v) => formatNetworks(views.parseNetworkSummaries(v)));
    });
  withSocket(net.command('show').argument('<name>'))
    .description('one network')
    .action(async (name: string, opts: SocketOpts) => {
      const { client } = await admin(opts);
      print(opts, await client.request('net.show', { name }), (v) => JSON.stringify(v, null, 2));
    });
  withSocket(net.command('set').argument('<name>'))
    .description("change a network's reservations or weight, live, validated first, atomic")
    .option('--cpu <share>', 'fixed share alpha of host CPU', parseShare('--cpu'))
    .option('--fib <share>', 'fixed share alpha of FIB memory', parseShare('--fib'))
    .option('--weight <w>', 'weight W for the idle share, 1..1000', parseWeight)
    .option('--link <link=share...>', 'fixed share of an output link, e.g. eth1=0.5 (repeatable)')
    .addHelpText('after', '\nExamples:\n  xnetmon net set blue --cpu 0.3 --weight 500 --link eth1=0.5 --fib 0.2')
    .action(
      async (name: string, opts: SocketOpts & { cpu?: number; fib?: number; weight?: number; link?: string[] }) => {
        const { parseLinkSpec } = await import('../config/index.js');
        const change: { cpu?: number; fib?: number; weight?: number; links?: Record<string, number> } = {};
        if (opts.cpu !== undefined) change.cpu = opts.cpu;
        if (opts.fib !== undefined) change.fib = opts.fib;
        if (opts.weight !== undefined) change.weight = opts.weight;
        if (opts.link?.length) {
          change.links = Object.fromEntries(
            opts.link.map((spec) => {
              const l = parseLinkSpec(spec, '--link');
              return [l.link, l.share];
            }),
          );
        }
        if (Object.keys(change).length === 0)
          throw new ValidationError('net set', 'nothing to change: give --cpu, --fib, --weight or --link');
        const { client } = await admin(opts);
        print(opts, await client.request('net.set', { name, change }), () => `network ${name} updated`);
      },
    );
  withSocket(net.command('add'))
    .description("add a network from a JSON definition (same fields as the config file's networks entries, camelCase)")
    .requiredOption(
      '--definition <json>',
      'the network, e.g. {"id":4,"name":"gold","routers":[{"vif":"vif4.0","clientPublicKey":"..."}]}',
    )
    .action(async (opts: SocketOpts & { definition: string }) => {
      let network: unknown;
      try {
        network = JSON.parse(opts.definition);
      } catch {
        throw new ValidationError('--definition', 'is not valid JSON');
      }
      const { client } = await admin(opts);
      print(opts, await client.request('net.add', { network }), () => 'network added');
    });
  withSocket(net.command('del').argument('<name>'))
    .description('remove a network and its routes')
    .action(async (name: string, opts: SocketOpts) => {
      const { client } = await admin(opts);
      print(opts, await client.request('net.del', { name }), () => `network ${name} removed`);
    });

  withSocket(program.command('routes').argument('<network>'))
    .description("a network's forwarding table as installed in the host")
    .option('--prefix <prefix>', 'only this prefix')
    .action(async (network: string, opts: SocketOpts & { prefix?: string }) => {
      const { client, views } = await admin(opts);
      const args = opts.prefix === undefined ? { name: network } : { name: network, prefix: opts.prefix };
      print(opts, await client.request('routes', args), (v) => formatRoutes(views.parseRoutesView(v)));
    });

  withSocket(program.command('clients'))
    .description('connected virtual routers: network, session age, last update')
    .action(async (opts: SocketOpts) => {
      const { client, views } = await admin(opts);
      print(opts, await client.request('clients'), (v) => formatClients(views.parseClientsView(v)));
    });

  withSocket(program.command('top'))
    .description('a live view of usage and punishment, refreshed each period')
    .option('--once', 'print one frame and exit')
    .action(async (opts: SocketOpts & { once?: boolean }) => {
      const { client, views } = await admin(opts);
      for (;;) {
        const raw = await client.request('status');
        const status = views.parseStatusView(raw);
        if (!opts.once) process.stdout.write('\x1b[2J\x1b[H');
        process.stdout.write(`${opts.json ? JSON.stringify(raw) : formatStatus(status)}\n`);
        if (opts.once) return;
        await new Promise((r) => setTimeout(r, Math.max(200, status.periodMs)));
      }
    });
}
