// Operator commands: up, down, reload, status, net, routes, clients, top.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { loadConfigFile, parseLinkSpec, type NetworkChange } from '../config/index.js';
import { Daemon, tearDown, adminRequest } from '../control/index.js';
import { ValidationError } from '../errors/index.js';
import { table, formatStatus, formatDrift, driftFound, type DriftView } from './format.js';

export const DEFAULT_CONFIG = '/etc/xnetmon/xnetmon.yaml';
export const DEFAULT_SOCKET = '/run/xnetmon/admin.sock';

interface SocketOpts { config?: string; socket?: string; json?: boolean }

async function socketPath(opts: SocketOpts): Promise<string> {
  if (opts.socket) return opts.socket;
  const path = opts.config ?? DEFAULT_CONFIG;
  if (opts.config || existsSync(path)) return (await loadConfigFile(path)).host.adminSocket;
  return DEFAULT_SOCKET;
}

async function ask(opts: SocketOpts, cmd: string, args?: Record<string, unknown>): Promise<unknown> {
  return adminRequest(await socketPath(opts), { cmd, args });
}

function print(opts: { json?: boolean }, value: unknown, human: (v: never) => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${human(value as never)}\n`);
}

function withSocket(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'the daemon\'s config (to find its admin socket)')
    .option('--socket <path>', 'the admin socket')
    .option('--json', 'print JSON');
}

/** A share in [0, 1] from the command line; anything else is a ValidationError naming the option. */
function share(option: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new ValidationError(option, `${JSON.stringify(value)} is not a share between 0 and 1`);
    return n;
  };
}

function weight(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 1000) throw new ValidationError('--weight', `${JSON.stringify(value)} is not an integer from 1 to 1000`);
  return n;
}

export function registerOps(program: Command): void {
  program.command('up')
    .description('run the host daemon in the foreground (systemd-friendly)')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--no-control', 'account but never punish (the experiments\' baseline)')
    .addHelpText('after', '\nExamples:\n  xnetmon up -c /etc/xnetmon/xnetmon.yaml\n\nSIGHUP reloads the file; SIGTERM stops the daemon and leaves forwarding running.')
    .action(async (opts: { config: string; control: boolean }) => {
      const { startDaemon } = await import('./daemon-main.js');
      await startDaemon(opts.config, { noControl: !opts.control });
    });

  program.command('down')
    .description('detach every program of the configuration and remove the pinned maps')
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .action(async (opts: { config: string }) => {
      const result = await tearDown(opts.config);
      process.stdout.write(`detached ${result.detached.join(', ')}; removed the pins under ${result.pinDir}\n`);
    });

  withSocket(program.command('reload'))
    .description('re-read the config file: applied whole, or rejected whole with the error')
    .action(async (opts: SocketOpts) => {
      const result = await ask(opts, 'reload');
      print(opts, result, () => 'configuration reloaded');
    });

  withSocket(program.command('status'))
    .description('networks, reservations, usage against reservation per resource, drop probabilities, drops by reason')
    .action(async (opts: SocketOpts) => {
      print(opts, await ask(opts, 'status'), formatStatus);
    });

  withSocket(program.command('check'))
    .description('what differs between the data plane and the running configuration, without changing anything (exit 2 when something does)')
    .addHelpText('after', '\nxnetmon reload (or a restart) repairs what check shows.')
    .action(async (opts: SocketOpts) => {
      const drift = await ask(opts, 'check') as DriftView;
      print(opts, drift, formatDrift);
      if (driftFound(drift)) process.exitCode = 2;
    });

  const net = program.command('net').description('virtual network definitions, changed live');
  withSocket(net.command('list')).description('list networks').action(async (opts: SocketOpts) => {
    print(opts, await ask(opts, 'net.list'), (nets: { id: number; name: string; weight: number; reserve: { cpu: number; fib: number; links: Record<string, number> } }[]) =>
      table(['ID', 'NAME', 'WEIGHT', 'CPU', 'FIB', 'LINKS'], nets.map((n) => [n.id, n.name, n.weight, n.reserve.cpu, n.reserve.fib, Object.entries(n.reserve.links).map(([l, v]) => `${l}=${v}`).join(' ')])));
  });
  withSocket(net.command('show').argument('<name>')).description('one network').action(async (name: string, opts: SocketOpts) => {
    print(opts, await ask(opts, 'net.show', { name }), (v: unknown) => JSON.stringify(v, null, 2));
  });
  withSocket(net.command('set').argument('<name>'))
    .description('change a network\'s reservations or weight, live, validated first, atomic')
    .option('--cpu <share>', 'fixed share alpha of host CPU', share('--cpu'))
    .option('--fib <share>', 'fixed share alpha of FIB memory', share('--fib'))
    .option('--weight <w>', 'weight W for the idle share, 1..1000', weight)
    .option('--link <link=share...>', 'fixed share of an output link, e.g. eth1=0.5 (repeatable)')
    .addHelpText('after', '\nExamples:\n  xnetmon net set blue --cpu 0.3 --weight 500 --link eth1=0.5 --fib 0.2')
    .action(async (name: string, opts: SocketOpts & { cpu?: number; fib?: number; weight?: number; link?: string[] }) => {
      const change: { -readonly [K in keyof NetworkChange]: NetworkChange[K] } = {};
      if (opts.cpu !== undefined) change.cpu = opts.cpu;
      if (opts.fib !== undefined) change.fib = opts.fib;
      if (opts.weight !== undefined) change.weight = opts.weight;
      if (opts.link?.length) change.links = Object.fromEntries(opts.link.map((spec) => { const l = parseLinkSpec(spec, '--link'); return [l.link, l.share]; }));
      if (Object.keys(change).length === 0) throw new ValidationError('net set', 'nothing to change: give --cpu, --fib, --weight or --link');
      print(opts, await ask(opts, 'net.set', { name, change }), () => `network ${name} updated`);
    });
  withSocket(net.command('add'))
    .description('add a network from a JSON definition (same fields as the config file\'s networks entries, camelCase)')
    .requiredOption('--definition <json>', 'the network, e.g. {"id":4,"name":"gold","routers":[{"vif":"vif4.0","clientPublicKey":"..."}]}')
    .action(async (opts: SocketOpts & { definition: string }) => {
      let network: unknown;
      try { network = JSON.parse(opts.definition); } catch { throw new ValidationError('--definition', 'is not valid JSON'); }
      print(opts, await ask(opts, 'net.add', { network }), () => 'network added');
    });
  withSocket(net.command('del').argument('<name>')).description('remove a network and its routes').action(async (name: string, opts: SocketOpts) => {
    print(opts, await ask(opts, 'net.del', { name }), () => `network ${name} removed`);
  });

  withSocket(program.command('routes').argument('<network>'))
    .description('a network\'s forwarding table as installed in the host')
    .option('--prefix <prefix>', 'only this prefix')
    .action(async (network: string, opts: SocketOpts & { prefix?: string }) => {
      print(opts, await ask(opts, 'routes', { name: network, prefix: opts.prefix }), (v: { routes: { prefix: string; target: { kind: string; nexthopId?: number } }[] }) =>
        table(['PREFIX', 'TARGET'], v.routes.map((r) => [r.prefix, r.target.kind === 'nexthop' ? `next hop ${r.target.nexthopId}` : r.target.kind])));
    });

  withSocket(program.command('clients'))
    .description('connected virtual routers: network, session age, last update')
    .action(async (opts: SocketOpts) => {
      print(opts, await ask(opts, 'clients'), (list: Record<string, unknown>[]) =>
        list.length ? table(Object.keys(list[0]).map((k) => k.toUpperCase()), list.map((c) => Object.values(c).map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))))) : 'no virtual router connected');
    });

  withSocket(program.command('top'))
    .description('a live view of usage and punishment, refreshed each period')
    .option('--once', 'print one frame and exit')
    .action(async (opts: SocketOpts & { once?: boolean }) => {
      const path = await socketPath(opts);
      for (;;) {
        const status = await adminRequest(path, { cmd: 'status' });
        if (!opts.once) process.stdout.write('\x1b[2J\x1b[H');
        process.stdout.write(`${opts.json ? JSON.stringify(status) : formatStatus(status as never)}\n`);
        if (opts.once) return;
        await new Promise((r) => setTimeout(r, Math.max(200, (status as { periodMs: number }).periodMs)));
      }
    });
}
