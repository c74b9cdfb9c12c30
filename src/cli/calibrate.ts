// xnetmon calibrate: fit the per-path CPU costs on demand. For --seconds it samples, every
// period, the host's irq + softirq time (/proc/stat) and the running data plane's packets per
// path (its pinned counters), fits them as the daemon's measured CPU model does (src/cpu), and
// prints the cost table, the fit's quality and R. It changes nothing: set host.cpu_model:
// measured for the daemon to use the costs, or copy them into host.costs with cpu_capacity.
// The data plane modules load when the command runs, so that --help never loads libbpf.
import { join } from 'node:path';
import type { Command } from 'commander';
import { XnetmonError } from '../errors/index.js';
import { formatCpu } from './format.js';

const DEFAULT_CONFIG = '/etc/xnetmon/xnetmon.yaml';

const HELP = `
Run it while the host forwards its usual traffic (or a test load): a path with no traffic keeps its
constant cost, scaled to ns. Exit status 1 when the fit is not usable.

Examples:
  xnetmon calibrate --seconds 30
  xnetmon calibrate --json`;

export function registerCalibrate(program: Command): void {
  program
    .command('calibrate')
    .description('measure the CPU cost of each packet path on this host (irq+softirq time against packets per path)')
    .option('-c, --config <file>', 'configuration file (pin_dir, cpu_share, the constant table)', DEFAULT_CONFIG)
    .option('--seconds <n>', 'how long to sample', '10')
    .option('--json', 'print one JSON object')
    .addHelpText('after', HELP)
    .action(async (opts: { config: string; seconds: string; json?: boolean }) => {
      const seconds = Number(opts.seconds);
      if (!(seconds > 0 && seconds <= 3600)) {
        throw new XnetmonError('ERR_USAGE', `--seconds ${opts.seconds}: must be a number of seconds in (0, 3600]`);
      }
      const [
        { loadConfigFile },
        { BpfMap, MAX_NETS },
        { readPathTotalsFrom },
        { CpuModel, readCpuTimes },
        { costsOf },
      ] = await Promise.all([
        import('../config/index.js'),
        import('../loader/index.js'),
        import('../dataplane/index.js'),
        import('../cpu/index.js'),
        import('../control/index.js'),
      ]);
      const config = await loadConfigFile(opts.config);
      const stats = BpfMap.fromPin(join(config.host.pinDir, 'xnm_stats'));
      try {
        const periodMs = config.host.periodMs;
        const model = new CpuModel({
          mode: 'measured',
          share: config.host.cpuShare,
          cores: readCpuTimes().cpus,
          forgetting: 1,
          minSamples: Math.min(20, Math.floor((seconds * 1000) / periodMs) - 1),
          tableCosts: costsOf(config),
          tableCostPerKib: Math.round(config.host.costPerKib),
          tableCapacityPerS: config.host.cpuCapacity,
        });
        const sample = () => ({
          cpu: readCpuTimes(),
          traffic: readPathTotalsFrom(stats, MAX_NETS - 1),
          at: process.hrtime.bigint(),
        });
        let last = sample();
        const end = Date.now() + seconds * 1000;
        while (Date.now() < end) {
          await new Promise((r) => setTimeout(r, periodMs));
          const now = sample();
          const packets = now.traffic.packets.map((v, p) => v - last.traffic.packets[p]);
          const traffic = { packets, bytes: now.traffic.bytes - last.traffic.bytes };
          model.observe(Number(now.at - last.at) / 1e6, traffic, now.cpu.softirqNs - last.cpu.softirqNs);
          last = now;
        }
        const view = { ...model.view(), bpfRunTimeNsPerS: null };
        process.stdout.write(opts.json ? `${JSON.stringify(view)}\n` : `${formatCpu(view)}\n`);
        if (view.source !== 'measured') process.exitCode = 1;
      } finally {
        stats.close();
      }
    });
}
