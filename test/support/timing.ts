// Test support: margins taken from the machine's measured speed. The same tests run on this
// kind of machine and in a qemu VM without KVM (make test-kernel), where CPU work is 7-9x and
// Node's start-up up to 20x slower: a deadline that fits one would fail the other.
import { createHash } from 'node:crypto';

/** Milliseconds the calibration workload takes on the development machines (2-core AMD EPYC, Node 20). */
const REFERENCE_MS = 15;

function workloadMs(): number {
  const started = process.hrtime.bigint();
  const data = Buffer.alloc(1 << 16, 7);
  let acc = 0;
  for (let i = 0; i < 200; i++) acc ^= createHash('sha256').update(data).digest()[0];
  for (let i = 0; i < 2_000_000; i++) acc = (acc * 31 + i) | 0;
  if (acc === 42.5) console.log(acc); // keeps the loop from being optimised away
  return Number(process.hrtime.bigint() - started) / 1e6;
}

let measured: number | undefined;

/**
 * How many times slower than the reference this machine runs (at least 1): the fastest of a few
 * runs of a fixed workload, so that a passing hiccup does not inflate it. XNETMON_TEST_SLOWDOWN
 * overrides it.
 */
export function slowdown(): number {
  if (measured === undefined) {
    const forced = Number(process.env.XNETMON_TEST_SLOWDOWN);
    measured = forced > 0 ? forced : Math.max(1, Math.min(...[0, 1, 2].map(workloadMs)) / REFERENCE_MS);
  }
  return measured;
}

/** A deadline in milliseconds for this machine: `ms` on the reference, scaled by slowdown(). */
export function margin(ms: number): number {
  return Math.round(ms * slowdown());
}
