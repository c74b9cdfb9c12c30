// A BPF object file opened and loaded through libbpf, with its maps pinned under
// a bpffs directory. Loading again with the same directory re-uses the pinned
// maps (libbpf checks they are compatible) and never flushes them: that is what
// keeps forwarding state across a daemon restart.
import { mkdirSync } from 'node:fs';
import { XnetmonError, SystemCallError } from '../errors/index.js';
import { native, errnoOf, lastErrno, setLibbpfPrint, type NativePointer } from './libbpf.js';
import { BpfMap } from './map.js';

/** The kernel refused the program; `log` holds the verifier's explanation. */
export class LoadError extends XnetmonError {
  readonly errno: number;
  readonly log: string;

  constructor(path: string, errno: number, log: string) {
    const tail = log.trim().split('\n').slice(-8).join('\n');
    super('ERR_BPF_LOAD', `loading ${path} failed (errno ${errno})${tail ? `:\n${tail}` : ''}`);
    this.errno = errno;
    this.log = log;
  }
}

export interface OpenOptions {
  /** bpffs directory for pinned maps; maps are not pinned when absent. */
  pinDir?: string;
  /** Only these maps are pinned (default: every map but .rodata/.bss/.data). */
  pinMaps?: readonly string[];
  /** Never pinned: caches, which a restart may start empty and with another size. */
  transientMaps?: readonly string[];
  /** Override max_entries before load (benchmarks, tests). */
  maxEntries?: Readonly<Record<string, number>>;
  /** libbpf messages at info/debug level. */
  onLog?: (level: 'warn' | 'info' | 'debug', message: string) => void;
  /** The verifier's log level for every program (4: its statistics only); libbpf prints the log
   *  of each loaded program, kept in `loadLog`. */
  verifierLogLevel?: number;
}

const LEVELS = ['warn', 'info', 'debug'] as const;
const MANUAL_PIN_TYPES: ReadonlySet<number> = new Set([14 /* DEVMAP */, 25 /* DEVMAP_HASH */]);

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}
}

export class BpfObject {
  readonly path: string;
  private handle: NativePointer | null;
  private readonly maps = new Map<string, BpfMap>();
  private readonly programs = new Map<string, BpfProgram>();
  /** Maps that existed pinned before this load and were re-used. */
  readonly reusedMaps: readonly string[];
  /** What libbpf printed while loading (with `verifierLogLevel`, each program's verifier log). */
  readonly loadLog: string;

  private constructor(path: string, handle: NativePointer, reused: string[], loadLog: string) {
    this.path = path;
    this.handle = handle;
    this.reusedMaps = reused;
    this.loadLog = loadLog;
    for (let m = native.object_next_map(handle, null); m; m = native.object_next_map(handle, m)) {
      const name = native.map_name(m);
      this.maps.set(
        name,
        new BpfMap(
          name,
          native.map_fd(m),
          native.map_type(m),
          native.map_key_size(m),
          native.map_value_size(m),
          native.map_max_entries(m),
        ),
      );
    }
    for (let p = native.object_next_program(handle, null); p; p = native.object_next_program(handle, p)) {
      const name = native.program_name(p);
      this.programs.set(name, new BpfProgram(name, native.program_fd(p)));
    }
  }

  static load(path: string, options: OpenOptions = {}): BpfObject {
    let log = '';
    setLibbpfPrint((level, message) => {
      log += message;
      if (level > 0) options.onLog?.(LEVELS[Math.min(level, 2)], message.trimEnd());
    });
    const handle = native.object_open_file(path, null);
    if (!handle) throw new LoadError(path, lastErrno(), log);

    const reused: string[] = [];
    const manualPins: [NativePointer, string][] = [];
    try {
      if (options.pinDir) mkdirSync(options.pinDir, { recursive: true });
      for (let m = native.object_next_map(handle, null); m; m = native.object_next_map(handle, m)) {
        const name = native.map_name(m);
        const limit = options.maxEntries?.[name];
        if (limit !== undefined) {
          const ret = native.map_set_max_entries(m, limit);
          if (ret < 0) throw new SystemCallError(`bpf_map__set_max_entries(${name})`, errnoOf(ret));
        }
        if (!options.pinDir || name.startsWith('.') || name.includes('.')) continue;
        if (options.pinMaps && !options.pinMaps.includes(name)) continue;
        if (options.transientMaps?.includes(name)) continue;
        if (MANUAL_PIN_TYPES.has(native.map_type(m))) {
          // The kernel adds BPF_F_RDONLY_PROG to devmaps, so libbpf's compatibility check
          // refuses the pinned one: re-use it by fd ourselves, and pin after load.
          const pinned = native.obj_get(`${options.pinDir}/${name}`);
          if (pinned >= 0) {
            const ret = native.map_reuse_fd(m, pinned);
            native.close(pinned);
            if (ret < 0) throw new SystemCallError(`bpf_map__reuse_fd(${name})`, errnoOf(ret));
            reused.push(name);
          } else {
            manualPins.push([m, `${options.pinDir}/${name}`]);
          }
          continue;
        }
        const ret = native.map_set_pin_path(m, `${options.pinDir}/${name}`);
        if (ret < 0) throw new SystemCallError(`bpf_map__set_pin_path(${name})`, errnoOf(ret));
        const existing = native.obj_get(`${options.pinDir}/${name}`);
        if (existing >= 0) {
          reused.push(name);
          native.close(existing);
        }
      }
      if (options.verifierLogLevel !== undefined) {
        for (let p = native.object_next_program(handle, null); p; p = native.object_next_program(handle, p)) {
          const set = native.program_set_log_level(p, options.verifierLogLevel);
          if (set < 0) throw new SystemCallError('bpf_program__set_log_level', errnoOf(set));
        }
      }
      const ret = native.object_load(handle);
      if (ret < 0) throw new LoadError(path, errnoOf(ret), log);
      for (const [m, pinPath] of manualPins) {
        const pinned = native.obj_pin(native.map_fd(m), pinPath);
        if (pinned < 0) throw new SystemCallError(`bpf_obj_pin(${pinPath})`, errnoOf(pinned));
      }
      return new BpfObject(path, handle, reused, log);
    } catch (err) {
      native.object_close(handle);
      throw err;
    }
  }

  map(name: string): BpfMap {
    const map = this.maps.get(name);
    if (!map) throw new XnetmonError('ERR_NO_MAP', `${this.path} has no map ${name}`);
    return map;
  }

  program(name: string): BpfProgram {
    const prog = this.programs.get(name);
    if (!prog) throw new XnetmonError('ERR_NO_PROGRAM', `${this.path} has no program ${name}`);
    return prog;
  }

  mapNames(): string[] {
    return [...this.maps.keys()];
  }

  /** Closes the object's file descriptors; pinned maps and attached links live on. */
  close(): void {
    if (this.handle) native.object_close(this.handle);
    this.handle = null;
  }
}
