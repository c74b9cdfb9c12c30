// The host daemon: loads (or re-adopts) the pinned data plane, writes the network
// definitions into it, attaches the programs, runs the controller every T, and
// serves the admin socket and metrics. Stopping it leaves forwarding running;
// `xnetmon down` is what detaches.
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from './logger.js';
import {
  loadConfigFile,
  applyNetworkChange,
  addNetwork,
  removeNetwork,
  diffConfigs,
  serializeConfig,
  parseLinkSpec,
  type XnetmonConfig,
  type NetworkChange,
  type NetworkDefinitionInput,
  type ConfigDiff,
} from '../config/index.js';
import { type DataPlane, parsePrefix, formatPrefix, migrateLinkPins, openPinnedDataPlane } from '../dataplane/index.js';
import { checkKernel, detachPinned, detachTc, ifindexOf, REASONS } from '../loader/index.js';
import { release } from 'node:os';
import { FailureLog, XnetmonError, ValidationError } from '../errors/index.js';
import { AdminServer, type AdminRequest, type DriftView, type StatusView } from '../admin/index.js';
import { applySettings, type AppliedTopology } from './apply.js';
import {
  applyReconcile,
  driftOf,
  finishReconcile,
  isDrift,
  planReconcile,
  type AppliedReconcile,
  type Drift,
} from './reconcile.js';
import { createDaemonCpu, type DaemonCpu } from './cpu.js';
import { Controller, type MemoryControl } from './controller.js';
import { Metrics } from './metrics.js';
import type { QuotaStatus } from '../manager/index.js';
import { dataPlaneSink, dataPlaneSource } from './sources.js';

export interface DaemonOptions {
  configPath: string;
  logger?: Logger;
  /** Account but never punish: the "no control" baseline of the experiments. */
  noControl?: boolean;
  /** Port 0 for tests: replaces the metrics port of the config. */
  metricsListen?: string | null;
}

/** What a session-bearing component (the update manager) offers the daemon. */
export interface RouteAuthority {
  /** Routes installed in the data plane. */
  routeCount(netId: number): number;
  /** Routes the network wants: installed plus evicted by memory control. */
  routeDemand?(netId: number): number;
  memory: MemoryControl;
  /** Each shared table's use, quota and refused batches for one network (status and metrics). */
  quotas?(netId: number): QuotaStatus;
  clients(): unknown[];
  /** Secure-channel connections and sessions refused or cut off since start, by reason. */
  channelRejections?(): Readonly<Record<string, number>>;
  reconfigure(config: XnetmonConfig): void;
  close(): Promise<void>;
}

export type RouteAuthorityFactory = (daemon: Daemon) => Promise<RouteAuthority>;

export class Daemon {
  config: XnetmonConfig;
  readonly dp: DataPlane;
  readonly log: Logger;
  readonly controller: Controller;
  // Counters are read from the maps at each scrape, so a scrape sees them as fresh as it is.
  readonly metrics = new Metrics({ beforeScrape: () => this.refreshMetrics() });
  readonly startedAt = Date.now();
  private topology: AppliedTopology;
  /** What the last reconciliation found and removed (start-up, reload or a live change). */
  private drift: Drift;
  private admin: AdminServer | undefined;
  private readonly cpu: DaemonCpu;
  private authority: RouteAuthority | undefined;
  metricsAddress: { host: string; port: number } | undefined;
  private readonly metricsFailures: FailureLog;

