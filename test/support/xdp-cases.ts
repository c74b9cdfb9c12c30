// Test support: BPF unit tests as tables (katran style). A case is a built frame, the
// interface it enters on, the verdict and the reason it must be counted with, for which
// network; run() puts it through the real program with BPF_PROG_TEST_RUN.
import assert from 'node:assert/strict';
import type { DataPlane, NetCounters } from '../../src/dataplane/index.js';
import { runXdp, XdpAction, type ReasonName, type PathName } from '../../src/loader/index.js';
import { buildFrame, parseFrame, type FrameSpec } from '../../src/packet/index.js';
import type { Fixture } from '../../src/lab/index.js';

export interface XdpCase {
  name: string;
  frame: FrameSpec | Buffer;
  /** Where the frame enters: the physical link P (default) or blue's vif. */
  ingress?: 'phys' | 'vif1';
  verdict: keyof typeof XdpAction;
  net: number;
  reason: ReasonName;
  path?: PathName;
  check?: (out: ReturnType<typeof parseFrame>, raw: Buffer) => void;
}

export function counters(dp: DataPlane, net: number): NetCounters {
  return dp.readCounters([net])[0];
}

/** Runs one case and checks its verdict, that its reason was counted once for its network, and its path. */
export function runCase(dp: DataPlane, fx: Fixture, c: XdpCase): void {
  const ingress = c.ingress === 'vif1' ? fx.vif1 : fx.phys;
  const frame = Buffer.isBuffer(c.frame) ? c.frame : buildFrame(c.frame);
  const before = counters(dp, c.net);
  const prog = dp.object.program(c.ingress === 'vif1' ? 'xnm_vif_in' : 'xnm_phys_in');
  const result = runXdp(prog, { data: frame, ingressIfindex: ingress });
  const after = counters(dp, c.net);
  assert.equal(result.retval, XdpAction[c.verdict], `${c.name}: verdict`);
  assert.equal(
    after.verdicts[c.reason] - before.verdicts[c.reason],
    1n,
    `${c.name}: reason ${c.reason} counted once for network ${c.net}`,
  );
  if (c.path) assert.equal(after.pathPackets[c.path] - before.pathPackets[c.path], 1n, `${c.name}: path ${c.path}`);
  c.check?.(parseFrame(result.data), result.data);
}
