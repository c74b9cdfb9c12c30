// What every part of the data plane API shares: its errors, the network id check, 32-bit map
// keys, and the flow cache's generation (bumped by each change that a cached flow remembers).
import { XnetmonError, ValidationError } from '../errors/index.js';
import { MAX_NETS, type BpfMap } from '../loader/index.js';

export class UnknownNetworkError extends XnetmonError {
  constructor(readonly netId: number | string) {
    super('ERR_UNKNOWN_NETWORK', `unknown network ${netId}`);
  }
}

export class DuplicateAttachmentError extends XnetmonError {
  constructor(what: string, owner: number) {
    super('ERR_DUPLICATE_ATTACHMENT', `${what} already belongs to network ${owner}`);
  }
}

export function checkNetId(netId: number, path = 'netId'): void {
  if (!Number.isInteger(netId) || netId < 1 || netId >= MAX_NETS) {
    throw new ValidationError(path, `network id ${netId} must be an integer 1..${MAX_NETS - 1}`);
  }
}

export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/**
 * xnm_route_gen: a cached flow holds the generation it was computed at, so bumping it empties
 * the flow cache. Bump after every change of a route, a classification entry or a filter.
 */
export class FlowCacheGeneration {
  /** `state`: xnm_flow_cache_state, per CPU, the cache's hit-rate window (restarted with each generation). */
  constructor(
    private readonly map: BpfMap,
    private readonly state: BpfMap,
  ) {}

  bump(): void {
    const key = u32Key(0);
    const current = this.map.lookup(key)?.readBigUInt64LE(0) ?? 0n;
    const next = Buffer.alloc(8);
    next.writeBigUInt64LE(current + 1n);
    this.map.update(key, next);
    // An emptied cache is judged afresh: a rest decided on the old slots ends.
    this.state.update(key, Buffer.alloc(this.state.valueBufferSize));
  }
}

/** The per-CPU values of keys 0..count-1 of a per-CPU array, read in one batch, as 32-bit words. */
export interface PerCpuWords {
  words: Uint32Array;
  /** Words per key (every CPU's value). */
  stride: number;
  /** Words per CPU's value (values are 8-byte aligned per CPU). */
  cpuStride: number;
  cpus: number;
  /** The little-endian u64 at word `at`, as a number. */
  u64: (at: number) => number;
}

export function readPerCpuWords(map: BpfMap, count: number): PerCpuWords {
  const values = map.lookupPrefix(count);
  const words = new Uint32Array(values.buffer, values.byteOffset, values.byteLength >> 2);
  const stride = map.valueBufferSize >> 2;
  const cpuStride = (Math.ceil(map.valueSize / 8) * 8) >> 2;
  return { words, stride, cpuStride, cpus: stride / cpuStride, u64: (at) => words[at] + words[at + 1] * 4294967296 };
}
