// host.listen "auto:PORT" (the default): the secure channel listens on the host's
// addresses on the segments its routers' vifs are on, not on every address, so the
// channel is not offered on a management or uplink network that no router uses.
import { existsSync, realpathSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { basename } from 'node:path';
import { AUTO_LISTEN_HOST, parseListenAddress, type XnetmonConfig } from '../config/index.js';
import { XnetmonError } from '../errors/index.js';

/** The bridge an interface is enslaved to, if any (Xen's bridged mode). */
export function bridgeOf(ifname: string): string | undefined {
  const master = `/sys/class/net/${ifname}/master`;
  if (!existsSync(master)) return undefined;
  return basename(realpathSync(master));
}

/** What the resolution reads from the system; replaced in tests. */
export interface InterfaceProbe {
  /** The bridge an interface is enslaved to (Xen bridged mode), if any. */
  bridgeOf(ifname: string): string | undefined;
  /** Addresses of an interface (none if it does not exist). */
  addressesOf(ifname: string): { address: string; family: 'IPv4' | 'IPv6' }[];
}

export const systemInterfaces: InterfaceProbe = {
  bridgeOf,
  addressesOf: (ifname) => (networkInterfaces()[ifname] ?? []).map((a) => ({ address: a.address, family: a.family })),
};

/**
 * The interfaces that face the routers: each router's vif, or the bridge it is enslaved
 * to, and the bridges of host.links (the vifs of Xen bridged mode are on those bridges).
 */
export function routerFacingInterfaces(config: XnetmonConfig, probe: InterfaceProbe): string[] {
  const names = new Set<string>();
  for (const network of config.networks) {
    for (const router of network.routers) names.add(probe.bridgeOf(router.vif) ?? router.vif);
    for (const attachment of network.attachments)
      if (attachment.vif) names.add(probe.bridgeOf(attachment.vif) ?? attachment.vif);
  }
  for (const link of config.host.links) {
    const bridge = probe.bridgeOf(link.name);
    if (bridge) names.add(bridge);
  }
  return [...names];
}

/**
 * The hosts to listen on for host.listen: the address itself, or for "auto" every IPv4 and
 * IPv6 address of the router-facing interfaces (IPv6 link-local ones left out: they need a
 * scope, and routers reach the host on a routable address). Throws ERR_LISTEN_AUTO if none.
 */
export function resolveChannelListen(
  config: XnetmonConfig,
  probe: InterfaceProbe = systemInterfaces,
): { hosts: string[]; port: number } {
  const { host, port } = parseListenAddress(config.host.listen, 'host.listen', { allowAuto: true });
  if (host !== AUTO_LISTEN_HOST) return { hosts: [host], port };
  const interfaces = routerFacingInterfaces(config, probe);
  const hosts = new Set<string>();
  for (const ifname of interfaces) {
    for (const { address, family } of probe.addressesOf(ifname)) {
      if (family === 'IPv6' && address.toLowerCase().startsWith('fe80:')) continue;
      hosts.add(address);
    }
  }
  if (hosts.size === 0) {
    throw new XnetmonError(
      'ERR_LISTEN_AUTO',
      `host.listen is "${config.host.listen}" but the host has no IPv4 or IPv6 address on its routers' interfaces (${interfaces.join(', ') || 'none'}): ` +
        'give the bridge or vif an address, or set host.listen to an explicit "address:port"',
    );
  }
  return { hosts: [...hosts], port };
}
