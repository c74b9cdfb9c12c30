// BPF unit tests of what a hostile tenant writes into its frames (docs/security.md): a
// forged source MAC, VLAN tag or ARP/ND address from a vif; stacked tags; a VLAN nobody owns;
// IPv6 extension headers in front of a filtered port; a frame over the egress MTU; a vif
// gone from the egress devices. Each is a built frame run through the real program with
// BPF_PROG_TEST_RUN; the verdict and its reason are checked, counted for the right network.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane } from '../../src/dataplane/index.js';
import { buildFrame, macBytes, type FrameSpec, type Ipv6Spec } from '../../src/packet/index.js';
import { Scratch } from '../support/host.js';
import { counters as countersOf, runCase, type XdpCase } from '../support/xdp-cases.js';
import { fastpathFixture, MAC, type Fixture } from '../../src/lab/index.js';
import { addressBytes } from '../../src/net/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xth');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
  // The routers' own addresses on P (untagged), as their attachments list them; green also
  // owns one on P's VLAN 10, another segment than blue's vif's.
  dp.setSegmentAddresses(1, fx.phys, 0, ['10.1.0.1', '2001:db8:1::1']);
  dp.setSegmentAddresses(2, fx.phys, 0, ['10.2.0.1', '2001:db8:2::1', 'fe80::2']);
  dp.setSegmentAddresses(2, fx.phys, 10, ['10.2.9.1']);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

type Case = XdpCase;

const run = (c: Case): void => runCase(dp, fx, c);

const udp4 = (dst: string) => ({ src: '10.1.0.1', dst, udp: { sport: 1000, dport: 2000 }, payload: 18 });

/** A neighbour solicitation (135) or advertisement (136) for `target` whose source or target
 *  link-layer address option says `lladdr`, sent from `src`. */
function neighbourDiscovery(
  lladdr: string,
  options: { type?: 135 | 136; target?: string; src?: string } = {},
): Ipv6Spec {
  const type = options.type ?? 136;
  const body = Buffer.alloc(16 + 8);
  ipv6Bytes(options.target ?? '2001:db8:1::1').copy(body, 0); // flags sit in the ICMP header's last word
  body[16] = type === 136 ? 2 : 1; // target (NA) or source (NS) link-layer address
  body[17] = 1; // 8 bytes
  macBytes(lladdr).copy(body, 18);
  return { src: options.src ?? '2001:db8:1::1', dst: 'ff02::1', hopLimit: 255, icmp: { type, code: 0 }, payload: body };
}

const neighbourAdvertisement = (lladdr: string): Ipv6Spec => neighbourDiscovery(lladdr);

function ipv6Bytes(text: string): Buffer {
  const bytes = addressBytes(text);
  assert.ok(bytes?.length === 16, text);
  return bytes;
}

