// Live changes: each returns a new, fully checked config or throws; the input is never mutated,
// so a caller that fails half-way through a reload still holds the config it had.

import * as z from 'zod';
import { ValidationError } from '../errors/index.js';
import { checkInterfaceName } from './formats.js';
import { describeValue, formatPath, issuesToError, type PathSegment } from './issues.js';
import { issuesFromZod } from './schema.js';
import type { ConfigChecks, NetworkDefinition, NetworkDefinitionInput, QuotaSettings, XnetmonConfig } from './types.js';
import { checkedConfig } from './validate.js';

/** New values for one network's reservations and weight; `links` entries are merged into reserve.links. */
export interface NetworkChange {
  readonly cpu?: number;
  readonly fib?: number;
  readonly weight?: number;
  readonly links?: Readonly<Record<string, number>>;
  /** Merged into the network's quota; a field set to null returns to the default share. */
  readonly quota?: { readonly [table in keyof QuotaSettings]?: number | null };
}

// Only the shape: the values are judged by the config rules, with the config's paths.
const networkChangeShape = z.strictObject(
  {
    cpu: z.unknown().optional(),
    fib: z.unknown().optional(),
    weight: z.unknown().optional(),
    links: z.record(z.string(), z.unknown(), { error: 'must be a mapping of link name to share' }).optional(),
    quota: z
      .strictObject(
        {
          routes4: z.unknown().optional(),
          routes6: z.unknown().optional(),
          nexthops: z.unknown().optional(),
          neighbours: z.unknown().optional(),
        },
        { error: 'must be a mapping with routes4, routes6, nexthops and/or neighbours' },
      )
      .optional(),
  },
  { error: 'must be a mapping with cpu, fib, weight, links and/or quota' },
);

// The keys of a network given to `net add` (the in-memory, camelCase form): the values are
// judged by the config rules; an unknown key is refused rather than silently dropped.
const anything = z.unknown().optional();
const networkInputShape = z.strictObject(
  {
    id: anything,
    name: anything,
    weight: anything,
    reserve: z
      .strictObject(
        { cpu: anything, fib: anything, links: anything },
        { error: 'must be a mapping with cpu, fib and links' },
      )
      .optional(),
    routers: z
      .array(
        z.strictObject(
          { vif: anything, clientPublicKey: anything },
          { error: 'must be a mapping with vif and clientPublicKey' },
        ),
      )
      .optional(),
    attachments: z
      .array(
        z.strictObject(
          { interface: anything, vlan: anything, mac: anything, vif: anything },
          { error: 'must be a mapping with interface, vlan, mac and optionally vif' },
        ),
      )
      .optional(),
    filterDefault: anything,
    quota: z
      .strictObject(
        { routes4: anything, routes6: anything, nexthops: anything, neighbours: anything },
        { error: 'must be a mapping with routes4, routes6, nexthops and/or neighbours' },
      )
      .optional(),
  },
  {
    error:
      'must be a mapping describing one network (id, name, weight, reserve, routers, attachments, filterDefault, quota)',
  },
);

const PLAIN_NETWORK_NAME = /^[a-z][a-z0-9_-]*$/;

/** Errors about the network being changed say networks.<name>..., as an operator names it. */
function nameNetworkInPaths(index: number, name: unknown) {
  return (segments: readonly PathSegment[]): readonly PathSegment[] => {
    if (typeof name !== 'string' || !PLAIN_NETWORK_NAME.test(name)) return segments;
    if (segments[0] === 'networks' && segments[1] === index) return ['networks', name, ...segments.slice(2)];
    return segments;
  };
}

function unknownNetwork(config: XnetmonConfig, name: string): ValidationError {
  const known = config.networks.map((n) => n.name).join(', ') || 'none';
  return new ValidationError(
    formatPath(['networks', name]),
    `no network named ${describeValue(name)} (networks: ${known})`,
  );
}

