// Cross-field rules: what makes the networks of one host not overlap and their reservations fit.
// Paper IV: virtual network definition module ensures that different virtual networks do not overlap.

import { isIPv4, isIPv6 } from 'node:net';
import { configFileSchema, configFromFile, configToFile, issuesFromZod } from './schema.js';
import { AUTO_LISTEN_HOST, splitListenAddress } from './formats.js';
import { quotaIssues } from './quota.js';
import {
  firstOverLimit,
  formatPath,
  formatShare,
  issuesToError,
  type ConfigIssue,
  type IssueRendering,
  type PathSegment,
} from './issues.js';
import type { ConfigChecks, NetworkDefinition, XnetmonConfig } from './types.js';

/** Links the data plane counts and punishes on (bpf/xnetmon.h XNM_MAX_LINKS; a unit test keeps them equal). */
export const MAX_HOST_LINKS = 16;

/** Float slack for sums of shares (0.1 + 0.2 + 0.7 must count as 1). */
const SHARE_SUM_TOLERANCE = 1e-9;

export interface SemanticOptions {
  /** When a sum of reservations is over 1, name this network's field (the one a live change touched). */
  readonly blameNetwork?: string;
}

function networkLabel(index: number, network: NetworkDefinition): string {
  return `networks[${index}] (${network.name})`;
}