describe('anti-spoofing on the vif: what a router claims must be its own', () => {
  const fromVif = (c: Omit<Case, 'ingress' | 'net'>): Case => ({ ingress: 'vif1', net: 1, ...c });
  const cases = (): Case[] => [
    fromVif({
      name: 'its own MAC passes',
      frame: { src: MAC.blueP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') },
      verdict: 'PASS',
      reason: 'from_vm',
    }),
    fromVif({
      name: "its other attachment's MAC passes",
      frame: { src: MAC.blueV, dst: MAC.ext1, ipv4: udp4('10.1.0.2') },
      verdict: 'PASS',
      reason: 'from_vm',
    }),
    fromVif({
      name: "another router's source MAC: dropped, charged to the sender",
      frame: { src: MAC.greenP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') },
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
    fromVif({
      name: "an external machine's MAC (would poison the bridge)",
      frame: { src: MAC.ext2, dst: MAC.ext1, ipv4: udp4('10.1.0.2') },
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
    fromVif({
      name: 'a VLAN tag from an access port',
      frame: { src: MAC.blueP, dst: MAC.ext1, vlan: 20, ipv4: udp4('10.1.0.2') },
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
    fromVif({
      name: 'an 802.1ad tag',
      frame: withOuterTag(buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }), 0x88a8, 20),
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
    fromVif({
      name: 'ARP with its own address',
      frame: {
        src: MAC.blueP,
        dst: 'ff:ff:ff:ff:ff:ff',
        arp: { op: 2, senderMac: MAC.blueP, senderIp: '10.1.0.1', targetIp: '10.1.0.2' },
      },
      verdict: 'PASS',
      reason: 'from_vm',
    }),
    fromVif({
      name: "ARP claiming another router's MAC",
      frame: {
        src: MAC.blueP,
        dst: 'ff:ff:ff:ff:ff:ff',
        arp: { op: 2, senderMac: MAC.greenP, senderIp: '10.2.0.1', targetIp: '10.2.0.2' },
      },
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
    fromVif({
      name: 'neighbour advertisement with its own MAC',
      frame: { src: MAC.blueP, dst: '33:33:00:00:00:01', ipv6: neighbourAdvertisement(MAC.blueP) },
      verdict: 'PASS',
      reason: 'from_vm',
    }),
    fromVif({
      name: "neighbour advertisement claiming another router's MAC",
      frame: { src: MAC.blueP, dst: '33:33:00:00:00:01', ipv6: neighbourAdvertisement(MAC.greenP) },
      verdict: 'DROP',
      reason: 'drop_spoof',
    }),
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });

  test("ARP and neighbour discovery may not claim another router's address on the segment", () => {
    const arp = (op: 1 | 2, senderIp: string): FrameSpec => ({
      src: MAC.blueP,
      dst: 'ff:ff:ff:ff:ff:ff',
      arp: { op, senderMac: MAC.blueP, senderIp, targetIp: '10.1.0.2' },
    });
    for (const c of [
      fromVif({
        name: "ARP reply: green's router address with blue's own MAC",
        frame: arp(2, '10.2.0.1'),
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
      fromVif({
        name: "gratuitous ARP request for green's router address",
        frame: arp(1, '10.2.0.1'),
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
      fromVif({
        name: 'ARP for an address no router owns passes (source IPs are not checked)',
        frame: arp(2, '10.1.0.77'),
        verdict: 'PASS',
        reason: 'from_vm',
      }),
      fromVif({
        name: "ARP for green's address on another segment (VLAN 10) passes",
        frame: arp(2, '10.2.9.1'),
        verdict: 'PASS',
        reason: 'from_vm',
      }),
      fromVif({
        name: 'ARP probe (sender 0.0.0.0) passes',
        frame: arp(1, '0.0.0.0'),
        verdict: 'PASS',
        reason: 'from_vm',
      }),
      fromVif({
        name: "NA for green's router address with blue's own MAC",
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: neighbourDiscovery(MAC.blueP, { target: '2001:db8:2::1' }),
        },
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
      fromVif({
        name: "NA for green's link-local address",
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: neighbourDiscovery(MAC.blueP, { target: 'fe80::2', src: 'fe80::1' }),
        },
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
      fromVif({
        name: "NS sent from green's address (its source would be learned)",
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: neighbourDiscovery(MAC.blueP, { type: 135, target: '2001:db8:1::2', src: '2001:db8:2::1' }),
        },
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
      fromVif({
        name: "NS for green's address from its own passes (asking is no claim)",
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: neighbourDiscovery(MAC.blueP, { type: 135, target: '2001:db8:2::1' }),
        },
        verdict: 'PASS',
        reason: 'from_vm',
      }),
      fromVif({
        name: 'duplicate address detection (source ::) passes',
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: {
            ...neighbourDiscovery(MAC.blueP, { type: 135, target: '2001:db8:1::9' }),
            src: '::',
            payload: ipv6Bytes('2001:db8:1::9'),
          },
        },
        verdict: 'PASS',
        reason: 'from_vm',
      }),
      fromVif({
        name: 'an NA too short to hold its target',
        frame: {
          src: MAC.blueP,
          dst: '33:33:00:00:00:01',
          ipv6: { src: '2001:db8:1::1', dst: 'ff02::1', hopLimit: 255, icmp: { type: 136, code: 0 }, payload: 8 },
        },
        verdict: 'DROP',
        reason: 'drop_spoof',
      }),
    ])
      run(c);
  });

  test('a router address has one owner per segment: a second claim is refused whole, nothing written', () => {
    assert.throws(() => dp.setSegmentAddresses(1, fx.phys, 0, ['10.1.0.1', '10.1.0.3', '10.2.0.1']), {
      code: 'ERR_DUPLICATE_ATTACHMENT',
      message: /10\.2\.0\.1 .* network 2/,
    });
    assert.deepEqual(dp.segmentAddresses(1, fx.phys, 0), ['10.1.0.1', '2001:db8:1::1'], "blue's list is unchanged");
    assert.throws(() => dp.setSegmentAddresses(1, fx.phys, 0, ['10.1.0.300']), {
      code: 'ERR_INVALID',
      message: /addresses\[0\]/,
    });
    dp.setSegmentAddresses(1, fx.phys, 0, ['10.1.0.1']);
    assert.deepEqual(dp.segmentAddresses(1, fx.phys, 0), ['10.1.0.1'], 'a new list replaces the old one');
    dp.setSegmentAddresses(1, fx.phys, 0, ['10.1.0.1', '2001:db8:1::1']);
  });

  test('a spoofed frame moves no counter of the network it pretends to be', () => {
    const green = dp.readCounters([2])[0];
    run({
      name: "green's MAC from blue's vif",
      ingress: 'vif1',
      frame: { src: MAC.greenP, dst: MAC.ext1, ipv4: udp4('10.2.0.2') },
      verdict: 'DROP',
      net: 1,
      reason: 'drop_spoof',
    });
    assert.deepEqual(dp.readCounters([2])[0], green);
  });
});

/** The frame with one more tag of `tpid` in front (after the MACs). */
function withOuterTag(frame: Buffer, tpid: number, vlan: number): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt16BE(tpid, 0);
  tag.writeUInt16BE(vlan, 2);
  return Buffer.concat([frame.subarray(0, 12), tag, frame.subarray(12)]);
}

describe('VLANs stay confined', () => {
  const cases = (): Case[] => [
    {
      name: '802.1ad (QinQ) outer tag refused',
      frame: withOuterTag(buildFrame({ dst: MAC.blueP, vlan: 10, ipv4: udp4('10.9.1.1') }), 0x88a8, 100),
      verdict: 'DROP',
      net: 0,
      reason: 'drop_vlan',
    },
    {
      name: 'two 802.1Q tags refused',
      frame: withOuterTag(buildFrame({ dst: MAC.blueP, vlan: 10, ipv4: udp4('10.9.1.1') }), 0x8100, 10),
      verdict: 'DROP',
      net: 0,
      reason: 'drop_vlan',
    },
    {
      name: 'a tagged broadcast nobody owns is dropped, never flooded',
      frame: {
        dst: 'ff:ff:ff:ff:ff:ff',
        vlan: 30,
        arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' },
      },
      verdict: 'DROP',
      net: 0,
      reason: 'drop_vlan',
    },
    {
      name: "a broadcast on blue's VLAN goes to blue's router only, untagged",
      frame: {
        dst: 'ff:ff:ff:ff:ff:ff',
        vlan: 10,
        arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' },
      },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'to_vm_control',
      check: (o) => assert.equal(o.vlan, 0),
    },
    {
      name: "an untagged broadcast is still the host bridge's",
      frame: {
        dst: 'ff:ff:ff:ff:ff:ff',
        arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' },
      },
      verdict: 'PASS',
      net: 0,
      reason: 'pass_host',
    },
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });

  test('a vif missing from the egress devices is a counted drop, not a pass to the bridge', () => {
    const mac = '02:00:00:01:00:66';
    dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac, netId: 1, vifIfindex: 0x7fff0001 }); // no such device
    try {
      run({
        name: 'control to a missing vif',
        frame: { dst: mac, arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } },
        verdict: 'DROP',
        net: 1,
        reason: 'drop_no_vif',
      });
    } finally {
      dp.removeAttachment(fx.phys, 0, mac);
    }
  });
});

describe('the filter sees through IPv6 extension headers', () => {
  const tcp6 = (extensions: Ipv6Spec['extensions'], dport = 22): FrameSpec => ({
    dst: MAC.blueP,
    ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', extensions, tcp: { sport: 4000, dport } },
  });

  test('a rule on TCP port 22 applies behind Destination Options, Routing, Hop-by-Hop-free chains, a first fragment and AH', () => {
    dp.setFilter(1, [{ family: 6, proto: 6, dport: [22, 22], action: 'drop' }]);
    try {
      run({ name: 'plain', frame: tcp6([]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'Destination Options', frame: tcp6([{ type: 60 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({
        name: 'Routing + Destination Options',
        frame: tcp6([{ type: 43 }, { type: 60 }]),
        verdict: 'DROP',
        net: 1,
        reason: 'drop_filter',
      });
      run({
        name: 'first fragment',
        frame: tcp6([{ type: 44, fragmentOffset: 0 }]),
        verdict: 'DROP',
        net: 1,
        reason: 'drop_filter',
      });
      run({ name: 'AH', frame: tcp6([{ type: 51 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({
        name: 'another port still passes behind the chain',
        frame: tcp6([{ type: 60 }, { type: 43 }], 80),
        verdict: 'REDIRECT',
        net: 1,
        reason: 'forward',
      });
      // A later fragment carries no ports: a port rule cannot match it (nftables without
      // reassembly behaves the same); the first fragment, which has them, was dropped above.
      run({
        name: 'non-first fragment: no ports, not matched',
        frame: tcp6([{ type: 44, fragmentOffset: 185 }]),
        verdict: 'REDIRECT',
        net: 1,
        reason: 'forward',
      });
    } finally {
      dp.setFilter(1, []);
    }
  });

  test('a protocol rule matches non-first fragments too', () => {
    dp.setFilter(1, [{ family: 6, proto: 6, action: 'drop' }]);
    try {
      run({
        name: 'non-first fragment of TCP',
        frame: tcp6([{ type: 44, fragmentOffset: 185 }]),
        verdict: 'DROP',
        net: 1,
        reason: 'drop_filter',
      });
    } finally {
      dp.setFilter(1, []);
    }
  });

  test('a chain longer than the bound, or cut short, goes to the router (counted)', () => {
    const long = Array.from({ length: 9 }, () => ({ type: 60 as const }));
    run({
      name: 'nine Destination Options headers',
      frame: tcp6(long),
      verdict: 'REDIRECT',
      net: 1,
      reason: 'to_vm_exthdr',
    });
    const cut = buildFrame(tcp6([{ type: 60 }, { type: 60 }])).subarray(0, 14 + 40 + 8 + 1);
    run({
      name: 'a chain cut inside its second header',
      frame: cut,
      verdict: 'REDIRECT',
      net: 1,
      reason: 'to_vm_exthdr',
    });
  });

  test('ICMPv6 behind Destination Options is still control', () => {
    run({
      name: 'ND behind dstopts',
      frame: {
        dst: MAC.blueP,
        ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', extensions: [{ type: 60 }], icmp: { type: 135, code: 0 } },
      },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'to_vm_control',
    });
  });
});

test('a packet larger than the egress MTU goes to the router, which answers with ICMP', () => {
  const big = {
    dst: MAC.blueP,
    ipv4: { src: '10.1.0.2', dst: '10.9.1.1', udp: { sport: 1, dport: 2 }, payload: 1600 },
  };
  const paths = () => countersOf(dp, 1).pathPackets;
  const before = paths();
  run({
    name: 'over the MTU',
    frame: big,
    verdict: 'REDIRECT',
    net: 1,
    reason: 'to_vm_mtu',
    check: (o) => assert.equal(o.dst, MAC.blueP, 'unchanged, to the router'),
  });
  const over = paths();
  // Costed by the path it takes: up to the router, not out of the host.
  assert.deepEqual([over.ext_vm - before.ext_vm, over.ext_ext - before.ext_ext], [1n, 0n], 'charged as ext_vm');
  const fits = {
    dst: MAC.blueP,
    ipv4: { src: '10.1.0.2', dst: '10.9.1.1', udp: { sport: 1, dport: 2 }, payload: 1500 - 28 },
  };
  run({ name: 'exactly the MTU', frame: fits, verdict: 'REDIRECT', net: 1, reason: 'forward' });
  const fitted = paths();
  assert.deepEqual([fitted.ext_vm - over.ext_vm, fitted.ext_ext - over.ext_ext], [0n, 1n], 'charged as ext_ext');
});
