// Typed-enough access to one BPF map by file descriptor. Keys and values are
// Buffers laid out by src/loader/layouts.ts; a per-CPU value comes back as one
// copy per possible CPU, each rounded up to 8 bytes (the caller sums them).
import { XnetmonError, SystemCallError } from '../errors/index.js';
import { native, errnoOf } from './libbpf.js';

export const MapType = { HASH: 1, ARRAY: 2, PERCPU_HASH: 5, PERCPU_ARRAY: 6, LPM_TRIE: 11, DEVMAP_HASH: 25 } as const;
const PERCPU_TYPES: ReadonlySet<number> = new Set([
  MapType.PERCPU_HASH,
  MapType.PERCPU_ARRAY,
  10 /* LRU_PERCPU_HASH */,
]);

export const UpdateFlags = { ANY: 0, NOEXIST: 1, EXIST: 2 } as const;

const ENOENT = 2;
const ENOSPC = 28;
const E2BIG = 7;
const EINVAL = 22;
const EOPNOTSUPP = 95;
/** The kernel's internal "operation not supported" (the batch commands answer it for map types without batch ops). */
const ENOTSUPP = 524;

/**
 * How a whole-map read went: one BPF_MAP_LOOKUP_BATCH per chunk, or (where the kernel refuses
 * batch lookups for the map type, as older kernels do for LPM tries) get_next_key and a lookup per key.
 */
export type LookupMode = 'batch' | 'per-key';

/** A whole-map read: keys and values back to back, in the kernel's order. */
export interface MapEntries {
  keys: Buffer;
  values: Buffer;
  count: number;
  mode: LookupMode;
}

/** A lookup or delete of a key the map does not hold. */
export class KeyNotFoundError extends XnetmonError {
  constructor(map: string) {
    super('ERR_KEY_NOT_FOUND', `${map}: no such key`);
  }
}

/** The map has no room left (max_entries reached). */
export class MapFullError extends XnetmonError {
  readonly errno: number;
  constructor(map: string, errno: number) {
    super('ERR_MAP_FULL', `${map} is full (${errno === E2BIG ? 'E2BIG' : 'ENOSPC'})`);
    this.errno = errno;
  }
}

let possibleCpus = 0;
export function numPossibleCpus(): number {
  if (!possibleCpus) possibleCpus = native.num_possible_cpus();
  return possibleCpus;
}

export class BpfMap {
  /** Bytes one lookup returns: value_size, or round_up(value_size, 8) * CPUs for per-CPU maps. */
  readonly valueBufferSize: number;
  readonly perCpu: boolean;
  /**
   * How whole-map reads go on this kernel: undefined until the first one; 'per-key' once the
   * kernel refused a batch lookup of this map (then later reads do not ask again).
   */
  lookupMode: LookupMode | undefined;
  /** Whether the kernel deletes this map's keys in batches (undefined before the first try). */
  private batchDelete: boolean | undefined;

  constructor(
    readonly name: string,
    readonly fd: number,
    readonly type: number,
    readonly keySize: number,
    readonly valueSize: number,
    readonly maxEntries: number,
  ) {
    this.perCpu = PERCPU_TYPES.has(type);
    this.valueBufferSize = this.perCpu ? Math.ceil(valueSize / 8) * 8 * numPossibleCpus() : valueSize;
  }

  /** Opens a pinned map by path; its geometry comes from the kernel (bpf_map_info). */
  static fromPin(path: string): BpfMap {
    const fd = native.obj_get(path);
    if (fd < 0) throw new SystemCallError(`bpf_obj_get(${path})`, errnoOf(fd));
    // struct bpf_map_info { __u32 type, id, key_size, value_size, max_entries, map_flags; char name[16]; ... }
    const info = Buffer.alloc(128);
    const len = [info.length];
    const ret = native.obj_get_info_by_fd(fd, info, len);
    if (ret < 0) {
      native.close(fd);
      throw new SystemCallError(`bpf_obj_get_info_by_fd(${path})`, errnoOf(ret));
    }
    const name = info.subarray(24, 40).toString('utf8').replace(/\0.*$/s, '');
    return new BpfMap(
      name,
      fd,
      info.readUInt32LE(0),
      info.readUInt32LE(8),
      info.readUInt32LE(12),
      info.readUInt32LE(16),
    );
  }

  /** Closes a map opened with fromPin (maps of an object close with the object). */
  close(): void {
    native.close(this.fd);
  }

  private fail(call: string, ret: number): never {
    const errno = errnoOf(ret);
    if (errno === ENOENT) throw new KeyNotFoundError(this.name);
    if (errno === ENOSPC || errno === E2BIG) throw new MapFullError(this.name, errno);
    throw new SystemCallError(`${call}(${this.name})`, errno);
  }

