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
import { runCase, type XdpCase } from '../support/xdp-cases.js';
import { fastpathFixture, MAC, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xth');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

type Case = XdpCase;

const run = (c: Case): void => runCase(dp, fx, c);

const udp4 = (dst: string) => ({ src: '10.1.0.1', dst, udp: { sport: 1000, dport: 2000 }, payload: 18 });

/** A neighbour advertisement for `target` whose target link-layer address option says `lladdr`. */
function neighbourAdvertisement(lladdr: string): FrameSpec['ipv6'] {
  const body = Buffer.alloc(16 + 8);
  body.writeUInt16BE(0x2001, 0); // target 2001:db8:1::1 (flags sit in the ICMP header's last word)
  body.writeUInt16BE(0x0db8, 2);
  body.writeUInt16BE(0x0001, 4);
  body[15] = 1;
  body[16] = 2; // target link-layer address
  body[17] = 1; // 8 bytes
  macBytes(lladdr).copy(body, 18);
  return { src: '2001:db8:1::1', dst: 'ff02::1', hopLimit: 255, icmp: { type: 136, code: 0 }, payload: body };
}

describe('anti-spoofing on the vif: what a router claims must be its own', () => {
  const fromVif = (c: Omit<Case, 'ingress' | 'net'>): Case => ({ ingress: 'vif1', net: 1, ...c });
  const cases = (): Case[] => [
    fromVif({ name: 'its own MAC passes', frame: { src: MAC.blueP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }, verdict: 'PASS', reason: 'from_vm' }),
    fromVif({ name: 'its other attachment\'s MAC passes', frame: { src: MAC.blueV, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }, verdict: 'PASS', reason: 'from_vm' }),
    fromVif({ name: 'another router\'s source MAC: dropped, charged to the sender', frame: { src: MAC.greenP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }, verdict: 'DROP', reason: 'drop_spoof' }),
    fromVif({ name: 'an external machine\'s MAC (would poison the bridge)', frame: { src: MAC.ext2, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }, verdict: 'DROP', reason: 'drop_spoof' }),
    fromVif({ name: 'a VLAN tag from an access port', frame: { src: MAC.blueP, dst: MAC.ext1, vlan: 20, ipv4: udp4('10.1.0.2') }, verdict: 'DROP', reason: 'drop_spoof' }),
    fromVif({ name: 'an 802.1ad tag', frame: withOuterTag(buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: udp4('10.1.0.2') }), 0x88a8, 20), verdict: 'DROP', reason: 'drop_spoof' }),
    fromVif({ name: 'ARP with its own address', frame: { src: MAC.blueP, dst: 'ff:ff:ff:ff:ff:ff', arp: { op: 2, senderMac: MAC.blueP, senderIp: '10.1.0.1', targetIp: '10.1.0.2' } }, verdict: 'PASS', reason: 'from_vm' }),
    fromVif({ name: 'ARP claiming another router\'s MAC', frame: { src: MAC.blueP, dst: 'ff:ff:ff:ff:ff:ff', arp: { op: 2, senderMac: MAC.greenP, senderIp: '10.2.0.1', targetIp: '10.2.0.2' } }, verdict: 'DROP', reason: 'drop_spoof' }),
    fromVif({ name: 'neighbour advertisement with its own MAC', frame: { src: MAC.blueP, dst: '33:33:00:00:00:01', ipv6: neighbourAdvertisement(MAC.blueP) }, verdict: 'PASS', reason: 'from_vm' }),
    fromVif({ name: 'neighbour advertisement claiming another router\'s MAC', frame: { src: MAC.blueP, dst: '33:33:00:00:00:01', ipv6: neighbourAdvertisement(MAC.greenP) }, verdict: 'DROP', reason: 'drop_spoof' }),
  ];
  test('table', () => { for (const c of cases()) run(c); });

  test('a spoofed frame moves no counter of the network it pretends to be', () => {
    const green = dp.readCounters([2])[0];
    run({ name: 'green\'s MAC from blue\'s vif', ingress: 'vif1', frame: { src: MAC.greenP, dst: MAC.ext1, ipv4: udp4('10.2.0.2') }, verdict: 'DROP', net: 1, reason: 'drop_spoof' });
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
    { name: '802.1ad (QinQ) outer tag refused', frame: withOuterTag(buildFrame({ dst: MAC.blueP, vlan: 10, ipv4: udp4('10.9.1.1') }), 0x88a8, 100), verdict: 'DROP', net: 0, reason: 'drop_vlan' },
    { name: 'two 802.1Q tags refused', frame: withOuterTag(buildFrame({ dst: MAC.blueP, vlan: 10, ipv4: udp4('10.9.1.1') }), 0x8100, 10), verdict: 'DROP', net: 0, reason: 'drop_vlan' },
    { name: 'a tagged broadcast nobody owns is dropped, never flooded', frame: { dst: 'ff:ff:ff:ff:ff:ff', vlan: 30, arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } }, verdict: 'DROP', net: 0, reason: 'drop_vlan' },
    {
      name: 'a broadcast on blue\'s VLAN goes to blue\'s router only, untagged',
      frame: { dst: 'ff:ff:ff:ff:ff:ff', vlan: 10, arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } },
      verdict: 'REDIRECT', net: 1, reason: 'to_vm_control', check: (o) => assert.equal(o.vlan, 0),
    },
    { name: 'an untagged broadcast is still the host bridge\'s', frame: { dst: 'ff:ff:ff:ff:ff:ff', arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } }, verdict: 'PASS', net: 0, reason: 'pass_host' },
  ];
  test('table', () => { for (const c of cases()) run(c); });

  test('a vif missing from the egress devices is a counted drop, not a pass to the bridge', () => {
    const mac = '02:00:00:01:00:66';
    dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac, netId: 1, vifIfindex: 0x7fff0001 }); // no such device
    try {
      run({ name: 'control to a missing vif', frame: { dst: mac, arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } }, verdict: 'DROP', net: 1, reason: 'drop_no_vif' });
    } finally {
      dp.removeAttachment(fx.phys, 0, mac);
    }
  });
});

