// The kernel floor: a release under it is refused with one error naming what it lacks; one
// between the floor and the oldest tested release gets a warning; newer ones pass quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKernel, kernelHasTcx, KERNEL_FEATURES, KERNEL_FLOOR } from '../../src/loader/index.js';

test('a kernel under the floor is refused, naming the version and the features it lacks', () => {
  assert.throws(
    () => checkKernel('5.10.0-28-amd64'),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ERR_KERNEL');
      assert.match(err.message, new RegExp(`needs Linux ${KERNEL_FLOOR} or later; this kernel is 5\\.10\\.0-28-amd64`));
      assert.match(err.message, /batch updates of LPM tries \(route loads\) \(5\.13\)/);
      assert.doesNotMatch(err.message, /tcx/, 'a feature with a fallback is never a reason to refuse');
      return true;
    },
  );
  assert.throws(() => checkKernel('4.19.0'), /XDP bpf links \(pinned, hitless bpf_link_update\) \(5\.9\)/);
});

test('between the floor and the oldest tested kernel: a warning; tested and newer: nothing', () => {
  assert.match(checkKernel('5.15.0-91-generic') ?? '', /older than 6\.1/);
  assert.equal(checkKernel('6.1.0-47-amd64'), undefined);
  assert.equal(checkKernel('6.18.44'), undefined);
  assert.match(checkKernel('weird') ?? '', /not understood/);
});

test('tcx from 6.6 on; the floor is the newest feature without a fallback', () => {
  assert.equal(kernelHasTcx('6.1.0-47-amd64'), false);
  assert.equal(kernelHasTcx('6.6.0'), true);
  assert.equal(kernelHasTcx('7.0.1'), true);
  const required = KERNEL_FEATURES.filter((f) => !f.fallback).map((f) => f.since.split('.').map(Number));
  const newest = required.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a));
  assert.equal(newest.join('.'), KERNEL_FLOOR);
});