  private constructor(
    private readonly options: DaemonOptions,
    config: XnetmonConfig,
    dp: DataPlane,
    log: Logger,
  ) {
    this.config = config;
    this.dp = dp;
    this.log = log;
    this.metricsFailures = new FailureLog(log);
    applySettings(dp, config, !options.noControl);
    // Reconcile: the maps and links converge to the configuration, whatever an earlier daemon
    // (stopped, crashed, killed, or of another configuration) left; a failure undoes it all.
    defineNetworks(dp, config, true);
    const plan = planReconcile(dp, config);
    const applied = applyReconcile(dp, plan, config);
    this.drift = driftOf(plan, 'start', finishReconcile(dp, plan));
    defineNetworks(dp, config, false);
    if (this.drift.networks.length)
      log.warn(
        { networks: this.drift.networks, entries: this.drift.entries },
        'drift repaired: networks the configuration does not declare were removed from the data plane',
      );
    if (isDrift(this.drift)) log.info({ drift: this.drift }, 'the data plane was brought to the configuration');
    this.topology = plan.topology;
    const attached = applied.attached;
    for (const a of attached) {
      if (a.mode === 'generic') log.warn({ ifname: a.ifname }, 'native XDP refused: attached in generic mode (slower)');
      if (a.mode === 'cls_bpf')
        log.info(
          { ifname: a.ifname },
          'no tcx links in this kernel (before 6.6): TC program attached as a cls_bpf filter on clsact',
        );
    }
    log.info(
      { adopted: dp.adopted, attachments: attached.length, replaced: attached.filter((a) => a.replaced).length },
      dp.adopted ? 'data plane re-adopted from pins' : 'data plane loaded',
    );
    this.cpu = createDaemonCpu(dp, config, !options.noControl, log);
    this.controller = new Controller({
      cpu: this.cpu.meter,
      config,
      source: dataPlaneSource(
        dp,
        (id) => this.authority?.routeCount(id) ?? 0,
        (id) => this.authority?.routeDemand?.(id) ?? this.authority?.routeCount(id) ?? 0,
      ),
      sink: options.noControl ? { write: () => undefined } : dataPlaneSink(dp),
      memory: {
        evict: (id, f) => this.authority?.memory.evict(id, f),
        restore: (id) => this.authority?.memory.restore(id),
      },
      linkSlots: new Map(this.topology.links.map((l) => [l.name, l.slot])),
      onPeriod: (report) => this.metrics.observePeriod(report, this.config.host.periodMs),
      logger: log,
    });
  }

  static async start(options: DaemonOptions, authorityFactory?: RouteAuthorityFactory): Promise<Daemon> {
    const log = options.logger ?? createLogger();
    const kernelWarning = checkKernel(release());
    if (kernelWarning) log.warn({ kernel: release() }, kernelWarning);
    const config = await loadConfigFile(options.configPath, LIVE_CHECKS);
    const { dp, schema } = openPinnedDataPlane(
      {
        pinDir: config.host.pinDir,
        flowCacheSlots: config.host.flowCacheSlots,
        onLog: (level, message) => {
          if (level === 'warn') log.warn({ libbpf: message }, 'libbpf');
        },
      },
      `xnetmon down -c ${options.configPath}`,
    );
    if (schema === 'unrecorded')
      log.info(
        { pinDir: config.host.pinDir },
        'pinned maps from before layouts were recorded: re-used (libbpf found their sizes unchanged), layout recorded',
      );
    let daemon: Daemon;
    try {
      // Pins named by an earlier version (dots as underscores) take the current names.
      const pins = migrateLinkPins(config.host.pinDir);
      if (pins.renamed.length || pins.removed.length) log.info({ pins }, 'link pins migrated to the current names');
      daemon = new Daemon(options, config, dp, log);
    } catch (err) {
      dp.close();
      throw err;
    }
    try {
      if (authorityFactory) daemon.authority = await authorityFactory(daemon);
      daemon.controller.start();
      daemon.admin = new AdminServer(config.host.adminSocket, (req) => daemon.handle(req));
      await daemon.admin.listen();
      const metricsListen = options.metricsListen !== undefined ? options.metricsListen : config.host.metricsListen;
      if (metricsListen) daemon.metricsAddress = await daemon.metrics.listen(metricsListen);
      log.info(
        {
          admin: config.host.adminSocket,
          metrics: daemon.metricsAddress,
          periodMs: config.host.periodMs,
          law: config.host.controlLaw,
          control: !options.noControl,
        },
        'xnetmon up',
      );
      return daemon;
    } catch (err) {
      await daemon.stop();
      throw err;
    }
  }

  /** The physical links as applied: name, ifindex, counter slot. */
  linkInfo(): readonly { name: string; ifindex: number; slot: number }[] {
    return this.topology.links;
  }

  setAuthority(authority: RouteAuthority): void {
    this.authority = authority;
  }