describe('the filter sees through IPv6 extension headers', () => {
  const tcp6 = (extensions: Ipv6Spec['extensions'], dport = 22): FrameSpec => ({ dst: MAC.blueP, ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', extensions, tcp: { sport: 4000, dport } } });

  test('a rule on TCP port 22 applies behind Destination Options, Routing, Hop-by-Hop-free chains, a first fragment and AH', () => {
    dp.setFilter(1, [{ family: 6, proto: 6, dport: [22, 22], action: 'drop' }]);
    try {
      run({ name: 'plain', frame: tcp6([]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'Destination Options', frame: tcp6([{ type: 60 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'Routing + Destination Options', frame: tcp6([{ type: 43 }, { type: 60 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'first fragment', frame: tcp6([{ type: 44, fragmentOffset: 0 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'AH', frame: tcp6([{ type: 51 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
      run({ name: 'another port still passes behind the chain', frame: tcp6([{ type: 60 }, { type: 43 }], 80), verdict: 'REDIRECT', net: 1, reason: 'forward' });
      // A later fragment carries no ports: a port rule cannot match it (nftables without
      // reassembly behaves the same); the first fragment, which has them, was dropped above.
      run({ name: 'non-first fragment: no ports, not matched', frame: tcp6([{ type: 44, fragmentOffset: 185 }]), verdict: 'REDIRECT', net: 1, reason: 'forward' });
    } finally {
      dp.setFilter(1, []);
    }
  });

  test('a protocol rule matches non-first fragments too', () => {
    dp.setFilter(1, [{ family: 6, proto: 6, action: 'drop' }]);
    try {
      run({ name: 'non-first fragment of TCP', frame: tcp6([{ type: 44, fragmentOffset: 185 }]), verdict: 'DROP', net: 1, reason: 'drop_filter' });
    } finally {
      dp.setFilter(1, []);
    }
  });

  test('a chain longer than the bound, or cut short, goes to the router (counted)', () => {
    const long = Array.from({ length: 9 }, () => ({ type: 60 as const }));
    run({ name: 'nine Destination Options headers', frame: tcp6(long), verdict: 'REDIRECT', net: 1, reason: 'to_vm_exthdr' });
    const cut = buildFrame(tcp6([{ type: 60 }, { type: 60 }])).subarray(0, 14 + 40 + 8 + 1);
    run({ name: 'a chain cut inside its second header', frame: cut, verdict: 'REDIRECT', net: 1, reason: 'to_vm_exthdr' });
  });

  test('ICMPv6 behind Destination Options is still control', () => {
    run({ name: 'ND behind dstopts', frame: { dst: MAC.blueP, ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', extensions: [{ type: 60 }], icmp: { type: 135, code: 0 } } }, verdict: 'REDIRECT', net: 1, reason: 'to_vm_control' });
  });
});

test('a packet larger than the egress MTU goes to the router, which answers with ICMP', () => {
  const big = { dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst: '10.9.1.1', udp: { sport: 1, dport: 2 }, payload: 1600 } };
  run({ name: 'over the MTU', frame: big, verdict: 'REDIRECT', net: 1, reason: 'to_vm_mtu', check: (o) => assert.equal(o.dst, MAC.blueP, 'unchanged, to the router') });
  const fits = { dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst: '10.9.1.1', udp: { sport: 1, dport: 2 }, payload: 1500 - 28 } };
  run({ name: 'exactly the MTU', frame: fits, verdict: 'REDIRECT', net: 1, reason: 'forward' });
});
