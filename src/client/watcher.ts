// Watching the router's kernel: iproute2 6.1's `ip -json monitor` prints plain text for
// routes and neighbours, so monitor lines are only triggers. Each trigger schedules a full
// JSON re-dump, coalesced: events within `coalesceMs` share one dump, and an event during a
// dump causes another one after it, so no change is lost in a burst. Paper IV-B: after every
// control message arrival the client checks for changes in its table and filter.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { RouterInterface, UpdateLogger } from '../wire/index.js';
import { silentLogger } from '../wire/index.js';
import type { KernelSnapshot } from './diff.js';
import {
  parseLinkDump,
  parseNeighbourDump,
  parseRouteDump,
  replicatedInterfaces,
  type FibOptions,
  type SkippedEntry,
} from './fib.js';
import { parseNftRuleset, type NftWarning } from './nft.js';

/** Runs the commands the watcher needs; injectable (tests, network namespaces). */
export interface CommandRunner {
  /** Runs a command to completion and resolves to its standard output. */
  run(command: string, args: readonly string[]): Promise<string>;
  /** Starts a long-running command: `onLine` per output line, `onExit` when it ends. */
  watch(
    command: string,
    args: readonly string[],
    onLine: () => void,
    onExit: (error?: Error) => void,
  ): { stop(): void };
}

/** Runs commands on this machine, or inside network namespace `netns` (`ip netns exec`). */
export function createCommandRunner(options: { netns?: string } = {}): CommandRunner {
  const wrap = (command: string, args: readonly string[]): [string, string[]] =>
    options.netns ? ['ip', ['netns', 'exec', options.netns, command, ...args]] : [command, [...args]];
  return {
    run(command, args) {
      const [cmd, argv] = wrap(command, args);
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
        // Full tables are large (about 150 bytes of JSON per route): collect chunks, join once.
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
        child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
        child.on('error', reject);
        child.on('close', (code) => {
          if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
          else
            reject(
              new Error(`${cmd} ${argv.join(' ')} exited with ${code}: ${Buffer.concat(err).toString('utf8').trim()}`),
            );
        });
      });
    },
    watch(command, args, onLine, onExit) {
      const [cmd, argv] = wrap(command, args);
      let child: ChildProcess | null = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'ignore'] });
      let stopped = false;
      createInterface({ input: child.stdout! }).on('line', () => {
        if (!stopped) onLine();
      });
      child.on('error', (error) => {
        if (!stopped) onExit(error);
      });
      child.on('exit', (code, signal) => {
        child = null;
        if (!stopped) onExit(new Error(`${cmd} ${argv.join(' ')} ended (${signal ?? code})`));
      });
      return {
        stop() {
          stopped = true;
          child?.kill('SIGTERM');
        },
      };
    },
  };
}

/** A source of kernel snapshots for the client. */
export interface SnapshotSource {
  /** Calls `onSnapshot` with each new snapshot, the first as soon as it is taken. */
  start(onSnapshot: (snapshot: KernelSnapshot) => void): void;
  stop(): void;
}

export interface KernelDumps {
  readonly links: unknown;
  readonly routes4: unknown;
  readonly routes6: unknown;
  readonly neighbours: unknown;
  /** Absent when filter replication is off or nft could not be read. */
  readonly nft?: unknown;
}

/** A snapshot from parsed dumps (pure: the unit tests' entry point). */
export function snapshotFromDumps(
  dumps: KernelDumps,
  options: FibOptions,
): {
  snapshot: KernelSnapshot;
  skipped: SkippedEntry[];
  filterWarnings: NftWarning[];
  interfaces: Map<string, RouterInterface>;
} {
  const links = parseLinkDump(dumps.links);
  const replicated = replicatedInterfaces(links, options);
  const skipped: SkippedEntry[] = [];
  const routes4 = parseRouteDump(dumps.routes4, 4, links, replicated, options, skipped);
  const routes6 = parseRouteDump(dumps.routes6, 6, links, replicated, options, skipped);
  const neighbours = parseNeighbourDump(dumps.neighbours, replicated);
  const filter = dumps.nft === undefined ? null : parseNftRuleset(dumps.nft);
  return {
    snapshot: { routes: new Map([...routes4, ...routes6]), neighbours, filter: filter?.rules ?? null },
    skipped,
    filterWarnings: filter?.warnings ?? [],
    interfaces: replicated,
  };
}

export interface KernelWatcherOptions extends FibOptions {
  readonly filter: boolean;
  readonly coalesceMs: number;
  readonly pollIntervalMs: number;
  readonly commands?: CommandRunner;
  readonly logger?: UpdateLogger;
  /** Delay before a monitor that ended is started again. */
  readonly monitorRestartMs?: number;
}

export class KernelWatcher implements SnapshotSource {
  private readonly commands: CommandRunner;
  private readonly logger: UpdateLogger;
  private readonly monitors: { stop(): void }[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private onSnapshot: ((snapshot: KernelSnapshot) => void) | null = null;
  private coalesceTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setInterval> | null = null;
  private dumping = false;
  private dirty = false;
  private stopped = false;
  private lastFilter: KernelSnapshot['filter'] = null;
  private readonly warned = new Set<string>();
  /** Resolves when the dump in progress (if any) has finished: tests wait on it. */
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly options: KernelWatcherOptions) {
    this.commands = options.commands ?? createCommandRunner();
    this.logger = options.logger ?? silentLogger;
  }