/** Sets one network's cpu/fib/link reservations and weight, with every rule of a config file. */
export function applyNetworkChange(
  config: XnetmonConfig,
  networkName: string,
  change: NetworkChange,
  checks: ConfigChecks = {},
): XnetmonConfig {
  const index = config.networks.findIndex((n) => n.name === networkName);
  if (index < 0) throw unknownNetwork(config, networkName);
  const rewrite = nameNetworkInPaths(index, networkName);

  const shape = networkChangeShape.safeParse(change);
  if (!shape.success)
    throw issuesToError(
      issuesFromZod(shape.error, change, { schema: networkChangeShape, prefix: ['networks', index] }),
      { rewrite },
    );

  const network = config.networks[index]!;
  const changed: NetworkDefinition = {
    ...structuredClone(network),
    ...(change.weight !== undefined ? { weight: change.weight } : {}),
    reserve: {
      cpu: change.cpu !== undefined ? change.cpu : network.reserve.cpu,
      fib: change.fib !== undefined ? change.fib : network.reserve.fib,
      links: { ...network.reserve.links, ...change.links },
    },
    quota: mergedQuota(network.quota, change.quota),
  };
  const networks = config.networks.map((n, i) => (i === index ? changed : structuredClone(n)));
  return checkedConfig(
    { host: structuredClone(config.host), networks },
    checks,
    { blameNetwork: networkName },
    { rewrite },
  );
}

function mergedQuota(quota: QuotaSettings, change: NetworkChange['quota']): QuotaSettings {
  const merged: Record<string, unknown> = { ...quota };
  for (const [table, value] of Object.entries(change ?? {})) {
    if (value === null) delete merged[table];
    else if (value !== undefined) merged[table] = value;
  }
  return merged as QuotaSettings;
}

/** Adds a network (fields with a file default may be left out); paths in errors say networks.<name>. */
export function addNetwork(
  config: XnetmonConfig,
  definition: NetworkDefinitionInput,
  checks: ConfigChecks = {},
): XnetmonConfig {
  const index = config.networks.length;
  const name: unknown = definition !== null && typeof definition === 'object' ? definition.name : undefined;
  const shape = networkInputShape.safeParse(definition);
  if (!shape.success) {
    throw issuesToError(
      issuesFromZod(shape.error, definition, { schema: networkInputShape, prefix: ['networks', index] }),
      { rewrite: nameNetworkInPaths(index, name) },
    );
  }
  const networks = [
    ...config.networks.map((n) => structuredClone(n)),
    structuredClone(definition) as NetworkDefinition,
  ];
  const blame = typeof name === 'string' ? { blameNetwork: name } : {};
  return checkedConfig({ host: structuredClone(config.host), networks }, checks, blame, {
    rewrite: nameNetworkInPaths(index, name),
  });
}

/** Removes the named network. */
export function removeNetwork(config: XnetmonConfig, networkName: string, checks: ConfigChecks = {}): XnetmonConfig {
  const index = config.networks.findIndex((n) => n.name === networkName);
  if (index < 0) throw unknownNetwork(config, networkName);
  const networks = config.networks.filter((_, i) => i !== index).map((n) => structuredClone(n));
  return checkedConfig({ host: structuredClone(config.host), networks }, checks);
}

const SHARE_TEXT = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * Parses a CLI reservation such as "eth1=0.5" into { link, share }. `path` is what the error
 * names (e.g. the CLI option); the message always quotes the spec.
 */
export function parseLinkSpec(spec: string, path = 'link'): { link: string; share: number } {
  const malformed = (why: string): ValidationError =>
    new ValidationError(
      path,
      `${describeValue(spec)} is not a link reservation: ${why} (expected LINK=SHARE, e.g. "eth1=0.5")`,
    );
  if (typeof spec !== 'string') throw malformed('not a string');
  const parts = spec.split('=');
  if (parts.length !== 2) throw malformed(parts.length < 2 ? 'it has no "="' : 'it has more than one "="');
  const [link, shareText] = parts as [string, string];
  const nameProblem = checkInterfaceName(link);
  if (nameProblem) throw malformed(`link ${describeValue(link)} ${nameProblem}`);
  if (!SHARE_TEXT.test(shareText)) throw malformed(`share ${describeValue(shareText)} is not a decimal number`);
  const share = Number(shareText);
  if (!(share >= 0 && share <= 1)) throw malformed(`share ${shareText} is out of range: must be a number from 0 to 1`);
  return { link, share };
}
