// xnetmon lab: build, drive and remove a virtual-router host made of namespaces. The lab (and
// the data plane it loads) is imported when a command runs, not when the CLI starts.
import type { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function registerLab(program: Command): void {
  const lab = program.command('lab').description('a virtual-router host built from network namespaces on this machine');

  lab
    .command('up')
    .description('build a lab: host namespace, two physical links, three virtual routers and their external machines')
    .option('--prefix <prefix>', 'namespace name prefix (default: unique)')
    .option('--link-rate <mbit>', 'shape each physical link to this rate (a downstream bottleneck)', Number)
    .option('--cpu-capacity <units>', "the daemon config's host CPU capacity, cost units per second", Number)
    .option('--law <law>', "the daemon config's control law: share or algorithm1")
    .option('--json', 'print the topology as JSON')
    .addHelpText('after', '\nExamples:\n  xnetmon lab up --json\n  xnetmon lab up --prefix demo --link-rate 200')
    .action(
      async (opts: {
        prefix?: string;
        linkRate?: number;
        cpuCapacity?: number;
        law?: 'share' | 'algorithm1';
        json?: boolean;
      }) => {
        const { createLab, labNamespaces } = await import('../lab/index.js');
        const state = createLab({
          prefix: opts.prefix,
          linkRateMbit: opts.linkRate,
          config: { cpuCapacity: opts.cpuCapacity, controlLaw: opts.law },
        });
        if (opts.json) process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
        else
          process.stdout.write(
            `lab ${state.topology.prefix} is up (${labNamespaces(state.topology.prefix).length} namespaces); remove it with: xnetmon lab down --prefix ${state.topology.prefix}\n`,
          );
      },
    );

  lab
    .command('down')
    .description('remove a lab and everything running in it')
    .requiredOption('--prefix <prefix>', "the lab's prefix")
    .action(async (opts: { prefix: string }) => {
      const { destroyLab } = await import('../lab/index.js');
      const removed = destroyLab(opts.prefix);
      process.stdout.write(`removed ${removed} namespaces of lab ${opts.prefix}\n`);
    });

  lab
    .command('load')
    .description(
      "load (or re-adopt) the data plane in the lab's host namespace with the routers' routes, without the secure channel",
    )
    .requiredOption('--prefix <prefix>', "the lab's prefix")
    .option('--no-routes', 'attach only, install no routes')
    .option('--json', 'print what was done as JSON')
    .action(async (opts: { prefix: string; routes: boolean; json?: boolean }) => {
      const { readLabState, loadStaticLab } = await import('../lab/index.js');
      const { parseConfig } = await import('../config/index.js');
      const state = readLabState(opts.prefix);
      if (process.env.XNETMON_IN_LAB_HOST !== '1') {
        const out = execFileSync(
          'ip',
          [
            'netns',
            'exec',
            state.topology.host.ns,
            process.execPath,
            process.argv[1],
            'lab',
            'load',
            '--prefix',
            opts.prefix,
            ...(opts.routes ? [] : ['--no-routes']),
            ...(opts.json ? ['--json'] : []),
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, XNETMON_IN_LAB_HOST: '1' } },
        );
        process.stdout.write(out);
        return;
      }
      // Attach as the daemon would with the lab's config (its xdp_mode and tc_mode).
      const { host } = parseConfig(readFileSync(state.configPath, 'utf8'), state.configPath);
      const result = loadStaticLab(state.topology, state.pinDir, {
        routes: opts.routes,
        modes: { xdp: host.xdpMode, tc: host.tcMode },
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else
        process.stdout.write(
          `data plane ${result.adopted ? 're-adopted' : 'loaded'}: ${result.attachments.length} attachments, ${result.routes} routes\n`,
        );
    });

  lab
    .command('demo')
    .description('the make lab job: build a lab, run the data plane, show forwarding and isolation, tear down')
    .option('--prefix <prefix>', 'namespace name prefix (default: unique)')
    .option('--report <dir>', 'where to write the report', 'lab-report')
    .option('--quick', 'shorter phases')
    .action(async (opts: { prefix?: string; report: string; quick?: boolean }) => {
      const { runDemo } = await import('./demo.js');
      await runDemo(opts);
    });
}
