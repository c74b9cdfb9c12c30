// A lab's state on disk: its topology, its own bpffs for pins, the daemon's config and the
// keys, under /run/xnetmon/labs/PREFIX, so that any command (or test) can find and remove it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XnetmonError } from '../errors/index.js';
import { labUp, labDown, type LabTopology } from './topology.js';
import { writeLabConfig, generateLabKeys, type LabKeys, type LabConfigOptions } from './config.js';

export const LAB_STATE_ROOT = '/run/xnetmon/labs';

export interface LabState {
  topology: LabTopology;
  stateDir: string;
  /** A bpffs of the lab's own: `ip netns exec` hides /sys/fs/bpf. */
  pinDir: string;
  /** The daemon's configuration for this lab (run it in the host namespace). */
  configPath: string;
  keys: LabKeys;
}

export function labStatePath(prefix: string): string {
  return join(LAB_STATE_ROOT, prefix, 'lab.json');
}

export function readLabState(prefix: string): LabState {
  const path = labStatePath(prefix);
  if (!existsSync(path)) throw new XnetmonError('ERR_NO_LAB', `no lab with prefix ${prefix} (expected ${path})`);
  return JSON.parse(readFileSync(path, 'utf8')) as LabState;
}

function mounted(path: string): boolean {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === path);
}

export function createLab(options: {
  prefix?: string;
  linkRateMbit?: number;
  config?: Partial<LabConfigOptions>;
}): LabState {
  const topology = labUp({ prefix: options.prefix, linkRateMbit: options.linkRateMbit });
  const stateDir = join(LAB_STATE_ROOT, topology.prefix);
  const pinDir = join(stateDir, 'bpf');
  try {
    mkdirSync(pinDir, { recursive: true });
    if (!mounted(pinDir)) execFileSync('mount', ['-t', 'bpf', 'bpf', pinDir]);
    const keys = generateLabKeys(topology);
    const { path: configPath } = writeLabConfig(topology, keys, {
      pinDir,
      stateDir,
      linkCapacityMbps: options.linkRateMbit,
      ...options.config,
    });
    const state: LabState = { topology, stateDir, pinDir, configPath, keys };
    writeFileSync(labStatePath(topology.prefix), JSON.stringify(state, null, 2));
    return state;
  } catch (err) {
    destroyLab(topology.prefix);
    throw err;
  }
}

export function destroyLab(prefix: string): number {
  const removed = labDown(prefix);
  const stateDir = join(LAB_STATE_ROOT, prefix);
  const pinDir = join(stateDir, 'bpf');
  if (existsSync(pinDir) && mounted(pinDir)) execFileSync('umount', [pinDir]);
  rmSync(stateDir, { recursive: true, force: true });
  return removed;
}
