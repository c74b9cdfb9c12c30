// The loader: libbpf through koffi. Opens, loads and pins BPF objects, attaches
// programs through pinned bpf links, gives map access laid out from the shared
// header, and runs programs with BPF_PROG_TEST_RUN.
export { BpfObject, BpfProgram, LoadError, type OpenOptions } from './object.js';
export {
  BpfMap,
  KeyNotFoundError,
  MapFullError,
  MapType,
  UpdateFlags,
  numPossibleCpus,
  type LookupMode,
  type MapEntries,
} from './map.js';
export {
  attachXdp,
  attachTc,
  detachPinned,
  detachTc,
  pinnedLinkIfindex,
  releaseHeldLinks,
  ifindexOf,
  ifnameOf,
  xdpModeOf,
  tcModeOf,
  type Attachment,
  type XdpMode,
  type TcMode,
  type AttachPoint,
} from './attach.js';
export {
  checkKernel,
  kernelHasTcx,
  KERNEL_FEATURES,
  KERNEL_FLOOR,
  KERNEL_TESTED,
  type KernelFeature,
} from './kernel.js';
export {
  RunTimeStats,
  programRunTime,
  PROG_INFO_SIZE,
  PROG_INFO_RUN_TIME_NS,
  PROG_INFO_RUN_CNT,
  type ProgramRunTime,
} from './runstats.js';
export { runXdp, runTc, TcAction, XdpAction, type RunOptions, type RunResult } from './testrun.js';
export { StructLayout, type Field, type FieldType, type Decoded } from './layout.js';
export * from './layouts.js';