/** Every cross-field rule, as issues in file-form paths; `config` has passed the field rules. */
export function semanticIssues(
  config: XnetmonConfig,
  checks: ConfigChecks = {},
  options: SemanticOptions = {},
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (segments: PathSegment[], message: string): void => {
    issues.push({ segments, message });
  };
  const { host, networks } = config;

  // Host links: unique names; they are the only interfaces that reservations and attachments may name.
  const linkIndex = new Map<string, number>();
  host.links.forEach((link, i) => {
    const first = linkIndex.get(link.name);
    if (first !== undefined)
      add(['host', 'links', i, 'name'], `link ${JSON.stringify(link.name)} is already defined at host.links[${first}]`);
    else linkIndex.set(link.name, i);
  });
  const linkList = host.links.map((l) => l.name).join(', ');
  // Each link has a counter and drop slot in the data plane (bpf/xnetmon.h XNM_MAX_LINKS).
  if (host.links.length > MAX_HOST_LINKS) {
    add(
      ['host', 'links', MAX_HOST_LINKS],
      `${host.links.length} links; the data plane has counters and drop probabilities for at most ${MAX_HOST_LINKS}`,
    );
  }

  if (host.metricsListen !== null) {
    const control = splitListenAddress(host.listen);
    const metrics = splitListenAddress(host.metricsListen);
    // A wildcard, "auto" (some of the host's addresses) or a host name (whatever it resolves to)
    // may be any address: it overlaps every address on the same port.
    const anyAddress = (h: string): boolean =>
      h === '0.0.0.0' || h === '::' || h === AUTO_LISTEN_HOST || !(isIPv4(h) || isIPv6(h));
    const overlaps = (x: string, y: string): boolean => x === y || [x, y].some(anyAddress);
    if (
      typeof control !== 'string' &&
      typeof metrics !== 'string' &&
      control.port !== 0 &&
      control.port === metrics.port &&
      overlaps(control.host, metrics.host)
    ) {
      add(
        ['host', 'metrics_listen'],
        `${JSON.stringify(host.metricsListen)} is also host.listen: the secure channel and metrics need different ports`,
      );
    }
  }

  const ids = new Map<number, number>();
  const names = new Map<string, number>();
  const vifs = new Map<string, string>();
  const keys = new Map<string, string>();
  const classificationKeys = new Map<string, string>();
  /** interface/vlan/address -> where it is declared: one owner per address on a segment. */
  const segmentAddresses = new Map<string, string>();

  networks.forEach((network, n) => {
    const at = (...rest: PathSegment[]): PathSegment[] => ['networks', n, ...rest];

    const sameId = ids.get(network.id);
    if (sameId !== undefined)
      add(at('id'), `id ${network.id} is already used by ${networkLabel(sameId, networks[sameId]!)}`);
    else ids.set(network.id, n);

    const sameName = names.get(network.name);
    if (sameName !== undefined)
      add(
        at('name'),
        `name ${JSON.stringify(network.name)} is already used by networks[${sameName}] (id ${networks[sameName]!.id})`,
      );
    else names.set(network.name, n);

    network.routers.forEach((router, r) => {
      const here = formatPath(at('routers', r));
      const vifOwner = vifs.get(router.vif);
      const hostLink = linkIndex.get(router.vif);
      if (hostLink !== undefined) {
        add(
          at('routers', r, 'vif'),
          `${JSON.stringify(router.vif)} is a host link (host.links[${hostLink}]): a vif is a virtual router's own interface and cannot also carry other networks' traffic`,
        );
      } else if (vifOwner !== undefined) {
        add(
          at('routers', r, 'vif'),
          `vif ${JSON.stringify(router.vif)} is already used by ${vifOwner}: one interface cannot belong to two routers`,
        );
      } else {
        vifs.set(router.vif, `${here} (${network.name})`);
      }
      const keyOwner = keys.get(router.clientPublicKey);
      if (keyOwner !== undefined) {
        add(
          at('routers', r, 'client_public_key'),
          `key ${JSON.stringify(router.clientPublicKey)} is already the key of ${keyOwner}: each router needs its own key, or one router could update another's data plane`,
        );
      } else {
        keys.set(router.clientPublicKey, `${here} (${network.name})`);
      }
    });

    network.attachments.forEach((attachment, a) => {
      if (!linkIndex.has(attachment.interface)) {
        add(
          at('attachments', a, 'interface'),
          `${JSON.stringify(attachment.interface)} is not a host link (host.links: ${linkList})`,
        );
      }
      // A router may have one vif per segment: an attachment's vif is either one of this
      // network's routers' vifs or an interface no other network and no host link uses.
      if (attachment.vif !== undefined && !network.routers.some((r) => r.vif === attachment.vif)) {
        const owner = vifs.get(attachment.vif);
        if (linkIndex.has(attachment.vif))
          add(
            at('attachments', a, 'vif'),
            `${JSON.stringify(attachment.vif)} is a host link, not a router's interface`,
          );
        else if (owner !== undefined && !owner.endsWith(`(${network.name})`))
          add(at('attachments', a, 'vif'), `vif ${JSON.stringify(attachment.vif)} is already used by ${owner}`);
        else vifs.set(attachment.vif, `${formatPath(at('attachments', a))} (${network.name})`);
      }
      const key = `${attachment.interface}/${attachment.vlan}/${attachment.mac}`;
      const owner = classificationKeys.get(key);
      const tuple = `(interface ${attachment.interface}, vlan ${attachment.vlan}, mac ${attachment.mac})`;
      if (owner !== undefined) {
        add(
          at('attachments', a),
          `${tuple} is already attached at ${owner}: traffic with one classification key cannot belong to two attachments`,
        );
      } else {
        classificationKeys.set(key, `${formatPath(at('attachments', a))} (${network.name})`);
      }
      (attachment.addresses ?? []).forEach((address, i) => {
        const where = `${attachment.interface}/${attachment.vlan}/${address}`;
        const declared = segmentAddresses.get(where);
        if (declared !== undefined && !declared.endsWith(`(${network.name})`)) {
          const segment = `(interface ${attachment.interface}, vlan ${attachment.vlan})`;
          add(
            at('attachments', a, 'addresses', i),
            `${address} on ${segment} is already a router address of ${declared}: ` +
              'two routers cannot own one address on a segment',
          );
        } else if (declared === undefined) {
          segmentAddresses.set(where, `${formatPath(at('attachments', a, 'addresses', i))} (${network.name})`);
        }
      });
    });

    for (const link of Object.keys(network.reserve.links)) {
      if (!linkIndex.has(link))
        add(at('reserve', 'links', link), `${JSON.stringify(link)} is not a host link (host.links: ${linkList})`);
    }
  });

  // Paper IV-A: fixed reservations alpha_i are fractions of the host's resource; together at most 1.
  const shareSums: {
    resource: string;
    segments: (n: number) => PathSegment[];
    share: (network: NetworkDefinition) => number;
  }[] = [
    { resource: 'cpu', segments: (n) => ['networks', n, 'reserve', 'cpu'], share: (net) => net.reserve.cpu },
    { resource: 'fib', segments: (n) => ['networks', n, 'reserve', 'fib'], share: (net) => net.reserve.fib },
    ...host.links.map((link) => ({
      resource: `link ${link.name}`,
      segments: (n: number): PathSegment[] => ['networks', n, 'reserve', 'links', link.name],
      share: (net: NetworkDefinition): number =>
        Object.hasOwn(net.reserve.links, link.name) ? net.reserve.links[link.name]! : 0,
    })),
  ];
  for (const { resource, segments, share } of shareSums) {
    const shares = networks.map(share);
    const total = shares.reduce((sum, s) => sum + s, 0);
    if (total <= 1 + SHARE_SUM_TOLERANCE) continue;
    const blamed = networks.findIndex((net, n) => net.name === options.blameNetwork && shares[n]! > 0);
    const culprit = blamed >= 0 ? blamed : firstOverLimit(shares, 1 + SHARE_SUM_TOLERANCE);
    const terms = networks
      .map((net, n) => ({ net, s: shares[n]! }))
      .filter(({ s }) => s > 0)
      .map(({ net, s }) => `${net.name} ${formatShare(s)}`)
      .join(' + ');
    add(
      segments(culprit),
      `${formatShare(shares[culprit]!)} makes the ${resource} reservations sum to ${formatShare(total)} (${terms}); the sum over all networks must not exceed 1`,
    );
  }

  // Shared tables: quotas and capacities that fit the maps (quota.ts).
  issues.push(...quotaIssues(config, checks, options.blameNetwork));

  if (checks.interfaceExists) {
    const exists = checks.interfaceExists;
    host.links.forEach((link, i) => {
      if (!exists(link.name))
        add(['host', 'links', i, 'name'], `interface ${JSON.stringify(link.name)} does not exist on this machine`);
    });
    networks.forEach((network, n) => {
      network.routers.forEach((router, r) => {
        if (!exists(router.vif))
          add(
            ['networks', n, 'routers', r, 'vif'],
            `interface ${JSON.stringify(router.vif)} does not exist on this machine (create the virtual router's interface before starting the daemon)`,
          );
      });
      network.attachments.forEach((attachment, a) => {
        if (
          attachment.vif !== undefined &&
          !network.routers.some((r) => r.vif === attachment.vif) &&
          !exists(attachment.vif)
        ) {
          add(
            ['networks', n, 'attachments', a, 'vif'],
            `interface ${JSON.stringify(attachment.vif)} does not exist on this machine`,
          );
        }
      });
    });
  }
  return issues;
}

