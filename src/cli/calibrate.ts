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

export function registerCalibrate(program: Command): void {
  program.command('calibrate')
    .description('measure the CPU cost of each packet path on this host (fit of irq+softirq time against packets per path)')
    .option('-c, --config <file>', 'configuration file (pin_dir, cpu_share, the constant table)', DEFAULT_CONFIG)
    .option('--seconds <n>', 'how long to sample', '10')
    .option('--json', 'print one JSON object')
    .addHelpText('after', '\nRun it while the host forwards its usual traffic (or a test load): a path with no traffic keeps its\nconstant cost scaled to ns.\n\nExamples:\n  xnetmon calibrate --seconds 30\n  xnetmon calibrate --json')
    .action(async (opts: { config: string; seconds: string; json?: boolean }) => {
      const seconds = Number(opts.seconds);
      if (!(seconds > 0 && seconds <= 3600)) throw new XnetmonError('ERR_USAGE', `--seconds ${opts.seconds}: must be a number of seconds in (0, 3600]`);
      const [{ loadConfigFile }, { BpfMap, MAX_NETS }, { readPathTotalsFrom }, { CpuModel, readCpuTimes }, { costsOf }] = await Promise.all([
        import('../config/index.js'), import('../loader/index.js'), import('../dataplane/index.js'), import('../cpu/index.js'),
        import('../control/index.js'),
      ]);
      const config = await loadConfigFile(opts.config);
      const stats = BpfMap.fromPin(join(config.host.pinDir, 'xnm_stats'));
      try {
        const periodMs = config.host.periodMs;
        const model = new CpuModel({
          mode: 'measured', share: config.host.cpuShare, cores: readCpuTimes().cpus, minSamples: Math.min(20, Math.floor((seconds * 1000) / periodMs) - 1),
          tableCosts: costsOf(config), tableCostPerKib: Math.round(config.host.costPerKib), tableCapacityPerS: config.host.cpuCapacity,
          forgetting: 1,
        });
        const sample = () => ({ cpu: readCpuTimes(), traffic: readPathTotalsFrom(stats, MAX_NETS - 1), at: process.hrtime.bigint() });
        let last = sample();
        const end = Date.now() + seconds * 1000;
        while (Date.now() < end) {
          await new Promise((r) => setTimeout(r, periodMs));
          const now = sample();
          const elapsedMs = Number(now.at - last.at) / 1e6;
          model.observe(elapsedMs, { packets: now.traffic.packets.map((v, p) => v - last.traffic.packets[p]), bytes: now.traffic.bytes - last.traffic.bytes }, now.cpu.softirqNs - last.cpu.softirqNs);
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
