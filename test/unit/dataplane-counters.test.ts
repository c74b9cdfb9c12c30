// The one decoder of xnm_net_stats: per-CPU copies summed, 64-bit values across both 32-bit
// halves, the controller's number sums equal to the exact counters. Synthetic buffers laid out as
// a batch lookup returns them; no map is opened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StatsDecoder } from '../../src/dataplane/counters.js';
import { BpfMap, MapType, MAX_LINKS, REASONS, PATHS, netStatsLayout } from '../../src/loader/index.js';

const CPUS = 3;
/** Only the geometry of a map (no file descriptor): what the decoder reads of it. */
const stats = {
  valueSize: netStatsLayout.size,
  valueBufferSize: Math.ceil(netStatsLayout.size / 8) * 8 * CPUS,
} as const;
const geometry = Object.assign(Object.create(BpfMap.prototype) as BpfMap, stats, { type: MapType.PERCPU_ARRAY });

/** Slots 0..slots-1; value(slot, cpu, field, index) is written at its place. */
function buffer(slots: number, value: (slot: number, cpu: number, field: string, index: number) => bigint): Buffer {
  const out = Buffer.alloc(slots * stats.valueBufferSize);
  const cpuStride = stats.valueBufferSize / CPUS;
  const fields: [string, number][] = [
    ['verdict', REASONS.length],
    ['path_packets', PATHS.length],
    ['path_bytes', PATHS.length],
    ['cpu_offered', 1],
    ['cpu_carried', 1],
    ['link_offered', MAX_LINKS],
    ['link_carried', MAX_LINKS],
  ];
  for (let slot = 0; slot < slots; slot++) {
    for (let cpu = 0; cpu < CPUS; cpu++) {
      for (const [field, count] of fields) {
        const at = slot * stats.valueBufferSize + cpu * cpuStride + netStatsLayout.field(field).offset;
        for (let i = 0; i < count; i++) out.writeBigUInt64LE(value(slot, cpu, field, i), at + i * 8);
      }
    }
  }
  return out;
}

test("counters sum every CPU's copy, exactly, above 2^32", () => {
  const big = 5n * 4294967296n + 7n;
  const value = (slot: number, cpu: number, field: string, i: number): bigint =>
    BigInt(slot * 1000 + i) + (field === 'cpu_offered' ? big : BigInt(cpu));
  const decoder = new StatsDecoder(geometry, buffer(3, value));
  const c = decoder.counters(2, 2);
  assert.equal(c.netId, 2);
  assert.equal(c.cpuOffered, 3n * (2000n + big));
  assert.equal(c.cpuCarried, 3n * 2000n + 0n + 1n + 2n);
  assert.equal(c.verdicts[REASONS[1]], 3n * 2001n + 3n);
  assert.equal(c.pathBytes[PATHS[4]], 3n * 2004n + 3n);
  assert.equal(c.linkCarried[MAX_LINKS - 1], 3n * BigInt(2000 + MAX_LINKS - 1) + 3n);
  assert.equal(c.linkOffered.length, MAX_LINKS);
});

test("the controller's number sums equal the exact counters", () => {
  const decoder = new StatsDecoder(
    geometry,
    buffer(4, (slot, cpu, _field, i) => BigInt((slot + 1) * (cpu + 2) * (i + 3)) * 1000003n),
  );
  for (let slot = 0; slot < 4; slot++) {
    const exact = decoder.counters(slot, slot);
    const at = netStatsLayout.field('link_offered').offset >> 2;
    assert.equal(decoder.sum(slot, netStatsLayout.field('cpu_carried').offset >> 2), Number(exact.cpuCarried));
    for (let l = 0; l < MAX_LINKS; l++) assert.equal(decoder.sum(slot, at, l), Number(exact.linkOffered[l]));
  }
});

test('a slot past the buffer reads as zero; an unaligned buffer reads the same', () => {
  const data = buffer(2, () => 9n);
  const decoder = new StatsDecoder(geometry, data);
  assert.equal(decoder.slots, 2);
  assert.equal(decoder.counters(7, 5).cpuOffered, 0n);
  const shifted = Buffer.alloc(data.length + 1);
  data.copy(shifted, 1);
  assert.deepEqual(new StatsDecoder(geometry, shifted.subarray(1)).counters(1, 1), decoder.counters(1, 1));
});
