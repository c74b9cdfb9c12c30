// The host daemon: loads (or re-adopts) the pinned data plane, writes the network
// definitions into it, attaches the programs, runs the controller every T, and
// serves the admin socket and metrics. Stopping it leaves forwarding running;
// `xnetmon down` is what detaches.
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { createLogger } from './logger.js';
import {
  loadConfigFile, applyNetworkChange, addNetwork, removeNetwork, diffConfigs, serializeConfig, parseLinkSpec,
  type XnetmonConfig, type NetworkChange, type NetworkDefinitionInput, type ConfigDiff,
} from '../config/index.js';
import { DataPlane, parsePrefix, formatPrefix } from '../dataplane/index.js';
import { checkKernel, ifindexOf, REASONS } from '../loader/index.js';
import { release } from 'node:os';
import { FailureLog, XnetmonError, ValidationError } from '../errors/index.js';
import { AdminServer, type AdminRequest, type StatusView } from '../admin/index.js';
import { applySettings, applyTopology, attachAll, removeUndeclaredNetworks, type AppliedTopology, type Drift } from './apply.js';
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

  private constructor(private readonly options: DaemonOptions, config: XnetmonConfig, dp: DataPlane, log: Logger) {
    this.config = config;
    this.dp = dp;
    this.log = log;
    this.metricsFailures = new FailureLog(log);
    applySettings(dp, config, !options.noControl);
    // Reconcile first: what an earlier daemon left of networks this config does not declare goes
    // (before the declared ones are written, so that a vif or MAC they took over is free).
    this.drift = removeUndeclaredNetworks(dp, config);
    if (this.drift.networks.length) log.warn({ networks: this.drift.networks, entries: this.drift.entries }, 'drift repaired: networks the configuration does not declare were removed from the data plane');
    this.topology = applyTopology(dp, config);
    const attached = attachAll(dp, this.topology, config);
    for (const a of attached) {
      if (a.mode === 'generic') log.warn({ ifname: a.ifname }, 'native XDP refused: attached in generic mode (slower)');
      if (a.mode === 'cls_bpf') log.info({ ifname: a.ifname }, 'no tcx links in this kernel (before 6.6): TC program attached as a cls_bpf filter on clsact');
    }
    log.info({ adopted: dp.adopted, attachments: attached.length, replaced: attached.filter((a) => a.replaced).length }, dp.adopted ? 'data plane re-adopted from pins' : 'data plane loaded');
    this.cpu = createDaemonCpu(dp, config, !options.noControl, log);
    this.controller = new Controller({
      cpu: this.cpu.meter,
      config,
      source: dataPlaneSource(dp, (id) => this.authority?.routeCount(id) ?? 0, (id) => this.authority?.routeDemand?.(id) ?? this.authority?.routeCount(id) ?? 0),
      sink: options.noControl ? { write: () => undefined } : dataPlaneSink(dp),
      memory: { evict: (id, f) => this.authority?.memory.evict(id, f), restore: (id) => this.authority?.memory.restore(id) },
      linkSlots: new Map(this.topology.links.map((l) => [l.name, l.slot])),
      onPeriod: (report) => this.metrics.observePeriod(report, this.config.host.periodMs),
      logger: log,
    });
  }

  static async start(options: DaemonOptions, authorityFactory?: RouteAuthorityFactory): Promise<Daemon> {
    const log = options.logger ?? createLogger();
    const kernelWarning = checkKernel(release());
    if (kernelWarning) log.warn({ kernel: release() }, kernelWarning);
    const config = await loadConfigFile(options.configPath, { interfaceExists: (name) => existsSync(`/sys/class/net/${name}`) });
    const dp = DataPlane.open({ pinDir: config.host.pinDir, flowCacheSlots: config.host.flowCacheSlots, onLog: (level, message) => { if (level === 'warn') log.warn({ libbpf: message }, 'libbpf'); } });
    const daemon = new Daemon(options, config, dp, log);
    try {
      if (authorityFactory) daemon.authority = await authorityFactory(daemon);
      daemon.controller.start();
      daemon.admin = new AdminServer(config.host.adminSocket, (req) => daemon.handle(req));
      await daemon.admin.listen();
      const metricsListen = options.metricsListen !== undefined ? options.metricsListen : config.host.metricsListen;
      if (metricsListen) daemon.metricsAddress = await daemon.metrics.listen(metricsListen);
      log.info({ admin: config.host.adminSocket, metrics: daemon.metricsAddress, periodMs: config.host.periodMs, law: config.host.controlLaw, control: !options.noControl }, 'xnetmon up');
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
      this.metrics.observeSessions(this.authority?.clients().length ?? 0);
      this.metrics.observeControllerFailures(this.controller.failures.counts());
    } catch (err) {
      this.metricsFailures.report('metrics', { err: (err as Error).message }, 'refreshing metrics failed; the scrape shows the last values read');
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

  /** Validates the new config whole, then applies the difference; on error nothing changes. */
  private commit(next: XnetmonConfig, persist: boolean): ConfigDiff {
    const diff = diffConfigs(this.config, next);
    if (diff.restartRequired) {
      const names = diff.hostChanged.filter((c) => !c.live).map((c) => c.setting).join(', ');
      throw new XnetmonError('ERR_RESTART_REQUIRED', `changing ${names} needs a daemon restart; nothing was applied`);
    }
    // Resolve every interface before touching the data plane, so a missing one changes nothing.
    for (const net of next.networks) {
      for (const a of net.attachments) if (a.vif) ifindexOf(a.vif);
      for (const r of net.routers) ifindexOf(r.vif);
    }
    applySettings(this.dp, next, !this.options.noControl);
    const drift = removeUndeclaredNetworks(this.dp, next);
    if (drift.networks.length) this.drift = drift;
    this.topology = applyTopology(this.dp, next);
    attachAll(this.dp, this.topology, next);
    this.config = next;
    this.cpu.reconfigure(next);
    this.controller.reconfigure(next);
    this.authority?.reconfigure(next);
    if (persist) this.persist();
    this.log.info({ diff }, 'configuration applied');
    return diff;
  }

  /**
   * Writes the running config over the file: to a new file in the same directory, flushed to
   * disk, then renamed over the old one (and the directory flushed), so that a crash or a power
   * cut leaves the old file or the new one, never a truncated one.
   */
  private persist(): void {
    const path = this.options.configPath;
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0o644; // the file keeps its mode
    try {
      const fd = openSync(tmp, 'w', mode);
      try {
        writeSync(fd, serializeConfig(this.config));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }

  async reload(): Promise<ConfigDiff> {
    const next = await loadConfigFile(this.options.configPath, { interfaceExists: (name) => existsSync(`/sys/class/net/${name}`) });
    return this.commit(next, false);
  }

  private network(name: string) {
    const net = this.config.networks.find((n) => n.name === name || String(n.id) === name);
    if (!net) throw new ValidationError(`networks.${name}`, `unknown network ${JSON.stringify(name)} (known: ${this.config.networks.map((n) => n.name).join(', ') || 'none'})`);
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
      case 'status': return this.status();
      case 'net.list': return this.config.networks.map((n) => ({ id: n.id, name: n.name, weight: n.weight, reserve: n.reserve }));
      case 'net.show': return { ...this.network(str('name')), status: this.status().networks.find((n) => n.name === this.network(str('name')).name) };
      case 'net.set': {
        const name = this.network(str('name')).name;
        const change = args.change as NetworkChange;
        return { diff: this.commit(applyNetworkChange(this.config, name, change), true) };
      }
      case 'net.add': return { diff: this.commit(addNetwork(this.config, args.network as NetworkDefinitionInput), true) };
      case 'net.del': return { diff: this.commit(removeNetwork(this.config, this.network(str('name')).name), true) };
      case 'routes': {
        const net = this.network(str('name'));
        const filter = typeof args.prefix === 'string' ? formatPrefix(parsePrefix(args.prefix, 'prefix')) : undefined;
        const routes = this.dp.listRoutes(net.id).filter((r) => !filter || r.prefix === filter);
        return { network: net.name, routes: routes.map((r) => ({ prefix: r.prefix, target: r.target })) };
      }
      case 'clients': return this.authority?.clients() ?? [];
      case 'reload': return { diff: await this.reload() };
      case 'link-spec': return parseLinkSpec(str('spec'));
      default: throw new XnetmonError('ERR_UNKNOWN_COMMAND', `unknown admin command ${JSON.stringify(req.cmd)}`);
    }
  }

  status(): StatusView {
    const report = this.controller.lastReport;
    const counters = new Map(this.dp.readCounters([0, ...this.config.networks.map((n) => n.id)]).map((c) => [c.netId, c]));
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
      attachments: [...this.topology.links.map((l) => l.name), ...this.topology.vifs].map((ifname) => ({ ifname, ...this.dp.attachedModes(ifname) })),
      /** Periods and memory control actions that failed and were survived (see Controller.failures). */
      controllerFailures: this.controller.failures.counts(),
      // Traffic of no network: unclassified frames (the host's own, broadcasts left to the bridge,
      // malformed frames and refused tags before classification), by reason, so that every packet
      // that reached the data plane is counted somewhere an operator looks.
      noNetwork: Object.fromEntries(REASONS.map((r) => [r, Number(counters.get(0)?.verdicts[r] ?? 0n)]).filter(([, v]) => v !== 0)),
      networks: this.config.networks.map((n) => {
        const c = counters.get(n.id);
        const resources = (report?.resources ?? []).map((r) => {
          const x = r.networks.find((y) => y.netId === n.id);
          return { resource: r.resource, capacity: r.capacity, reserved: x?.reserved ?? 0, offered: x?.offered ?? 0, carried: x?.carried ?? 0, target: x?.target ?? 0, dropProbability: x?.dropProbability ?? 0 };
        });
        const drops = Object.fromEntries(REASONS.filter((r) => r.startsWith('drop_')).map((r) => [r, Number(c?.verdicts[r] ?? 0n)]));
        return {
          id: n.id, name: n.name, weight: n.weight, reserve: n.reserve,
          routes: this.authority?.routeCount(n.id) ?? 0,
          // Per shared table: { used, quota, rejections }; and mapWriteFailures.
          quotas: this.authority?.quotas?.(n.id) ?? null,
          forwarded: Number(c?.verdicts.forward ?? 0n), toRouter: Number((c?.verdicts.to_vm_control ?? 0n) + (c?.verdicts.to_vm_route ?? 0n)),
          resources, drops,
          // Every verdict by reason (from_vm, tc_pass and to_vm_* too): with noNetwork, every packet.
          packets: Object.fromEntries(REASONS.map((r) => [r, Number(c?.verdicts[r] ?? 0n)])),
        };
      }),
    };
  }
}

/** `xnetmon down`: detaches every program of the config and removes the pins. */
export async function tearDown(configPath: string): Promise<{ detached: string[]; pinDir: string }> {
  const config = await loadConfigFile(configPath);
  const dp = DataPlane.open({ pinDir: config.host.pinDir });
  const detached: string[] = [];
  try {
    const names = new Set<string>([...config.host.links.map((l) => l.name), ...config.networks.flatMap((n) => [...n.routers.map((r) => r.vif), ...n.attachments.flatMap((a) => (a.vif ? [a.vif] : []))])]);
    for (const name of names) {
      dp.detach(name);
      detached.push(name);
    }
  } finally {
    dp.close();
  }
  // The pin directory may be a bpffs mount point (with the kernel's own maps.debug and
  // progs.debug): remove what is ours, not the directory.
  for (const entry of existsSync(config.host.pinDir) ? readdirSync(config.host.pinDir) : []) {
    if (entry.startsWith('xnm_') || entry === 'links') rmSync(join(config.host.pinDir, entry), { recursive: true, force: true });
  }
  return { detached, pinDir: config.host.pinDir };
}

