// The file form of the configuration (snake_case YAML, validated with zod) and its conversion
// to and from the in-memory form (camelCase, types.ts). Field rules live here, cross-field rules
// in validate.ts.

import * as z from 'zod';
import { protocolConstants } from '../crypto/index.js';
import { defaultCosts, MAX_PACKET_COST } from './costs.js';
import {
  checkAbsolutePath,
  checkChannelListenAddress,
  checkInterfaceName,
  checkListenAddress,
  checkMac,
  checkNetworkName,
  checkPublicKey,
  checkRouterAddress,
  normalizeAddress,
  checkUnixSocketPath,
  normalizeMac,
} from './formats.js';
import { describeValue, valueAt, type ConfigIssue, type PathSegment } from './issues.js';
import type {
  Attachment,
  CostTable,
  HostSettings,
  LinkDefinition,
  NetworkDefinition,
  NetworkDefinitionInput,
  QuotaSettings,
  Reservation,
  VirtualRouter,
  XnetmonConfig,
} from './types.js';

/** Ranges of the numeric settings (docs/config.md repeats them). */
export const CONFIG_LIMITS = Object.freeze({
  periodMs: { min: 10, max: 10_000 },
  networkId: { min: 1, max: 4095 },
  // Paper IV-A: weight W is an integer with 1 <= W <= 1,000.
  weight: { min: 1, max: 1000 },
  vlan: { min: 0, max: 4094 },
  residualDropBelow: 0.1,
  staleRouteTimeoutS: { min: 0, max: 86_400 },
  eMaxMs: { min: 1, max: 60_000 },
  updateMessagesPerS: { min: 1, max: 1_000_000 },
  updateMessagesBurst: { min: 1, max: 10_000_000 },
  maxLinkCapacityMbps: 10_000_000,
  flowCacheSlotsMax: 1 << 24,
  // A router is a bit in the update manager's owner masks (docs/manager.md, "Several routers").
  routersPerNetwork: 32,
});

export const DEFAULT_WEIGHT = 500;

// ---- field builders: every rule is a sentence that ends up in the error message ----

function numberRule(rule: string, accept: (value: number) => boolean) {
  // z.number() already rejects NaN and +-Infinity (YAML .nan / .inf).
  return z.number({ error: rule }).refine(accept, { error: rule });
}

function integerIn(min: number, max: number) {
  return numberRule(`must be an integer from ${min} to ${max}`, (n) => Number.isInteger(n) && n >= min && n <= max);
}

const fraction = numberRule('must be a number from 0 to 1', (n) => n >= 0 && n <= 1);
const openUnitFraction = numberRule('must be a number greater than 0 and at most 1', (n) => n > 0 && n <= 1);
const positiveNumber = numberRule('must be a number greater than 0', (n) => n > 0);

