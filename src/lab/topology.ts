// A whole virtual-router host built from network namespaces on one machine:
//
//   ext machines ──┐                     ┌── vifN.0 ── vrN (eth0)   virtual router of network N
//   (one per net)  ├─ switch ─ ext0 ─ [host: br-ext0 ─ XDP] ...
//                  ┘                     └── ...
//   and the same on ext1. The host namespace holds the "physical" links ext0 and
//   ext1 (veth to a switch namespace each), a bridge per link (Xen's bridged mode:
//   the physical link and the vifs of that segment), and one vif per router and
//   link. Network N uses 10.N.L.0/24 on link L: its router is 10.N.L.1, its
//   external machine on that link 10.N.L.2 (gateway: the router).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { XnetmonError } from '../errors/index.js';
import { uniquePrefix } from './scratch.js';

export interface LabNetworkSpec {
  id: number;
  name: string;
}

export interface LabSpec {
  /** Namespace name prefix; unique by default so that two labs never collide. */
  prefix?: string;
  networks?: LabNetworkSpec[];
  /** Physical links of the host, by name. */
  links?: string[];
  /** Shape each physical link towards its external machines (tbf on the switch's wire), in Mbit/s: a real bottleneck downstream of XDP. */
  linkRateMbit?: number;
}

export interface LabInterface {
  name: string;
  mac: string;
  address: string;
}

export interface LabTopology {
  prefix: string;
  host: {
    ns: string;
    links: { name: string; mac: string; bridge: string; bridgeMac: string; switchNs: string }[];
  };
  networks: {
    id: number;
    name: string;
    router: { ns: string; interfaces: (LabInterface & { link: string; vif: string; subnet: string })[] };
    externals: { ns: string; link: string; iface: LabInterface; gateway: string; subnet: string }[];
  }[];
}

export const DEFAULT_LAB_NETWORKS: LabNetworkSpec[] = [
  { id: 1, name: 'blue' },
  { id: 2, name: 'green' },
  { id: 3, name: 'red' },
];

const hex = (n: number): string => n.toString(16).padStart(2, '0');

/** Deterministic MACs: role byte, network, link. */
export function labMac(role: 'router' | 'ext' | 'host' | 'switch', net: number, link: number): string {
  const roleByte = { router: 0x01, ext: 0x0e, host: 0xf0, switch: 0x5e }[role];
  return `02:00:${hex(roleByte)}:00:${hex(net)}:${hex(link)}`;
}

class Runner {
  readonly log: string[] = [];