  private refreshMetrics(): void {
    // Before each scrape: a failed map read must not fail the daemon (the scrape shows the last values).
    try {
      const names = new Map(this.config.networks.map((n) => [n.id, n.name]));
      this.metrics.observeCounters(this.dp.readCounters([0, ...names.keys()]), names, this.topology.links);
      for (const n of this.config.networks) {
        this.metrics.observeRoutes(n.name, this.authority?.routeCount(n.id) ?? 0);
        const quotas = this.authority?.quotas?.(n.id);
        if (quotas) this.metrics.observeQuotas(n.name, quotas);
      }
      // A line per configured router (several per network): the gauge counts the connected ones.
      const connected = (this.authority?.clients() ?? []).filter(
        (c) => (c as { connected?: unknown }).connected === true,
      );
      this.metrics.observeSessions(connected.length);
      const rejections = this.authority?.channelRejections?.();
      if (rejections) this.metrics.observeChannelRejections(rejections);
      this.metrics.observeControllerFailures(this.controller.failures.counts());
    } catch (err) {
      this.metricsFailures.report(
        'metrics',
        { err: (err as Error).message },
        'refreshing metrics failed; the scrape shows the last values read',
      );
    }
  }

  /** Stops the daemon's work; the pinned data plane keeps forwarding. */
  async stop(): Promise<void> {
    this.controller.stop();
    this.cpu.close();
    await this.authority?.close();
    await this.admin?.close();
    await this.metrics.close();
    this.dp.close();
    this.log.info('xnetmon stopped; the data plane keeps forwarding (xnetmon down detaches it)');
  }

  // ---- live changes -------------------------------------------------------------

  /**
   * Validates the new config whole, then converges the data plane to it with rollback: on any
   * error the maps, the programs, the running config and the file on disk are as before.
   */
  private commit(next: XnetmonConfig, persist: boolean, trigger: 'reload' | 'change'): ConfigDiff {
    const diff = diffConfigs(this.config, next);
    if (diff.restartRequired) {
      const names = diff.hostChanged
        .filter((c) => !c.live)
        .map((c) => c.setting)
        .join(', ');
      throw new XnetmonError('ERR_RESTART_REQUIRED', `changing ${names} needs a daemon restart; nothing was applied`);
    }
    // Everything that can refuse without writing comes first: every interface is resolved here.
    const plan = planReconcile(this.dp, next);
    const previous = this.config;
    const previousSettings = this.dp.readSettings();
    const staged = persist ? this.stageFile(next) : undefined;
    let applied: AppliedReconcile | undefined;
    let fileReplaced = false;
    const known = new Set(this.dp.networkList().map((n) => n.id));
    try {
      applySettings(this.dp, next, !this.options.noControl);
      applied = applyReconcile(this.dp, plan, next);
      if (staged) {
        this.replaceFile(staged);
        fileReplaced = true;
      }
      defineNetworks(this.dp, next, true);
      this.config = next;
      this.cpu.reconfigure(next);
      this.controller.reconfigure(next);
      this.authority?.reconfigure(next);
    } catch (err) {
      this.rollback(previous, previousSettings, applied, staged, fileReplaced);
      // Networks the failed change defined leave the registry (they hold nothing in the maps).
      for (const net of this.dp.networkList()) if (!known.has(net.id)) this.dp.purgeNetwork(net.id);
      throw err;
    }
    try {
      const purged = finishReconcile(this.dp, plan);
      defineNetworks(this.dp, next, false);
      const drift = driftOf(plan, trigger, purged);
      if (isDrift(drift)) this.drift = drift;
    } catch (err) {
      // The change stands; what is left of removed networks is removed by the next reconciliation.
      this.log.error(
        { err: (err as Error).message },
        'removing what the configuration no longer declares failed; the next reload or restart retries',
      );
    }
    this.topology = plan.topology;
    this.log.info({ diff }, 'configuration applied');
    return diff;
  }

  private rollback(
    previous: XnetmonConfig,
    settings: ReturnType<DataPlane['readSettings']>,
    applied: AppliedReconcile | undefined,
    staged: string | undefined,
    fileReplaced: boolean,
  ): void {
    const step = (what: string, action: () => void): void => {
      try {
        action();
      } catch (err) {
        this.log.error({ err: (err as Error).message, step: what }, 'rollback step failed');
      }
    };
    if (fileReplaced) step('file', () => this.replaceFile(this.stageFile(previous)));
    else if (staged) step('file', () => rmSync(staged, { force: true }));
    if (this.config !== previous) {
      this.config = previous;
      step('cpu', () => this.cpu.reconfigure(previous));
      step('controller', () => this.controller.reconfigure(previous));
      step('sessions', () => this.authority?.reconfigure(previous));
    }
    if (applied) step('maps', () => applied.undo());
    step('settings', () => this.dp.configure(settings));
  }