function text(rule: string, check?: (value: string) => string | undefined) {
  const schema = z.string({ error: rule });
  if (!check) return schema;
  return schema.superRefine((value, ctx) => {
    const problem = check(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });
}

const interfaceName = text('must be an interface name (a string)', checkInterfaceName);
const absolutePath = text('must be an absolute path (a string)', checkAbsolutePath);
const channelListenAddress = text('must be a "host:port" or "auto:port" string', checkChannelListenAddress);
const packetCost = integerIn(0, MAX_PACKET_COST);

// ---- file schema ----

const costsFileSchema = z.strictObject(
  {
    ext_ext: packetCost.default(defaultCosts.extExt),
    ext_vm: packetCost.default(defaultCosts.extVm),
    vm_ext: packetCost.default(defaultCosts.vmExt),
    vm_vm: packetCost.default(defaultCosts.vmVm),
    vm_host: packetCost.default(defaultCosts.vmHost),
  },
  { error: 'must be a mapping of ext_ext, ext_vm, vm_ext, vm_vm, vm_host to costs' },
);

const linkFileSchema = z.strictObject(
  {
    name: interfaceName,
    capacity_mbps: numberRule(
      `must be a number of Mb/s greater than 0 and at most ${CONFIG_LIMITS.maxLinkCapacityMbps}`,
      (n) => n > 0 && n <= CONFIG_LIMITS.maxLinkCapacityMbps,
    ),
  },
  { error: 'must be a mapping with name and capacity_mbps' },
);

const hostFileSchema = z.strictObject(
  {
    pin_dir: absolutePath.default('/sys/fs/bpf/xnetmon'),
    period_ms: integerIn(CONFIG_LIMITS.periodMs.min, CONFIG_LIMITS.periodMs.max).default(100),
    control_law: z.enum(['share', 'algorithm1'], { error: 'must be one of share, algorithm1' }).default('share'),
    beta: openUnitFraction.default(0.9),
    phi_initial: openUnitFraction.default(0.05),
    residual_drop: numberRule(
      `must be a probability from 0 to below ${CONFIG_LIMITS.residualDropBelow}`,
      (n) => n >= 0 && n < CONFIG_LIMITS.residualDropBelow,
    ).default(0.001),
    cpu_capacity: positiveNumber.default(2_000_000),
    cpu_model: z.enum(['table', 'measured'], { error: 'must be one of table, measured' }).default('table'),
    cpu_share: openUnitFraction.default(1),
    fib_capacity: numberRule(
      'must be a whole number of routes greater than 0',
      (n) => Number.isSafeInteger(n) && n > 0,
    ).default(2_000_000),
    fib_critical: openUnitFraction.default(0.9),
    flow_cache_slots: numberRule(
      `must be a power of two from 1 to ${CONFIG_LIMITS.flowCacheSlotsMax}`,
      (n) => Number.isInteger(n) && n >= 1 && n <= CONFIG_LIMITS.flowCacheSlotsMax && (n & (n - 1)) === 0,
    ).default(256),
    xdp_mode: z.enum(['auto', 'native', 'generic'], { error: 'must be one of auto, native, generic' }).default('auto'),
    tc_mode: z.enum(['auto', 'tcx', 'cls_bpf'], { error: 'must be one of auto, tcx, cls_bpf' }).default('auto'),
    costs: costsFileSchema.prefault({}),
    cost_per_kib: packetCost.default(0),
    links: z
      .array(linkFileSchema, { error: 'must be a list of links (name, capacity_mbps)' })
      .min(1, { error: "must list at least one link: the interfaces that carry tenants' traffic" }),
    // Not 0.0.0.0: only the addresses routers reach the host on (docs/config.md, "host.listen").
    listen: channelListenAddress.default('auto:7400'),
    host_private_key_file: absolutePath.default('/etc/xnetmon/host.key'),
    admin_socket: text('must be an absolute path (a string)', checkUnixSocketPath).default('/run/xnetmon/admin.sock'),
    metrics_listen: text('must be a "host:port" string or null', checkListenAddress)
      .nullable()
      .default('127.0.0.1:9469'),
    stale_route_timeout_s: integerIn(
      CONFIG_LIMITS.staleRouteTimeoutS.min,
      CONFIG_LIMITS.staleRouteTimeoutS.max,
    ).default(120),
    e_max_ms: integerIn(CONFIG_LIMITS.eMaxMs.min, CONFIG_LIMITS.eMaxMs.max).default(2000),
    // Each router session's token bucket on update messages (docs/protocol.md §8.1).
    update_messages_per_s: integerIn(
      CONFIG_LIMITS.updateMessagesPerS.min,
      CONFIG_LIMITS.updateMessagesPerS.max,
    ).default(protocolConstants.DEFAULT_SESSION_MESSAGE_LIMIT.perSecond),
    update_messages_burst: integerIn(
      CONFIG_LIMITS.updateMessagesBurst.min,
      CONFIG_LIMITS.updateMessagesBurst.max,
    ).default(protocolConstants.DEFAULT_SESSION_MESSAGE_LIMIT.burst),
  },
  { error: 'must be a mapping of host settings' },
);

const reserveFileSchema = z.strictObject(
  {
    cpu: fraction.default(0),
    fib: fraction.default(0),
    links: z.record(interfaceName, fraction, { error: 'must be a mapping of link name to share' }).default(() => ({})),
  },
  { error: 'must be a mapping with cpu, fib and links' },
);

const routerFileSchema = z.strictObject(
  {
    vif: interfaceName,
    client_public_key: text('must be a base64 string', checkPublicKey),
  },
  { error: 'must be a mapping with vif and client_public_key' },
);

const attachmentFileSchema = z.strictObject(
  {
    interface: interfaceName,
    vlan: integerIn(CONFIG_LIMITS.vlan.min, CONFIG_LIMITS.vlan.max).default(0),
    mac: text('must be a MAC address string in quotes, e.g. "02:00:00:00:01:01"', checkMac),
    vif: interfaceName.optional(),
    addresses: z
      .array(text('must be an IP address string', checkRouterAddress), {
        error: "must be a list of the router's IP addresses on this segment",
      })
      .optional(),
  },
  { error: 'must be a mapping with interface, vlan, mac and optionally vif and addresses' },
);

// Quotas are optional one by one: an absent field takes the network's default share (quota.ts).
const quotaCount = numberRule('must be a whole number of entries, 0 or more', (n) => Number.isSafeInteger(n) && n >= 0);
const quotaFileSchema = z.strictObject(
  {
    routes4: quotaCount.optional(),
    routes6: quotaCount.optional(),
    nexthops: quotaCount.optional(),
    neighbours: quotaCount.optional(),
  },
  { error: 'must be a mapping with routes4, routes6, nexthops and/or neighbours' },
);

export const networkFileSchema = z.strictObject(
  {
    id: integerIn(CONFIG_LIMITS.networkId.min, CONFIG_LIMITS.networkId.max),
    name: text('must be a network name (a string)', checkNetworkName),
    weight: integerIn(CONFIG_LIMITS.weight.min, CONFIG_LIMITS.weight.max).default(DEFAULT_WEIGHT),
    reserve: reserveFileSchema.prefault({}),
    routers: z
      .array(routerFileSchema, { error: 'must be a list of virtual routers (vif, client_public_key)' })
      .min(1, { error: 'must list at least one virtual router' })
      .max(CONFIG_LIMITS.routersPerNetwork, {
        error: `must list at most ${CONFIG_LIMITS.routersPerNetwork} virtual routers`,
      }),
    attachments: z
      .array(attachmentFileSchema, { error: 'must be a list of attachments (interface, vlan, mac)' })
      .default(() => []),
    filter_default: z.enum(['accept', 'drop'], { error: 'must be one of accept, drop' }).default('accept'),
    quota: quotaFileSchema.prefault({}),
  },
  { error: 'must be a mapping describing one network' },
);

export const configFileSchema = z.strictObject(
  {
    host: hostFileSchema,
    networks: z.array(networkFileSchema, { error: 'must be a list of networks' }).default(() => []),
  },
  { error: 'must be a mapping with host and networks' },
);

export type ConfigFile = z.output<typeof configFileSchema>;
type ConfigFileInput = z.input<typeof configFileSchema>;
type NetworkFile = z.output<typeof networkFileSchema>;
type NetworkFileInput = z.input<typeof networkFileSchema>;

// ---- zod issues -> config issues ----

/** The keys an object accepts at this path (for "did you mean" on unknown keys). */
function allowedKeysAt(root: z.ZodType, segments: readonly PathSegment[]): readonly string[] {
  let schema: z.ZodType = root;
  for (const segment of [...segments, undefined]) {
    for (;;) {
      if (
        schema instanceof z.ZodDefault ||
        schema instanceof z.ZodPrefault ||
        schema instanceof z.ZodNullable ||
        schema instanceof z.ZodOptional
      )
        schema = schema.unwrap() as z.ZodType;
      else break;
    }
    if (segment === undefined) break;
    if (schema instanceof z.ZodObject && typeof segment === 'string' && Object.hasOwn(schema.shape, segment)) {
      schema = schema.shape[segment] as z.ZodType;
    } else if (schema instanceof z.ZodArray && typeof segment === 'number') {
      schema = schema.element as z.ZodType;
    } else if (schema instanceof z.ZodRecord) {
      schema = schema.valueType as z.ZodType;
    } else {
      return [];
    }
  }
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const snake = key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
  let hint = '';
  if (snake !== key && allowed.includes(snake)) hint = ` (keys are snake_case: did you mean "${snake}"?)`;
  else {
    const close = allowed.filter((candidate) => editDistance(key, candidate) <= 2);
    if (close.length > 0) hint = ` (did you mean ${close.map((c) => `"${c}"`).join(' or ')}?)`;
  }
  const list = allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '';
  return `unknown key ${JSON.stringify(key)}${hint}${list}`;
}

export interface ZodIssueContext {
  /** The schema that produced the error (for the allowed keys of an object); default: the file schema. */
  readonly schema?: z.ZodType;
  /** Prepended to every path, when `input` is a part of a config. */
  readonly prefix?: readonly PathSegment[];
}

/** Turns zod's issues into messages that name the offending value (looked up in `input`). */
export function issuesFromZod(error: z.ZodError, input: unknown, context: ZodIssueContext = {}): ConfigIssue[] {
  const { schema = configFileSchema, prefix = [] } = context;
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeysAt(schema, path);
      for (const key of issue.keys)
        issues.push({ segments: [...prefix, ...path, key], message: unknownKeyMessage(key, allowed) });
    } else if (issue.code === 'invalid_key') {
      const reason = issue.issues[0]?.message ?? issue.message;
      const key = path[path.length - 1];
      issues.push({ segments: [...prefix, ...path], message: `key ${describeValue(key)} is invalid: ${reason}` });
    } else {
      const value = valueAt(input, path);
      const message =
        value === undefined
          ? `is missing: a value that ${issue.message}`
          : `${describeValue(value)} is invalid: ${issue.message}`;
      issues.push({ segments: [...prefix, ...path], message });
    }
  }
  return issues;
}

