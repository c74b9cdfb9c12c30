// The XNetMon client, run inside each virtual router (`xnetmon client -c client.yaml`).
// Paper IV-B: it watches the router's forwarding table, neighbours and packet filter and
// sends every change to the host's data plane manager over the secure channel.
// docs/manager.md documents client.yaml, what is replicated, and the nftables subset.
export { runClient, UpdateClient, type ClientOptions, type ClientStatus } from './client.js';
export { parseClientConfig, loadClientConfig, type ClientConfig } from './config.js';
export {
  diffSnapshots,
  isEmptyChange,
  sameRoute,
  sameFilter,
  EMPTY_SNAPSHOT,
  type KernelSnapshot,
  type SnapshotChanges,
} from './diff.js';
export {
  parseLinkDump,
  parseRouteDump,
  parseNeighbourDump,
  replicatedInterfaces,
  neighbourSnapshotKey,
  type FibRoute,
  type FibNeighbour,
  type FibOptions,
  type SkippedEntry,
} from './fib.js';
export { parseNftRuleset, type NftWarning, type ParsedFilter } from './nft.js';
export {
  KernelWatcher,
  createCommandRunner,
  snapshotFromDumps,
  type CommandRunner,
  type SnapshotSource,
  type KernelDumps,
  type KernelWatcherOptions,
} from './watcher.js';