  /**
   * Writes `config` to a new file in the config file's directory (so that the rename is atomic),
   * flushed to disk, with the file's mode; returns its path. replaceFile renames it over the file,
   * so that a crash or a power cut leaves the old file or the new one, never a truncated one.
   */
  private stageFile(config: XnetmonConfig): string {
    const path = this.options.configPath;
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0o644; // the file keeps its mode
    try {
      const fd = openSync(tmp, 'w', mode);
      try {
        writeSync(fd, serializeConfig(config));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
    return tmp;
  }

  /** Renames a staged file over the config file, then flushes the directory. */
  private replaceFile(staged: string): void {
    const path = this.options.configPath;
    try {
      renameSync(staged, path);
    } catch (error) {
      rmSync(staged, { force: true });
      throw error;
    }
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  /** What converging to the running config would change now, without changing anything. */
  check(): DriftView {
    return driftOf(planReconcile(this.dp, this.config), 'check');
  }

  async reload(): Promise<ConfigDiff> {
    const next = await loadConfigFile(this.options.configPath, LIVE_CHECKS);
    return this.commit(next, false, 'reload');
  }

  private network(name: string) {
    const net = this.config.networks.find((n) => n.name === name || String(n.id) === name);
    if (!net)
      throw new ValidationError(
        `networks.${name}`,
        `unknown network ${JSON.stringify(name)} (known: ${this.config.networks.map((n) => n.name).join(', ') || 'none'})`,
      );
    return net;
  }

  // ---- admin API -------------------------------------------------------------------

  async handle(req: AdminRequest): Promise<unknown> {
    const args = req.args ?? {};
    const str = (key: string): string => {
      const v = args[key];
      if (typeof v !== 'string' || !v) throw new ValidationError(key, 'missing');
      return v;
    };
    switch (req.cmd) {
      case 'status':
        return this.status();
      case 'net.list':
        return this.config.networks.map((n) => ({ id: n.id, name: n.name, weight: n.weight, reserve: n.reserve }));
      case 'net.show':
        return {
          ...this.network(str('name')),
          status: this.status().networks.find((n) => n.name === this.network(str('name')).name),
        };
      case 'net.set': {
        const name = this.network(str('name')).name;
        const change = args.change as NetworkChange;
        return { diff: this.commit(applyNetworkChange(this.config, name, change, LIVE_CHECKS), true, 'change') };
      }
      case 'net.add':
        return {
          diff: this.commit(
            addNetwork(this.config, args.network as NetworkDefinitionInput, LIVE_CHECKS),
            true,
            'change',
          ),
        };
      case 'net.del':
        return {
          diff: this.commit(removeNetwork(this.config, this.network(str('name')).name, LIVE_CHECKS), true, 'change'),
        };
      case 'check':
        return this.check();
      case 'routes': {
        const net = this.network(str('name'));
        const filter = typeof args.prefix === 'string' ? formatPrefix(parsePrefix(args.prefix, 'prefix')) : undefined;
        const routes = this.dp.listRoutes(net.id).filter((r) => !filter || r.prefix === filter);
        return { network: net.name, routes: routes.map((r) => ({ prefix: r.prefix, target: r.target })) };
      }
      case 'clients':
        return this.authority?.clients() ?? [];
      case 'reload':
        return { diff: await this.reload() };
      case 'link-spec':
        return parseLinkSpec(str('spec'));
      default:
        throw new XnetmonError('ERR_UNKNOWN_COMMAND', `unknown admin command ${JSON.stringify(req.cmd)}`);
    }
  }

  status(): StatusView {
    const report = this.controller.lastReport;
    const counters = new Map(
      this.dp.readCounters([0, ...this.config.networks.map((n) => n.id)]).map((c) => [c.netId, c]),
    );
    return {
      uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
      law: this.config.host.controlLaw,
      periodMs: this.config.host.periodMs,
      control: !this.options.noControl,
      lastPeriod: report ? { period: report.period, durationMs: report.durationMs } : null,
      // The CPU model: cost table (measured or constant), its fit quality, R and U(t).
      cpu: this.cpu.meter.view(),
      drift: this.drift,
      // What the kernel runs on each interface: XDP native or generic, TC as tcx or cls_bpf.
      attachments: [...this.topology.links.map((l) => l.name), ...this.topology.vifs].map((ifname) => ({
        ifname,
        ...this.dp.attachedModes(ifname),
      })),
      /** Periods and memory control actions that failed and were survived (see Controller.failures). */
      controllerFailures: this.controller.failures.counts(),
      // Traffic of no network: unclassified frames (the host's own, broadcasts left to the bridge,
      // malformed frames and refused tags before classification), by reason, so that every packet
      // that reached the data plane is counted somewhere an operator looks.
      noNetwork: Object.fromEntries(
        REASONS.map((r) => [r, Number(counters.get(0)?.verdicts[r] ?? 0n)]).filter(([, v]) => v !== 0),
      ),
      networks: this.config.networks.map((n) => {
        const c = counters.get(n.id);
        const resources = (report?.resources ?? []).map((r) => {
          const x = r.networks.find((y) => y.netId === n.id);
          return {
            resource: r.resource,
            capacity: r.capacity,
            reserved: x?.reserved ?? 0,
            offered: x?.offered ?? 0,
            carried: x?.carried ?? 0,
            target: x?.target ?? 0,
            dropProbability: x?.dropProbability ?? 0,
          };
        });
        const drops = Object.fromEntries(
          REASONS.filter((r) => r.startsWith('drop_')).map((r) => [r, Number(c?.verdicts[r] ?? 0n)]),
        );
        return {
          id: n.id,
          name: n.name,
          weight: n.weight,
          reserve: n.reserve,
          routes: this.authority?.routeCount(n.id) ?? 0,
          // Per shared table: { used, quota, rejections }; and mapWriteFailures.
          quotas: this.authority?.quotas?.(n.id) ?? null,
          forwarded: Number(c?.verdicts.forward ?? 0n),
          toRouter: Number((c?.verdicts.to_vm_control ?? 0n) + (c?.verdicts.to_vm_route ?? 0n)),
          resources,
          drops,
          // Every verdict by reason (from_vm, tc_pass and to_vm_* too): with noNetwork, every packet.
          packets: Object.fromEntries(REASONS.map((r) => [r, Number(c?.verdicts[r] ?? 0n)])),
        };
      }),
    };
  }
}

/** The interfaces of this machine: what start-up, reload and live changes check a config against. */
const LIVE_CHECKS = { interfaceExists: (name: string): boolean => existsSync(`/sys/class/net/${name}`) };

/**
 * Defines the config's networks in the data plane's registry. With `skipTaken`, a network whose
 * name a network being removed still holds is left for after the removal.
 */
function defineNetworks(dp: DataPlane, config: XnetmonConfig, skipTaken: boolean): void {
  for (const net of config.networks) {
    try {
      dp.defineNetwork({ id: net.id, name: net.name });
    } catch (err) {
      if (!(skipTaken && err instanceof ValidationError)) throw err;
    }
  }
}

/**
 * `xnetmon down`: detaches every program of ours (every pinned link, whatever version named it,
 * and the cls_bpf filters on the config's links and vifs) and removes the pins. It loads no BPF object,
 * so it also clears pins of another layout, which a daemon refuses to adopt.
 */
export async function tearDown(configPath: string): Promise<{ detached: string[]; pinDir: string }> {
  const config = await loadConfigFile(configPath);
  const pinDir = config.host.pinDir;
  const detached: string[] = [];
  const links = join(pinDir, 'links');
  for (const name of existsSync(links) ? readdirSync(links).sort() : []) {
    if (detachPinned(join(links, name))) detached.push(name);
  }
  // Kernels before 6.6 hold TC egress (links, and vifs: host -> router accounting) as unpinned
  // cls_bpf filters.
  const tcNames = new Set([
    ...config.host.links.map((l) => l.name),
    ...config.networks.flatMap((n) => n.routers.map((r) => r.vif)),
    ...config.networks.flatMap((n) => n.attachments.flatMap((a) => (a.vif ? [a.vif] : []))),
  ]);
  for (const name of tcNames) {
    let ifindex = 0;
    try {
      ifindex = ifindexOf(name);
    } catch {
      continue; // gone: nothing attached to it
    }
    if (detachTc(ifindex, 'tc-egress')) detached.push(`cls_bpf-${name}`);
  }
  // The pin directory may be a bpffs mount point (with the kernel's own maps.debug and
  // progs.debug): remove what is ours, not the directory.
  for (const entry of existsSync(pinDir) ? readdirSync(pinDir) : []) {
    if (entry.startsWith('xnm_') || entry === 'links') rmSync(join(pinDir, entry), { recursive: true, force: true });
  }
  return { detached, pinDir };
}
