// BPF_PROG_TEST_RUN: run a loaded program on a frame in the kernel, without a
// device. The unit-test and benchmark primitive (cilium's Program.run).
import { SystemCallError } from '../errors/index.js';
import { native, errnoOf } from './libbpf.js';
import type { BpfProgram } from './object.js';

export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

export interface RunOptions {
  /** The frame, starting at the Ethernet header. */
  data: Buffer;
  /** Runs in one call; the kernel reports the mean duration. */
  repeat?: number;
  /** XDP: the ingress device the program sees (ctx->ingress_ifindex). */
  ingressIfindex?: number;
}

export interface RunResult {
  retval: number;
  /** The frame as the program left it (after rewrites and head adjustments). */
  data: Buffer;
  /** Mean nanoseconds per run, as measured by the kernel. */
  durationNs: number;
}

export function runXdp(prog: BpfProgram, options: RunOptions): RunResult {
  const out = Buffer.alloc(options.data.length + 256);
  let ctx: Buffer | null = null;
  if (options.ingressIfindex) {
    // struct xdp_md { data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex }
    ctx = Buffer.alloc(24);
    ctx.writeUInt32LE(options.data.length, 4);
    ctx.writeUInt32LE(options.ingressIfindex, 12);
  }
  const opts = {
    sz: 80,
    data_in: options.data,
    data_out: out,
    data_size_in: options.data.length,
    data_size_out: out.length,
    ctx_in: ctx,
    ctx_out: null,
    ctx_size_in: ctx ? ctx.length : 0,
    ctx_size_out: 0,
    retval: 0,
    repeat: options.repeat ?? 1,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  const ret = native.prog_test_run_opts(prog.fd, opts);
  if (ret < 0) throw new SystemCallError(`BPF_PROG_TEST_RUN(${prog.name})`, errnoOf(ret));
  return { retval: opts.retval, data: out.subarray(0, opts.data_size_out), durationNs: opts.duration };
}

export const TcAction = { OK: 0, SHOT: 2 } as const;

/** Runs a TC (sched_cls) program on a frame as if it were leaving `ifindex`, having come in on `ingressIfindex`. */
export function runTc(
  prog: BpfProgram,
  options: { data: Buffer; ifindex?: number; ingressIfindex?: number },
): RunResult {
  const out = Buffer.alloc(options.data.length + 256);
  // struct __sk_buff up to ifindex (offset 40): the kernel lets tests set ifindex, ingress_ifindex (36), mark, priority, ...
  const ctx = Buffer.alloc(48);
  if (options.ingressIfindex) ctx.writeUInt32LE(options.ingressIfindex, 36);
  if (options.ifindex) ctx.writeUInt32LE(options.ifindex, 40);
  const opts = {
    sz: 80,
    data_in: options.data,
    data_out: out,
    data_size_in: options.data.length,
    data_size_out: out.length,
    ctx_in: ctx,
    ctx_out: null,
    ctx_size_in: ctx.length,
    ctx_size_out: 0,
    retval: 0,
    repeat: 1,
    duration: 0,
    flags: 0,
    cpu: 0,
    batch_size: 0,
  };
  const ret = native.prog_test_run_opts(prog.fd, opts);
  if (ret < 0) throw new SystemCallError(`BPF_PROG_TEST_RUN(${prog.name})`, errnoOf(ret));
  return { retval: opts.retval, data: out.subarray(0, opts.data_size_out), durationNs: opts.duration };
}
