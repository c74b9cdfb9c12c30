// The layout version of the pinned maps. A daemon re-uses the maps it finds pinned (that is what
// keeps forwarding across a restart), so a daemon of another version must not read them with
// its own struct layouts: libbpf refuses a map whose sizes differ, but a change that keeps the
// sizes (two fields swapped, a flag's meaning) would be silently misread. The daemon records
// the SHA-256 of its layouts in xnm_schema and refuses pins that carry another one, with one
// line that names the command to run.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { XnetmonError } from '../errors/index.js';
import {
  BpfMap,
  ENUMS,
  LAYOUTS,
  MAX_FILTER_RULES,
  MAX_IFACES,
  MAX_LINKS,
  MAX_NETS,
  MAX_NEXTHOPS,
} from '../loader/index.js';
import { DataPlane, type DataPlaneOptions } from './dataplane.js';

/**
 * Bumped by hand when what a field means changes while every layout stays the same (a new
 * flag bit's meaning, a unit): the hash of the layouts cannot see that.
 */
export const SCHEMA_REVISION = 1;

/** The SHA-256 of every mirrored struct layout (checked against BTF by test/bpf/btf.test.ts), enum and limit. */
export function layoutHash(): Buffer {
  const canonical = JSON.stringify({
    revision: SCHEMA_REVISION,
    limits: { MAX_NETS, MAX_LINKS, MAX_NEXTHOPS, MAX_IFACES, MAX_FILTER_RULES },
    layouts: LAYOUTS.map((l) => ({
      name: l.name,
      size: l.size,
      fields: l.fields.map((f) => [f.name, f.offset, f.size, f.type]),
    })),
    enums: ENUMS,
  });
  return createHash('sha256').update(canonical).digest();
}

/** The pinned maps were written by a daemon with other layouts. */
export class PinnedSchemaError extends XnetmonError {
  constructor(
    readonly pinDir: string,
    why: string,
    downCommand: string,
  ) {
    super(
      'ERR_PINNED_SCHEMA',
      `the pinned data plane in ${pinDir} ${why}: run "${downCommand}" to detach it and ` +
        'remove its pins (forwarding stops until the daemon is up again), then start the daemon',
    );
  }
}

export type PinnedSchema =
  /** No pinned maps: a first start, or after xnetmon down. */
  | 'fresh'
  /** Pinned maps of this layout. */
  | 'same'
  /** Pinned maps from before the layout was recorded: re-used when libbpf finds their sizes unchanged. */
  | 'unrecorded';

const SCHEMA_KEY = Buffer.alloc(4);

/** Compares the pinned maps' recorded layout with this build's; throws PinnedSchemaError on a mismatch. */
export function checkPinnedSchema(pinDir: string, downCommand = 'xnetmon down'): PinnedSchema {
  const pins = existsSync(pinDir) ? readdirSync(pinDir).filter((name) => name.startsWith('xnm_')) : [];
  if (pins.length === 0) return 'fresh';
  if (!pins.includes('xnm_schema')) return 'unrecorded';
  const map = BpfMap.fromPin(join(pinDir, 'xnm_schema'));
  let recorded: Buffer | undefined;
  try {
    if (map.valueSize !== 32) {
      const why = `has a layout record of ${map.valueSize} bytes, not 32 (another version of xnetmon wrote it)`;
      throw new PinnedSchemaError(pinDir, why, downCommand);
    }
    recorded = map.lookup(SCHEMA_KEY);
  } finally {
    map.close();
  }
  // All zeros: created by a load that stopped before recording; libbpf still checks the sizes.
  if (!recorded || recorded.every((b) => b === 0)) return 'unrecorded';
  const expected = layoutHash();
  if (!recorded.equals(expected)) {
    const short = (hash: Buffer): string => hash.subarray(0, 6).toString('hex');
    const why = `has layout ${short(recorded)}, this xnetmon uses ${short(expected)} (written by another version)`;
    throw new PinnedSchemaError(pinDir, why, downCommand);
  }
  return 'same';
}

/** Records this build's layout in the data plane's xnm_schema map. */
export function recordSchema(dp: DataPlane): void {
  dp.object.map('xnm_schema').update(SCHEMA_KEY, layoutHash());
}

/**
 * Opens the data plane over its pins as the daemon does: refuses pins of another layout before
 * loading anything, turns libbpf's refusal of a map whose sizes changed into the same one line,
 * and records the layout of the maps it leaves pinned.
 */
export function openPinnedDataPlane(
  options: DataPlaneOptions & { pinDir: string },
  downCommand = 'xnetmon down',
): { dp: DataPlane; schema: PinnedSchema } {
  const schema = checkPinnedSchema(options.pinDir, downCommand);
  let dp: DataPlane;
  try {
    dp = DataPlane.open(options);
  } catch (error) {
    // libbpf: "couldn't reuse pinned map at '...': parameter mismatch" (key, value or max_entries changed).
    const text = `${(error as Error).message} ${(error as { log?: string }).log ?? ''}`;
    if (schema !== 'fresh' && /reuse pinned map|parameter mismatch/.test(text)) {
      throw new PinnedSchemaError(options.pinDir, "holds maps whose sizes differ from this version's", downCommand);
    }
    throw error;
  }
  try {
    recordSchema(dp);
  } catch (error) {
    dp.close();
    throw error;
  }
  return { dp, schema };
}
