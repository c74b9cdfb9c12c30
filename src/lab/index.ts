// The lab: virtual-router hosts built from network namespaces on one machine,
// and the PROG_TEST_RUN fixture shared by unit tests and benchmarks.
export { fastpathFixture, MAC, TABLE1_COSTS, type Fixture, type InterfaceMaker } from './fixture.js';
export { Scratch, sh, uniquePrefix } from './scratch.js';
export {
  labUp,
  labDown,
  nsExec,
  nsSpawn,
  ipv4InReceives,
  labNamespaces,
  labMac,
  DEFAULT_LAB_NETWORKS,
  type LabSpec,
  type LabTopology,
  type LabNetworkSpec,
} from './topology.js';
export { loadStaticLab, defineLab, attachLab, labRoutes, type StaticLoadResult } from './static.js';
export {
  writeLabConfig,
  generateLabKeys,
  hostAddress,
  LAB_CHANNEL_PORT,
  LAB_METRICS_LISTEN,
  DEFAULT_LAB_RESERVE,
  type LabKeys,
  type LabConfigOptions,
} from './config.js';
export { startBird, birdc, type BirdLab } from './bird.js';
export {
  lineChart,
  labReport,
  windowMean,
  type Series,
  type ReportSample,
  type ReportResource,
  type LabReport,
  type LabReportInput,
} from './report.js';
export { createLab, destroyLab, readLabState, labStatePath, LAB_STATE_ROOT, type LabState } from './state.js';
export {
  overloadHost,
  releaseHost,
  hostInterfaces,
  peerInterfaces,
  napiThreads,
  pinTask,
  cpuSnapshot,
  cpuLoad,
  type CpuSnapshot,
  type OverloadOptions,
} from './overload.js';
