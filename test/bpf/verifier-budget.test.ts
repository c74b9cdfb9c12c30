// How much of the verifier's budget each program takes on the running kernel. The verifier
// walks every path a packet can take, up to one million instructions per program, and refuses a
// program past that (E2BIG) at load: an added branch can multiply the paths. xnm_phys_in once took
// 94 % on Linux 6.18 while 6.1 took 48 %, so a feature that fit on one kernel could stop the
// daemon on another. This test fails first, with the figures, while there is still room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultObjectPath } from '../../src/dataplane/index.js';
import { BpfObject } from '../../src/loader/index.js';

const VERIFIER_LIMIT = 1_000_000;
/** The share of the limit past which a program fails this test: headroom for other kernels. */
const MAX_SHARE = 0.85;
/** BPF_LOG_STATS: the verifier's statistics, without its walk. */
const LOG_STATS = 4;

test(`every program verifies within ${MAX_SHARE * 100} % of the verifier's instruction budget`, () => {
  const object = BpfObject.load(defaultObjectPath(), { verifierLogLevel: LOG_STATS });
  try {
    // libbpf prints "prog 'NAME': -- BEGIN PROG LOAD LOG --", then the verifier's statistics.
    const processed = [
      ...object.loadLog.matchAll(/prog '(\w+)': -- BEGIN PROG LOAD LOG --[\s\S]*?processed (\d+) insns/g),
    ].map((m) => ({ program: m[1], insns: Number(m[2]) }));
    console.log(
      `verifier: ${processed.map((p) => `${p.program} ${p.insns}`).join(', ')} instructions (limit ${VERIFIER_LIMIT})`,
    );
    for (const name of ['xnm_phys_in', 'xnm_vif_in', 'xnm_link_out'])
      assert.ok(
        processed.some((p) => p.program === name),
        `${name}'s statistics in libbpf's output`,
      );
    for (const p of processed)
      assert.ok(
        p.insns <= MAX_SHARE * VERIFIER_LIMIT,
        `${p.program} took ${p.insns} of the verifier's ${VERIFIER_LIMIT} instructions (${((p.insns / VERIFIER_LIMIT) * 100).toFixed(0)} %)`,
      );
  } finally {
    object.close();
  }
});
