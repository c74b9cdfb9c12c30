// The lab: virtual-router hosts built from network namespaces on one machine,
// and the PROG_TEST_RUN fixture shared by unit tests and benchmarks.
export { fastpathFixture, MAC, TABLE1_COSTS, type Fixture, type InterfaceMaker } from './fixture.js';