  run(args: readonly string[], allowFail = false): string {
    this.log.push(args.join(' '));
    try {
      return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      if (allowFail) return '';
      const e = err as { stderr?: string; message: string };
      throw new XnetmonError('ERR_LAB', `${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  }

  ns(ns: string, args: readonly string[], allowFail = false): string {
    return this.run(['ip', 'netns', 'exec', ns, ...args], allowFail);
  }
}

/** Names of the namespaces of every lab with this prefix (or all xnetmon labs). */
export function labNamespaces(prefix: string): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n !== '' && n.startsWith(prefix));
}

/** Removes every namespace of the lab; safe to call twice or after a half-built lab. */
export function labDown(prefix: string): number {
  const names = labNamespaces(prefix);
  for (const ns of names) {
    // Processes left in the namespace (daemons, iperf3) would keep it alive.
    try {
      const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    } catch {
      /* namespace vanished */
    }
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
  }
  return names.length;
}

/** Builds the lab. On any failure, what was made is removed before the error is thrown. */
export function labUp(spec: LabSpec = {}): LabTopology {
  const prefix = spec.prefix ?? uniquePrefix('xl');
  if (!/^[a-z][a-z0-9]{1,10}$/.test(prefix))
    throw new XnetmonError(
      'ERR_LAB',
      `lab prefix ${JSON.stringify(prefix)} must be 2-11 lower-case letters and digits`,
    );
  if (labNamespaces(prefix).length)
    throw new XnetmonError(
      'ERR_LAB',
      `a lab with prefix ${prefix} already exists (xnetmon lab down --prefix ${prefix})`,
    );
  const networks = spec.networks ?? DEFAULT_LAB_NETWORKS;
  const links = spec.links ?? ['ext0', 'ext1'];
  const r = new Runner();
  const hostNs = `${prefix}host`;
  const topo: LabTopology = { prefix, host: { ns: hostNs, links: [] }, networks: [] };
  try {
    r.run(['ip', 'netns', 'add', hostNs]);
    r.ns(hostNs, ['ip', 'link', 'set', 'lo', 'up']);
    r.ns(hostNs, ['sysctl', '-qw', 'net.ipv4.ip_forward=0']);

    links.forEach((link, l) => {
      const swNs = `${prefix}sw${l}`;
      const bridge = `br-${link}`;
      const mac = labMac('host', 0, l + 0x10);
      const bridgeMac = labMac('host', 0, l);
      r.run(['ip', 'netns', 'add', swNs]);
      r.ns(swNs, ['ip', 'link', 'set', 'lo', 'up']);
      // A switch forwards by MAC and looks no deeper: br_netfilter, where the kernel has it,
      // would validate IP headers and drop malformed frames before they reach the host.
      for (const family of ['iptables', 'ip6tables', 'arptables'])
        r.ns(swNs, ['sysctl', '-qw', `net.bridge.bridge-nf-call-${family}=0`], true);
      // The switch: br0 holds the uplink from the host, br1 the external machines, and a
      // veth pair ("the wire") joins them, so that one qdisc on the wire is a bottleneck
      // shared by every network's traffic towards the link (XDP_REDIRECT skips the host's own qdiscs).
      for (const br of ['br0', 'br1']) {
        // No IGMP/MLD snooping either: it drops multicast frames whose IP header it cannot parse.
        r.ns(swNs, ['ip', 'link', 'add', br, 'type', 'bridge', 'mcast_snooping', '0']);
        r.ns(swNs, ['ip', 'link', 'set', br, 'up']);
      }
      r.ns(swNs, ['ip', 'link', 'add', 'wire', 'type', 'veth', 'peer', 'name', 'wireb']);
      r.ns(swNs, ['ip', 'link', 'set', 'wire', 'master', 'br0', 'up']);
      r.ns(swNs, ['ip', 'link', 'set', 'wireb', 'master', 'br1', 'up']);
      if (spec.linkRateMbit) {
        r.ns(swNs, [
          'tc',
          'qdisc',
          'add',
          'dev',
          'wire',
          'root',
          'tbf',
          'rate',
          `${spec.linkRateMbit}mbit`,
          'burst',
          '32kb',
          'latency',
          '20ms',
        ]);
      }
      r.run([
        'ip',
        'link',
        'add',
        `${prefix}t`,
        'netns',
        hostNs,
        'type',
        'veth',
        'peer',
        'name',
        `${prefix}u`,
        'netns',
        swNs,
      ]);
      r.ns(hostNs, ['ip', 'link', 'set', `${prefix}t`, 'name', link, 'address', mac]);
      r.ns(swNs, ['ip', 'link', 'set', `${prefix}u`, 'name', 'uplink', 'master', 'br0']);
      r.ns(swNs, ['ip', 'link', 'set', 'uplink', 'up']);
      // XDP_REDIRECT into a veth delivers only when the receiving end runs NAPI (GRO on or an XDP program).
      r.ns(swNs, ['ethtool', '-K', 'uplink', 'gro', 'on']);
      // The switch's kernel takes a tag off into the skb on receipt; with VLAN insertion "offloaded"
      // a veth hands it over there, where XDP on the host's link never sees it (a tagged frame would
      // look untagged). A real switch's wire carries the tag in the frame: so must this one's.
      r.ns(swNs, ['ethtool', '-K', 'uplink', 'txvlan', 'off', 'tx-vlan-stag-hw-insert', 'off']);
      r.ns(hostNs, ['ip', 'link', 'add', bridge, 'type', 'bridge']);
      r.ns(hostNs, ['ip', 'link', 'set', bridge, 'address', bridgeMac]);
      r.ns(hostNs, ['ip', 'link', 'set', link, 'master', bridge]);
      r.ns(hostNs, ['ip', 'link', 'set', link, 'up']);
      r.ns(hostNs, ['ip', 'link', 'set', bridge, 'up']);
      topo.host.links.push({ name: link, mac, bridge, bridgeMac, switchNs: swNs });
    });

    for (const net of networks) {
      const vrNs = `${prefix}vr${net.id}`;
      r.run(['ip', 'netns', 'add', vrNs]);
      r.ns(vrNs, ['ip', 'link', 'set', 'lo', 'up']);
      r.ns(vrNs, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      r.ns(vrNs, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
      const entry: LabTopology['networks'][number] = {
        id: net.id,
        name: net.name,
        router: { ns: vrNs, interfaces: [] },
        externals: [],
      };
      links.forEach((link, l) => {
        const vif = `vif${net.id}.${l}`;
        const ifname = `eth${l}`;
        const mac = labMac('router', net.id, l);
        const subnet = `10.${net.id}.${l}.0/24`;
        const address = `10.${net.id}.${l}.1`;
        r.run([
          'ip',
          'link',
          'add',
          `${prefix}t`,
          'netns',
          hostNs,
          'type',
          'veth',
          'peer',
          'name',
          `${prefix}u`,
          'netns',
          vrNs,
        ]);
        r.ns(hostNs, ['ip', 'link', 'set', `${prefix}t`, 'name', vif]);
        r.ns(hostNs, ['ip', 'link', 'set', vif, 'master', topo.host.links[l].bridge, 'up']);
        r.ns(vrNs, ['ip', 'link', 'set', `${prefix}u`, 'name', ifname, 'address', mac]);
        r.ns(vrNs, ['ip', 'addr', 'add', `${address}/24`, 'dev', ifname]);
        r.ns(vrNs, ['ip', 'link', 'set', ifname, 'up']);
        r.ns(vrNs, ['ethtool', '-K', ifname, 'gro', 'on']); // receives control frames redirected by XDP
        // A veth hands the peer partial checksums, which XDP_REDIRECT would carry to a
        // machine that then drops them: compute checksums in software, as a NIC would.
        r.ns(vrNs, ['ethtool', '-K', ifname, 'tx', 'off']);
        entry.router.interfaces.push({ name: ifname, mac, address, link, vif, subnet });

        const extNs = `${prefix}e${net.id}${l}`;
        const extMac = labMac('ext', net.id, l);
        const extAddr = `10.${net.id}.${l}.2`;
        r.run(['ip', 'netns', 'add', extNs]);
        r.ns(extNs, ['ip', 'link', 'set', 'lo', 'up']);
        r.run([
          'ip',
          'link',
          'add',
          `${prefix}t`,
          'netns',
          extNs,
          'type',
          'veth',
          'peer',
          'name',
          `${prefix}u`,
          'netns',
          topo.host.links[l].switchNs,
        ]);
        r.ns(extNs, ['ip', 'link', 'set', `${prefix}t`, 'name', 'eth0', 'address', extMac]);
        r.ns(extNs, ['ip', 'addr', 'add', `${extAddr}/24`, 'dev', 'eth0']);
        r.ns(extNs, ['ethtool', '-K', 'eth0', 'tx', 'off']); // see the router's interfaces
        r.ns(extNs, ['ip', 'link', 'set', 'eth0', 'up']);
        r.ns(extNs, ['ip', 'route', 'add', 'default', 'via', address]);
        if (l === 0) {
          // The host's address on the network's subnet: the router's client reaches the daemon here.
          r.ns(hostNs, ['ip', 'addr', 'add', `10.${net.id}.0.254/24`, 'dev', topo.host.links[0].bridge]);
        }
        const port = `p${net.id}`;
        r.ns(topo.host.links[l].switchNs, ['ip', 'link', 'set', `${prefix}u`, 'name', port, 'master', 'br1', 'up']);
        entry.externals.push({
          ns: extNs,
          link,
          iface: { name: 'eth0', mac: extMac, address: extAddr },
          gateway: address,
          subnet,
        });
      });
      topo.networks.push(entry);
    }
    return topo;
  } catch (err) {
    labDown(prefix);
    throw err;
  }
}

/** Runs a command in a namespace and returns its stdout; a failure throws the child's
 *  error, which keeps its stdout and stderr (ping's summary, for one). */
export function nsExec(ns: string, args: readonly string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Starts a command in a namespace, stdout and stderr piped. */
export function nsSpawn(ns: string, args: readonly string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** IPv4 packets a namespace's stack received (Ip InReceives), or forwarded (ForwDatagrams): unlike
 *  interface counters, blind to the IPv6 multicast and ARP that any link carries. */
export function ipv4InReceives(ns: string, field: 'InReceives' | 'ForwDatagrams' = 'InReceives'): number {
  const lines = nsExec(ns, ['cat', '/proc/net/snmp'])
    .split('\n')
    .filter((l) => l.startsWith('Ip:'));
  return Number(lines[1].split(/\s+/)[lines[0].split(/\s+/).indexOf(field)]);
}
