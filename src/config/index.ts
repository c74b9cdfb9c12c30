// The configuration of an XNetMon host: file format, validation and live changes.
// Paper IV: the virtual network definition module describes each virtual network so that
// networks never overlap, and holds the administrator's reservations (alpha) and weights (W).
// This is the only file other modules import; docs/config.md documents the file format.

export type {
  Attachment,
  ConfigChecks,
  ControlLaw,
  CostTable,
  FilterDefault,
  HostSettings,
  LinkDefinition,
  NetworkDefinition,
  NetworkDefinitionInput,
  QuotaSettings,
  Reservation,
  TableCapacities,
  VirtualRouter,
  XnetmonConfig,
} from './types.js';
export {
  DEFAULT_TABLE_CAPACITIES,
  LAYOUT_LIMITS,
  networkQuotas,
  QUOTA_TABLE_NAMES,
  QUOTA_TABLES,
  quotaShares,
  tableCapacities,
  type QuotaTable,
} from './quota.js';
export { defaultCosts, MAX_PACKET_COST } from './costs.js';
export { CONFIG_LIMITS, DEFAULT_WEIGHT } from './schema.js';
export { parseListenAddress, AUTO_LISTEN_HOST, type ListenAddress } from './formats.js';
export { loadConfigFile, parseConfig, serializeConfig } from './parse.js';
export { reservedShares, validateConfig, MAX_HOST_LINKS, type ReservedShares } from './validate.js';
export { addNetwork, applyNetworkChange, parseLinkSpec, removeNetwork, type NetworkChange } from './changes.js';
export {
  diffConfigs,
  HOST_SETTING_APPLY,
  type ChangedNetwork,
  type ConfigDiff,
  type HostSettingChange,
  type HostSettingName,
  type NetworkField,
} from './diff.js';