// ---- file form <-> memory form ----

function costsFromFile(costs: ConfigFile['host']['costs']): CostTable {
  return { extExt: costs.ext_ext, extVm: costs.ext_vm, vmExt: costs.vm_ext, vmVm: costs.vm_vm, vmHost: costs.vm_host };
}

function networkFromFile(network: NetworkFile): NetworkDefinition {
  const links: Record<string, number> = {};
  for (const [link, share] of Object.entries(network.reserve.links)) links[link] = share;
  return {
    id: network.id,
    name: network.name,
    weight: network.weight,
    reserve: { cpu: network.reserve.cpu, fib: network.reserve.fib, links },
    routers: network.routers.map((r): VirtualRouter => ({ vif: r.vif, clientPublicKey: r.client_public_key })),
    attachments: network.attachments.map(
      (a): Attachment =>
        withoutUndefined({
          interface: a.interface,
          vlan: a.vlan,
          mac: normalizeMac(a.mac),
          vif: a.vif,
          addresses: a.addresses?.map(normalizeAddress),
        }),
    ),
    filterDefault: network.filter_default,
    quota: withoutUndefined({
      routes4: network.quota.routes4,
      routes6: network.quota.routes6,
      nexthops: network.quota.nexthops,
      neighbours: network.quota.neighbours,
    }),
  };
}

