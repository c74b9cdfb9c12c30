// The kernel's BPF run-time statistics: while a BPF_ENABLE_STATS descriptor is open (or the
// kernel.bpf_stats_enabled sysctl is 1), each program's run_time_ns and run_cnt grow with every
// run (two clock reads per run: bench fastpath measures what that costs).
import { SystemCallError } from '../errors/index.js';
import { native, errnoOf } from './libbpf.js';
import type { BpfProgram } from './object.js';

/** BPF_STATS_RUN_TIME of enum bpf_stats_type. */
const BPF_STATS_RUN_TIME = 0;
/** struct bpf_prog_info: size, and run_time_ns / run_cnt offsets (checked against vmlinux's BTF by a test). */
export const PROG_INFO_SIZE = 232;
export const PROG_INFO_RUN_TIME_NS = 192;
export const PROG_INFO_RUN_CNT = 200;

/**
 * Run-time statistics are on while this is open; close() turns them off (unless the sysctl or
 * another holder keeps them on).
 */
export class RunTimeStats {
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
  }

  static enable(): RunTimeStats {
    const fd = native.enable_stats(BPF_STATS_RUN_TIME);
    if (fd < 0) throw new SystemCallError('BPF_ENABLE_STATS', errnoOf(fd));
    return new RunTimeStats(fd);
  }

  close(): void {
    if (this.fd >= 0) native.close(this.fd);
    this.fd = -1;
  }
}

export interface ProgramRunTime {
  runTimeNs: number;
  runCount: number;
}

/** A program's cumulative run time and run count (0 while statistics were never on). */
export function programRunTime(prog: BpfProgram): ProgramRunTime {
  const info = Buffer.alloc(PROG_INFO_SIZE);
  const len = [PROG_INFO_SIZE];
  const ret = native.obj_get_info_by_fd(prog.fd, info, len);
  if (ret < 0) throw new SystemCallError(`BPF_OBJ_GET_INFO_BY_FD(${prog.name})`, errnoOf(ret));
  return {
    runTimeNs: Number(info.readBigUInt64LE(PROG_INFO_RUN_TIME_NS)),
    runCount: Number(info.readBigUInt64LE(PROG_INFO_RUN_CNT)),
  };
}