  start(onSnapshot: (snapshot: KernelSnapshot) => void): void {
    this.onSnapshot = onSnapshot;
    // Monitors first, then the first dump: a change between the two still triggers a dump.
    this.startMonitor('ip', ['monitor', 'link', 'route', 'neigh']);
    if (this.options.filter) this.startMonitor('nft', ['monitor', 'ruleset']);
    this.pollTimer = setInterval(() => this.trigger(), this.options.pollIntervalMs);
    this.pollTimer.unref?.();
    this.runDump();
  }

  stop(): void {
    this.stopped = true;
    for (const monitor of this.monitors.splice(0)) monitor.stop();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.coalesceTimer = null;
    this.pollTimer = null;
  }

  /** A change may have happened: dump again once the coalescing interval has passed. */
  trigger(): void {
    if (this.stopped) return;
    if (this.dumping) {
      this.dirty = true;
      return;
    }
    if (this.coalesceTimer) return;
    this.coalesceTimer = setTimeout(() => {
      this.coalesceTimer = null;
      this.runDump();
    }, this.options.coalesceMs);
  }

  /** Waits until no dump is running or scheduled (tests). */
  async settled(): Promise<void> {
    for (;;) {
      await this.idle;
      if (!this.dumping && !this.coalesceTimer && !this.dirty) return;
      await new Promise((resolve) => setTimeout(resolve, this.options.coalesceMs));
    }
  }

  /** Takes one snapshot now, without monitors (tests, `xnetmon client --dump`). */
  async snapshot(): Promise<KernelSnapshot> {
    return (await this.dump()).snapshot;
  }

  private startMonitor(command: string, args: readonly string[], failures = 0): void {
    if (this.stopped) return;
    let sawLine = false;
    const monitor = this.commands.watch(
      command,
      args,
      () => {
        sawLine = true;
        this.trigger();
      },
      (error) => {
        const index = this.monitors.indexOf(monitor);
        if (index >= 0) this.monitors.splice(index, 1);
        if (this.stopped) return;
        // A monitor that keeps failing (no nft binary, say) is retried ever more slowly, and
        // reported once; the periodic re-dump still catches changes meanwhile.
        const attempt = sawLine ? 0 : failures;
        const level = attempt === 0 ? 'warn' : 'debug';
        this.logger[level]({ command, err: error?.message }, 'kernel monitor ended; polling until it is restarted');
        this.trigger();
        const delay = Math.min((this.options.monitorRestartMs ?? 1000) * 2 ** attempt, 60_000);
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.startMonitor(command, args, attempt + 1);
        }, delay);
        this.timers.add(timer);
      },
    );
    this.monitors.push(monitor);
  }

  private runDump(): void {
    if (this.stopped) return;
    this.dumping = true;
    this.dirty = false;
    this.idle = this.dump()
      .then(
        ({ snapshot }) => {
          if (!this.stopped) this.onSnapshot?.(snapshot);
        },
        (error: unknown) => {
          this.logger.warn(
            { err: error instanceof Error ? error.message : String(error) },
            'reading the kernel tables failed; retrying',
          );
          this.dirty = true;
        },
      )
      .finally(() => {
        this.dumping = false;
        if (this.dirty) this.trigger();
      });
  }

  private async dump(): Promise<ReturnType<typeof snapshotFromDumps>> {
    const json = async (command: string, args: string[]): Promise<unknown> => {
      const out = await this.commands.run(command, args);
      return out.trim() === '' ? [] : JSON.parse(out);
    };
    const nft = this.options.filter
      ? json('nft', ['-j', 'list', 'ruleset']).catch((error: unknown) => {
          this.warnOnce(
            'nft',
            { err: error instanceof Error ? error.message : String(error) },
            'cannot read the nftables ruleset; the replicated filter is left as it was',
          );
          return undefined;
        })
      : Promise.resolve(undefined);
    const [links, routes4, routes6, neighbours, ruleset] = await Promise.all([
      json('ip', ['-json', 'link', 'show']),
      json('ip', ['-json', '-4', 'route', 'show', 'table', 'all']),
      json('ip', ['-json', '-6', 'route', 'show', 'table', 'all']),
      json('ip', ['-json', 'neigh', 'show']),
      nft,
    ]);
    const result = snapshotFromDumps(
      { links, routes4, routes6, neighbours, ...(ruleset === undefined ? {} : { nft: ruleset }) },
      this.options,
    );
    for (const w of result.filterWarnings) {
      this.warnOnce(
        `${w.family}|${w.table}|${w.chain}|${w.handle}|${w.reason}`,
        { table: `${w.family} ${w.table}`, chain: w.chain, handle: w.handle },
        `nftables rule not replicated: ${w.reason}`,
      );
    }
    // nft unreadable this time: keep the last filter rather than replace it with nothing.
    if (this.options.filter && ruleset === undefined)
      return { ...result, snapshot: { ...result.snapshot, filter: this.lastFilter } };
    this.lastFilter = result.snapshot.filter;
    return result;
  }

  private warnOnce(key: string, fields: object, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(fields, message);
  }
}