export function configFromFile(file: ConfigFile): XnetmonConfig {
  const h = file.host;
  const host: HostSettings = {
    pinDir: h.pin_dir,
    periodMs: h.period_ms,
    controlLaw: h.control_law,
    beta: h.beta,
    phiInitial: h.phi_initial,
    residualDrop: h.residual_drop,
    cpuCapacity: h.cpu_capacity,
    cpuModel: h.cpu_model,
    cpuShare: h.cpu_share,
    fibCapacity: h.fib_capacity,
    fibCritical: h.fib_critical,
    flowCacheSlots: h.flow_cache_slots,
    xdpMode: h.xdp_mode,
    tcMode: h.tc_mode,
    costs: costsFromFile(h.costs),
    costPerKib: h.cost_per_kib,
    links: h.links.map((l): LinkDefinition => ({ name: l.name, capacityMbps: l.capacity_mbps })),
    listen: h.listen,
    hostPrivateKeyFile: h.host_private_key_file,
    adminSocket: h.admin_socket,
    metricsListen: h.metrics_listen,
    staleRouteTimeoutS: h.stale_route_timeout_s,
    eMaxMs: h.e_max_ms,
    updateMessagesPerS: h.update_messages_per_s,
    updateMessagesBurst: h.update_messages_burst,
  };
  return { host, networks: file.networks.map(networkFromFile) };
}