/**
 * Field rules and cross-field rules on a config built in code or parsed from a file; returns the
 * normalized copy (defaults filled in, MACs lower-case) or throws one ValidationError.
 */
export function checkedConfig(
  config: XnetmonConfig,
  checks: ConfigChecks = {},
  options: SemanticOptions = {},
  rendering: IssueRendering = {},
): XnetmonConfig {
  const file = configToFile(config);
  const parsed = configFileSchema.safeParse(file);
  if (!parsed.success) throw issuesToError(issuesFromZod(parsed.error, file), rendering);
  const normalized = configFromFile(parsed.data);
  const issues = semanticIssues(normalized, checks, options);
  if (issues.length > 0) throw issuesToError(issues, rendering);
  return normalized;
}

/**
 * Throws a ValidationError (path names the field, message the value) unless `config` obeys every
 * field and cross-field rule. `checks.interfaceExists`, when given, must accept every host link and vif.
 */
export function validateConfig(config: XnetmonConfig, checks: ConfigChecks = {}): void {
  checkedConfig(config, checks);
}

export interface ReservedShares {
  readonly cpu: number;
  readonly fib: number;
  /** Per host link (every host link is present, 0 when nothing is reserved on it). */
  readonly links: Readonly<Record<string, number>>;
}

/** Sum of alpha over all networks, per resource (each at most 1 in a valid config). */
export function reservedShares(config: XnetmonConfig): ReservedShares {
  const links: Record<string, number> = {};
  for (const link of config.host.links) {
    links[link.name] = config.networks.reduce(
      (sum, n) => sum + (Object.hasOwn(n.reserve.links, link.name) ? n.reserve.links[link.name]! : 0),
      0,
    );
  }
  return {
    cpu: config.networks.reduce((sum, n) => sum + n.reserve.cpu, 0),
    fib: config.networks.reduce((sum, n) => sum + n.reserve.fib, 0),
    links,
  };
}