  private checkKey(key: Buffer): void {
    if (key.length !== this.keySize)
      throw new XnetmonError('ERR_KEY_SIZE', `${this.name}: key of ${key.length} bytes, map takes ${this.keySize}`);
  }

  /** The value, or undefined when the key is absent. */
  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key);
    const value = Buffer.alloc(this.valueBufferSize);
    const ret = native.map_lookup_elem(this.fd, key, value);
    if (ret < 0) {
      if (errnoOf(ret) === ENOENT) return undefined;
      this.fail('bpf_map_lookup_elem', ret);
    }
    return value;
  }

  update(key: Buffer, value: Buffer, flags: number = UpdateFlags.ANY): void {
    this.checkKey(key);
    if (value.length !== this.valueBufferSize)
      throw new XnetmonError(
        'ERR_VALUE_SIZE',
        `${this.name}: value of ${value.length} bytes, map takes ${this.valueBufferSize}`,
      );
    const ret = native.map_update_elem(this.fd, key, value, flags);
    if (ret < 0) this.fail('bpf_map_update_elem', ret);
  }

  /** Deletes the key; returns false when it was absent. */
  delete(key: Buffer): boolean {
    this.checkKey(key);
    const ret = native.map_delete_elem(this.fd, key);
    if (ret < 0) {
      if (errnoOf(ret) === ENOENT) return false;
      this.fail('bpf_map_delete_elem', ret);
    }
    return true;
  }

  /**
   * Deletes `count` keys laid out back to back, one BPF_MAP_DELETE_BATCH per chunk; absent keys are
   * skipped (the kernel stops at one: the batch goes on after it). Returns how many were deleted.
   * Where the kernel has no batch delete for this map type, one delete per key.
   */
  deleteBatch(keys: Buffer, count: number, chunk = 65536): number {
    let deleted = 0;
    for (let at = 0; at < count; ) {
      const n = Math.min(chunk, count - at);
      if (this.batchDelete === false) {
        for (let i = at; i < at + n; i++) {
          if (this.delete(keys.subarray(i * this.keySize, (i + 1) * this.keySize))) deleted++;
        }
        at += n;
        continue;
      }
      const inout = [n];
      const chunkKeys = keys.subarray(at * this.keySize, (at + n) * this.keySize);
      const ret = native.map_delete_batch(this.fd, chunkKeys, inout, null);
      if (ret >= 0) {
        this.batchDelete = true;
        deleted += n;
        at += n;
        continue;
      }
      const errno = errnoOf(ret);
      const done = Math.min(n, inout[0] ?? 0);
      if (errno === ENOENT) {
        deleted += done;
        at += done + 1; // the absent key
      } else if (
        (errno === EINVAL || errno === ENOTSUPP || errno === EOPNOTSUPP) &&
        this.batchDelete === undefined &&
        done === 0
      ) {
        this.batchDelete = false;
      } else {
        const detail = `${deleted + done} of ${count} keys deleted`;
        throw new SystemCallError(`bpf_map_delete_batch(${this.name})`, errno, detail);
      }
    }
    return deleted;
  }

  /**
   * Writes `count` entries laid out back to back in `keys` and `values` with one
   * syscall per chunk. On failure the kernel has applied the entries before the
   * failing one; the error says how many.
   */
  updateBatch(keys: Buffer, values: Buffer, count: number, chunk = 65536): void {
    for (let done = 0; done < count; ) {
      const n = Math.min(chunk, count - done);
      const inout = [n];
      const k = keys.subarray(done * this.keySize, (done + n) * this.keySize);
      const v = values.subarray(done * this.valueBufferSize, (done + n) * this.valueBufferSize);
      const ret = native.map_update_batch(this.fd, k, v, inout, null);
      if (ret < 0) {
        const applied = done + (inout[0] ?? 0);
        const errno = errnoOf(ret);
        if (errno === ENOSPC || errno === E2BIG) throw new MapFullError(this.name, errno);
        throw new SystemCallError(
          `bpf_map_update_batch(${this.name})`,
          errno,
          `${applied} of ${count} entries applied`,
        );
      }
      done += n;
    }
  }

  /**
   * One BPF_MAP_UPDATE_BATCH of `count` entries, without throwing: how many the kernel applied
   * before it stopped, and its errno (0 when all were). A call refused before the first entry
   * may report all of them: the kernel leaves the count as given.
   */
  tryUpdateBatch(keys: Buffer, values: Buffer, count: number): { applied: number; errno: number } {
    const inout = [count];
    const ret = native.map_update_batch(this.fd, keys, values, inout, null);
    if (ret >= 0) return { applied: count, errno: 0 };
    return { applied: Math.min(count, inout[0] ?? 0), errno: errnoOf(ret) };
  }

  /** The error a failed map call of this map stands for (full, absent key, or the errno). */
  errorFor(call: string, errno: number, detail?: string): XnetmonError {
    if (errno === ENOENT) return new KeyNotFoundError(this.name);
    if (errno === ENOSPC || errno === E2BIG) return new MapFullError(this.name, errno);
    return new SystemCallError(`${call}(${this.name})`, errno, detail);
  }

  /**
   * Reads every entry: BPF_MAP_LOOKUP_BATCH in chunks of `batchSize`, or, where the kernel refuses
   * batch lookups for this map's type, get_next_key and one lookup per key (`lookupMode` says
   * which). `mode: 'per-key'` forces the second way (the benchmark's side-by-side).
   */
  lookupAll(batchSize = 4096, mode: LookupMode | undefined = this.lookupMode): MapEntries {
    if (mode !== 'per-key') {
      const read = this.lookupAllBatched(batchSize);
      if (read) {
        this.lookupMode = 'batch';
        return read;
      }
      this.lookupMode = 'per-key';
    }
    return this.lookupAllPerKey();
  }

  /** Undefined when the kernel refuses batch lookups of this map type (before any entry was read). */
  private lookupAllBatched(batchSize: number): MapEntries | undefined {
    const keyChunks: Buffer[] = [];
    const valueChunks: Buffer[] = [];
    let total = 0;
    const outBatch = Buffer.alloc(Math.max(this.keySize, 8));
    let inBatch: Buffer | null = null;
    for (;;) {
      const keys = Buffer.alloc(batchSize * this.keySize);
      const values = Buffer.alloc(batchSize * this.valueBufferSize);
      const inout = [batchSize];
      const ret = native.map_lookup_batch(this.fd, inBatch, outBatch, keys, values, inout, null);
      const got = Math.min(batchSize, inout[0] ?? 0);
      if (ret < 0) {
        const errno = errnoOf(ret);
        if (inBatch === null && got === 0 && (errno === ENOTSUPP || errno === EOPNOTSUPP || errno === EINVAL))
          return undefined;
        if (errno !== ENOENT) this.fail('bpf_map_lookup_batch', ret);
      }
      keyChunks.push(keys.subarray(0, got * this.keySize));
      valueChunks.push(values.subarray(0, got * this.valueBufferSize));
      total += got;
      if (ret < 0) break; // ENOENT: that was the last batch
      inBatch = Buffer.from(outBatch);
    }
    return { keys: Buffer.concat(keyChunks), values: Buffer.concat(valueChunks), count: total, mode: 'batch' };
  }

  private lookupAllPerKey(): MapEntries {
    const keyChunks: Buffer[] = [];
    const valueChunks: Buffer[] = [];
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (!value) continue; // deleted between get_next_key and the lookup
      keyChunks.push(key);
      valueChunks.push(value);
    }
    return {
      keys: Buffer.concat(keyChunks),
      values: Buffer.concat(valueChunks),
      count: keyChunks.length,
      mode: 'per-key',
    };
  }

  /**
   * Array maps: the values of keys 0..count-1 in one batch syscall (the controller's
   * read: only the ids in use, not the whole map).
   */
  lookupPrefix(count: number): Buffer {
    const n = Math.min(count, this.maxEntries);
    const keys = Buffer.alloc(n * this.keySize);
    const values = Buffer.alloc(n * this.valueBufferSize);
    const outBatch = Buffer.alloc(Math.max(this.keySize, 8));
    const inout = [n];
    const ret = native.map_lookup_batch(this.fd, null, outBatch, keys, values, inout, null);
    if (ret < 0 && errnoOf(ret) !== ENOENT) this.fail('bpf_map_lookup_batch', ret);
    return values.subarray(0, (inout[0] ?? 0) * this.valueBufferSize);
  }

  /** The key after `key` in the kernel's order (the first with null); undefined after the last. */
  nextKey(key: Buffer | null): Buffer | undefined {
    if (key) this.checkKey(key);
    const next = Buffer.alloc(this.keySize);
    const ret = native.map_get_next_key(this.fd, key, next);
    if (ret < 0) {
      if (errnoOf(ret) === ENOENT) return undefined;
      this.fail('bpf_map_get_next_key', ret);
    }
    return next;
  }

  /** Every key, by get_next_key: one syscall per key (lookupAll reads whole maps faster). */
  *keys(): Generator<Buffer> {
    for (let key = this.nextKey(null); key; key = this.nextKey(key)) yield key;
  }

  /** Slices of one per-CPU value, one per possible CPU. */
  perCpuSlices(value: Buffer): Buffer[] {
    const stride = Math.ceil(this.valueSize / 8) * 8;
    const out: Buffer[] = [];
    for (let cpu = 0; cpu * stride < value.length; cpu++)
      out.push(value.subarray(cpu * stride, cpu * stride + this.valueSize));
    return out;
  }
}
