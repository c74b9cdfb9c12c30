// Which host segment (physical link + VLAN) a virtual router's interface is on. The router
// names its interfaces in its own terms (ifindex, name, MAC); the host forwards on its own
// links. The lead fills a SegmentMap from the host's view; tests inject their own.
import type { NetworkDefinition } from '../config/index.js';
import type { RouterInterface } from '../wire/index.js';

/** A host segment a router interface is on, with what a next hop needs to leave through it. */
export interface SegmentBinding {
  /** Host link name (one of host.links[].name). */
  readonly link: string;
  /** Host ifindex of that link. */
  readonly ifindex: number;
  /** The data plane's slot of that link (counters and drop probabilities). */
  readonly linkSlot: number;
  /** 0 = untagged, else the 802.1Q VLAN id on that link. */
  readonly vlan: number;
  /** The router's MAC on that segment: the source MAC of frames forwarded for it. */
  readonly routerMac: string;
}

export interface SegmentMap {
  /**
   * The segment of `network` that the router's interface `iface` is on, or undefined when
   * it is on none of them. The manager still checks that the answer is one of the network's
   * attachments, so a wrong map cannot give a router another network's segment.
   */
  segmentFor(network: NetworkDefinition, iface: RouterInterface): SegmentBinding | undefined;
}

/** What the host knows of one of its links. */
export interface HostLinkInfo {
  readonly ifindex: number;
  readonly linkSlot: number;
}

/** Explicit router interface names per network: network name -> router ifname -> segment. */
export type RouterInterfaceNames = Readonly<
  Record<string, Readonly<Record<string, { readonly link: string; readonly vlan: number }>>>
>;

/**
 * The usual map: a router interface is on the attachment whose MAC it has (each attachment
 * names the router's MAC on its segment). With `byName`, listed networks are matched by
 * interface name instead (for routers whose interface MACs differ from the attachments').
 */
export function segmentMapFromConfig(
  hostLinks: ReadonlyMap<string, HostLinkInfo>,
  options: { byName?: RouterInterfaceNames } = {},
): SegmentMap {
  return {
    segmentFor(network, iface) {
      const names = options.byName?.[network.name];
      const attachment = names
        ? (() => {
            const wanted = Object.hasOwn(names, iface.name) ? names[iface.name] : undefined;
            return wanted && network.attachments.find((a) => a.interface === wanted.link && a.vlan === wanted.vlan);
          })()
        : iface.mac !== null
          ? network.attachments.find((a) => a.mac.toLowerCase() === iface.mac!.toLowerCase())
          : undefined;
      if (!attachment) return undefined;
      const link = hostLinks.get(attachment.interface);
      if (!link) return undefined;
      return {
        link: attachment.interface,
        ifindex: link.ifindex,
        linkSlot: link.linkSlot,
        vlan: attachment.vlan,
        routerMac: attachment.mac.toLowerCase(),
      };
    },
  };
}