// The inverse copies values unchecked (a config built in code may hold a bad weight): the file
// schema then judges them with the same rules and paths as a file. Fields left undefined are
// omitted so that the file defaults apply.

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function withoutUndefined<T extends Record<string, unknown>>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

/** Converts the objects of a list; anything else is passed through for the schema to reject. */
function mapList<T, R>(list: readonly T[] | undefined, convert: (item: T) => R): R[] | undefined {
  if (list === undefined || !Array.isArray(list)) return list as unknown as R[] | undefined;
  return list.map((item: T) => (isObject(item) ? convert(item) : (item as unknown as R)));
}

export function networkToFile(network: NetworkDefinition | NetworkDefinitionInput): NetworkFileInput {
  if (!isObject(network)) return network as unknown as NetworkFileInput;
  const reserve: Partial<Reservation> | undefined = network.reserve;
  const quota: QuotaSettings | undefined = network.quota;
  return withoutUndefined({
    id: network.id,
    name: network.name,
    weight: network.weight,
    reserve: isObject(reserve)
      ? withoutUndefined({
          cpu: reserve.cpu,
          fib: reserve.fib,
          links: isObject(reserve.links) ? { ...reserve.links } : reserve.links,
        })
      : reserve,
    routers: mapList(network.routers, (r) => withoutUndefined({ vif: r.vif, client_public_key: r.clientPublicKey })),
    attachments: mapList(network.attachments, (a) =>
      withoutUndefined({ interface: a.interface, vlan: a.vlan, mac: a.mac, vif: a.vif, addresses: a.addresses }),
    ),
    filter_default: network.filterDefault,
    quota: isObject(quota)
      ? withoutUndefined({
          routes4: quota.routes4,
          routes6: quota.routes6,
          nexthops: quota.nexthops,
          neighbours: quota.neighbours,
        })
      : quota,
  }) as NetworkFileInput;
}

export function configToFile(config: XnetmonConfig): ConfigFileInput {
  if (!isObject(config)) return config as unknown as ConfigFileInput;
  const h = config.host;
  const host = isObject(h)
    ? withoutUndefined({
        pin_dir: h.pinDir,
        period_ms: h.periodMs,
        control_law: h.controlLaw,
        beta: h.beta,
        phi_initial: h.phiInitial,
        residual_drop: h.residualDrop,
        cpu_capacity: h.cpuCapacity,
        cpu_model: h.cpuModel,
        cpu_share: h.cpuShare,
        fib_capacity: h.fibCapacity,
        fib_critical: h.fibCritical,
        flow_cache_slots: h.flowCacheSlots,
        xdp_mode: h.xdpMode,
        tc_mode: h.tcMode,
        costs: isObject(h.costs)
          ? withoutUndefined({
              ext_ext: h.costs.extExt,
              ext_vm: h.costs.extVm,
              vm_ext: h.costs.vmExt,
              vm_vm: h.costs.vmVm,
              vm_host: h.costs.vmHost,
            })
          : h.costs,
        cost_per_kib: h.costPerKib,
        links: mapList(h.links, (l) => withoutUndefined({ name: l.name, capacity_mbps: l.capacityMbps })),
        listen: h.listen,
        host_private_key_file: h.hostPrivateKeyFile,
        admin_socket: h.adminSocket,
        metrics_listen: h.metricsListen,
        stale_route_timeout_s: h.staleRouteTimeoutS,
        e_max_ms: h.eMaxMs,
        update_messages_per_s: h.updateMessagesPerS,
        update_messages_burst: h.updateMessagesBurst,
      })
    : h;
  return withoutUndefined({ host, networks: mapList(config.networks, networkToFile) }) as ConfigFileInput;
}
