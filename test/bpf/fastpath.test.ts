// BPF unit tests: tables of built frames run through the real program with
// BPF_PROG_TEST_RUN, checking verdict, output bytes and counter deltas.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane, type NetCounters } from '../../src/dataplane/index.js';
import { runXdp, runTc, TcAction, ifindexOf, type ReasonName } from '../../src/loader/index.js';
import { buildFrame, parseFrame, type FrameSpec } from '../../src/packet/index.js';
import { Scratch } from '../support/host.js';
import { runCase, counters as countersOf, type XdpCase } from '../support/xdp-cases.js';
import { fastpathFixture, MAC, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

before(() => {
  scratch = new Scratch('xtb');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

type Case = XdpCase;

const counters = (net: number): NetCounters => countersOf(dp, net);
const run = (c: Case): void => runCase(dp, fx, c);

const ipv4 = (dst: string, extra: Partial<NonNullable<FrameSpec['ipv4']>> = {}) => ({
  src: '10.1.0.2',
  dst,
  udp: { sport: 1000, dport: 2000 },
  payload: 18,
  ...extra,
});

const forwarded =
  (dmac: string, smac: string, vlan = 0) =>
  (out: ReturnType<typeof parseFrame>) => {
    assert.equal(out.dst, dmac);
    assert.equal(out.src, smac);
    assert.equal(out.vlan, vlan);
    if (out.ipv4) {
      assert.equal(out.ipv4.ttl, 63);
      assert.ok(out.ipv4.checksumValid, 'IPv4 checksum valid after TTL decrement');
    }
    if (out.ipv6) assert.equal(out.ipv6.hopLimit, 63);
  };

describe('fast path: forwarding', () => {
  const cases = (): Case[] => [
    {
      name: 'IPv4 forwarded by network blue',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
      path: 'ext_ext',
      check: forwarded(MAC.ext1, MAC.blueQ),
    },
    {
      name: "same prefix in green goes to green's next hop (and its VLAN)",
      frame: { dst: MAC.greenP, ipv4: ipv4('10.9.1.1') },
      verdict: 'REDIRECT',
      net: 2,
      reason: 'forward',
      check: forwarded(MAC.ext2, MAC.greenQ, 20),
    },
    {
      name: 'tagged ingress, tag popped on untagged egress',
      frame: { dst: MAC.blueV, vlan: 10, ipv4: ipv4('10.9.1.1') },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
      check: forwarded(MAC.ext1, MAC.blueQ, 0),
    },
    {
      name: 'IPv6 forwarded, hop limit decremented',
      frame: { dst: MAC.blueP, ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', udp: { sport: 1, dport: 2 } } },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
      check: forwarded(MAC.ext1, MAC.blueQ),
    },
    {
      name: 'TCP over IPv4, longest prefix wins (/24 over /16)',
      frame: { dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst: '10.9.7.1', tcp: { sport: 5, dport: 80 } } },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
      check: forwarded(MAC.ext1b, MAC.blueQ),
    },
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });
});

describe('fast path: control traffic goes up to the virtual router', () => {
  const toVm = (c: Omit<Case, 'verdict' | 'net' | 'reason'> & { reason?: ReasonName }): Case => ({
    verdict: 'REDIRECT',
    net: 1,
    reason: 'to_vm_control',
    path: 'ext_vm',
    ...c,
  });
  const cases = (): Case[] => [
    toVm({
      name: 'ARP to the router',
      frame: { dst: MAC.blueP, arp: { op: 2, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' } },
    }),
    toVm({
      name: 'TTL 1',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1', { ttl: 1 }) },
      check: (o) => assert.equal(o.ipv4?.ttl, 1, 'not decremented'),
    }),
    toVm({
      name: 'IPv4 options',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1', { options: Buffer.from([0x94, 0x04, 0, 0]) }) },
    }),
    toVm({
      name: 'OSPF multicast',
      frame: { dst: MAC.blueP, ipv4: { src: '10.1.0.2', dst: '224.0.0.5', protocol: 89, payload: 40 } },
    }),
    toVm({
      name: 'IPv6 link-local destination',
      frame: { dst: MAC.blueP, ipv6: { src: 'fe80::2', dst: 'fe80::1', udp: { sport: 1, dport: 2 } } },
    }),
    toVm({
      name: 'ICMPv6 (neighbour discovery)',
      frame: { dst: MAC.blueP, ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', icmp: { type: 135, code: 0 } } },
    }),
    toVm({
      name: 'IPv6 hop limit 1',
      frame: {
        dst: MAC.blueP,
        ipv6: { src: '2001:db8:1::2', dst: '2001:db8:9::1', hopLimit: 1, udp: { sport: 1, dport: 2 } },
      },
    }),
    toVm({ name: 'addressed to the router itself (local route)', frame: { dst: MAC.blueP, ipv4: ipv4('10.1.0.1') } }),
    toVm({
      name: 'tagged control frame handed over untagged',
      frame: { dst: MAC.blueV, vlan: 10, ipv4: ipv4('10.9.1.1', { ttl: 1 }) },
      check: (o) => assert.equal(o.vlan, 0),
    }),
    toVm({
      name: 'route via the virtual router (paper II default route to the VM)',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.8.1.1') },
      reason: 'to_vm_route',
      path: undefined,
      check: (o) => {
        assert.equal(o.dst, MAC.blueP);
        assert.equal(o.ipv4?.ttl, 64);
      },
    }),
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });
});

describe('fast path: misses, host traffic and malformed frames', () => {
  const cases = (): Case[] => [
    {
      name: 'LPM miss dropped and counted',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.7.1.1') },
      verdict: 'DROP',
      net: 1,
      reason: 'drop_no_route',
    },
    {
      name: 'blackhole route',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.66.1.1') },
      verdict: 'DROP',
      net: 1,
      reason: 'drop_blackhole',
    },
    {
      name: 'unknown destination MAC left to the host',
      frame: { dst: '02:99:99:99:99:99', ipv4: ipv4('10.9.1.1') },
      verdict: 'PASS',
      net: 0,
      reason: 'pass_host',
    },
    {
      name: 'broadcast left to the host bridge',
      frame: {
        dst: 'ff:ff:ff:ff:ff:ff',
        arp: { op: 1, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' },
      },
      verdict: 'PASS',
      net: 0,
      reason: 'pass_host',
    },
    {
      name: "the host's own MAC",
      frame: { dst: MAC.host, ipv4: ipv4('10.9.1.1') },
      verdict: 'PASS',
      net: 0,
      reason: 'pass_host',
    },
    {
      name: "blue's MAC on the wrong VLAN is not blue's, and a VLAN nobody owns is never bridged",
      frame: { dst: MAC.blueP, vlan: 30, ipv4: ipv4('10.9.1.1') },
      verdict: 'DROP',
      net: 0,
      reason: 'drop_vlan',
    },
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });

  test('truncated at every header, bad IHL: dropped as malformed, never forwarded', () => {
    const good = buildFrame({ dst: MAC.blueP, ipv4: ipv4('10.9.1.1') });
    const tagged = buildFrame({ dst: MAC.blueP, vlan: 10, ipv4: ipv4('10.9.1.1') });
    const v6 = buildFrame({
      dst: MAC.blueP,
      ipv6: { src: '2001:db8::2', dst: '2001:db8:9::1', udp: { sport: 1, dport: 2 } },
    });
    const badIhl = Buffer.from(good);
    badIhl[14] = 0x44;
    const badVersion = Buffer.from(good);
    badVersion[14] = 0x55;
    const shortTotLen = Buffer.from(good);
    shortTotLen.writeUInt16BE(10, 16);
    const longIhl = Buffer.from(good.subarray(0, 14 + 24));
    longIhl[14] = 0x4f; // 60-byte header in a 24-byte packet
    const frames: [string, Buffer][] = [
      ['Ethernet + 2 bytes of IPv4', good.subarray(0, 16)],
      ['IPv4 header cut at 19 bytes', good.subarray(0, 14 + 19)],
      ['VLAN tag cut', tagged.subarray(0, 16)],
      ['IPv6 header cut', v6.subarray(0, 14 + 39)],
      ['IHL 4', badIhl],
      ['IHL past the end', longIhl],
      ['IP version 5', badVersion],
      ['total length shorter than the header', shortTotLen],
    ];
    for (const [name, frame] of frames) run({ name, frame, verdict: 'DROP', net: 0, reason: 'drop_malformed' });
  });

  test('frames shorter than an Ethernet header never reach the program (the kernel refuses them)', () => {
    assert.throws(
      () => runXdp(dp.object.program('xnm_phys_in'), { data: Buffer.alloc(0), ingressIfindex: fx.phys }),
      /EINVAL/,
    );
    assert.throws(
      () => runXdp(dp.object.program('xnm_phys_in'), { data: Buffer.alloc(10), ingressIfindex: fx.phys }),
      /EINVAL/,
    );
  });
});

describe('vif ingress: path accounting (paper IV-A)', () => {
  const cases = (): Case[] => [
    {
      name: 'to an external machine',
      ingress: 'vif1',
      frame: { src: MAC.blueP, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') },
      verdict: 'PASS',
      net: 1,
      reason: 'from_vm',
      path: 'vm_ext',
    },
    {
      name: "to another network's router: charged to the sender",
      ingress: 'vif1',
      frame: { src: MAC.blueP, dst: MAC.greenP, ipv4: ipv4('10.2.0.1') },
      verdict: 'PASS',
      net: 1,
      reason: 'from_vm',
      path: 'vm_vm',
    },
    {
      name: 'to the host',
      ingress: 'vif1',
      frame: { src: MAC.blueP, dst: MAC.host, ipv4: ipv4('10.1.0.254') },
      verdict: 'PASS',
      net: 1,
      reason: 'from_vm',
      path: 'vm_host',
    },
    {
      name: 'malformed from the router',
      ingress: 'vif1',
      frame: buildFrame({ dst: MAC.ext1, ipv4: ipv4('10.1.0.2') }).subarray(0, 20),
      verdict: 'DROP',
      net: 1,
      reason: 'drop_malformed',
    },
  ];
  test('table', () => {
    for (const c of cases()) run(c);
  });

  test("green is never charged for blue's traffic to it", () => {
    const before = counters(2);
    run({
      name: 'vm_vm',
      ingress: 'vif1',
      frame: { src: MAC.blueP, dst: MAC.greenP, ipv4: ipv4('10.2.0.1') },
      verdict: 'PASS',
      net: 1,
      reason: 'from_vm',
    });
    const afterC = counters(2);
    assert.equal(afterC.cpuOffered, before.cpuOffered);
  });
});

describe('isolation: accounting and punishment', () => {
  test('CPU cost is counted offered and carried, by path cost', () => {
    const before = counters(1);
    run({
      name: 'fwd',
      frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
    });
    const a = counters(1);
    const settings = dp.readSettings();
    assert.ok(a.cpuOffered - before.cpuOffered >= BigInt(settings.pathCost.ext_ext));
    assert.equal(a.cpuCarried - before.cpuCarried, a.cpuOffered - before.cpuOffered);
    assert.ok(a.linkCarried[1] - before.linkCarried[1] >= 60n, 'bytes charged to the egress link slot');
  });

  test('CPU drop probability 1 drops at the input, counted, only for that network', () => {
    dp.setDrops(1, { cpu: 1, residual: 0, links: [] });
    try {
      const before = counters(1);
      run({
        name: 'cpu punished',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
        verdict: 'DROP',
        net: 1,
        reason: 'drop_cpu',
      });
      const a = counters(1);
      assert.ok(a.cpuOffered > before.cpuOffered, 'offered counted before the drop');
      assert.equal(a.cpuCarried, before.cpuCarried, 'nothing carried');
      run({
        name: 'green unaffected',
        frame: { dst: MAC.greenP, ipv4: ipv4('10.9.1.1') },
        verdict: 'REDIRECT',
        net: 2,
        reason: 'forward',
      });
    } finally {
      dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
    }
  });

  test('link drop probability applies at the egress decision for that link only', () => {
    const links = new Array(16).fill(0);
    links[1] = 1;
    dp.setDrops(1, { cpu: 0, residual: 0, links });
    try {
      run({
        name: 'link punished',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
        verdict: 'DROP',
        net: 1,
        reason: 'drop_link',
      });
      run({
        name: 'control unaffected by link punishment',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1', { ttl: 1 }) },
        verdict: 'REDIRECT',
        net: 1,
        reason: 'to_vm_control',
      });
    } finally {
      dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
    }
  });

  test('residual punishment applies on vif input only', () => {
    dp.setDrops(1, { cpu: 0, residual: 1, links: [] });
    try {
      run({
        name: 'residual on vif',
        ingress: 'vif1',
        frame: { src: MAC.blueP, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') },
        verdict: 'DROP',
        net: 1,
        reason: 'drop_residual',
      });
      run({
        name: 'no residual on physical input',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
        verdict: 'REDIRECT',
        net: 1,
        reason: 'forward',
      });
    } finally {
      dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
    }
  });

  test('a drop probability of 0.5 drops about half', () => {
    dp.setDrops(1, { cpu: 0.5, residual: 0, links: [] });
    try {
      const before = counters(1);
      const frame = buildFrame({ dst: MAC.blueP, ipv4: ipv4('10.9.1.1') });
      for (let i = 0; i < 2000; i++) runXdp(dp.object.program('xnm_phys_in'), { data: frame, ingressIfindex: fx.phys });
      const dropped = Number(counters(1).verdicts.drop_cpu - before.verdicts.drop_cpu);
      assert.ok(dropped > 850 && dropped < 1150, `dropped ${dropped} of 2000`);
    } finally {
      dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
    }
  });
});

describe('replicated packet filter (paper IV-B)', () => {
  test("a network's drop rule applies to its own traffic only", () => {
    dp.setFilter(1, [{ family: 4, proto: 17, dport: [2000, 2000], dst: '10.9.0.0/16', action: 'drop' }]);
    try {
      run({
        name: 'blue UDP 2000 filtered',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') },
        verdict: 'DROP',
        net: 1,
        reason: 'drop_filter',
      });
      run({
        name: 'blue UDP 2001 passes',
        frame: { dst: MAC.blueP, ipv4: ipv4('10.9.1.1', { udp: { sport: 1, dport: 2001 } }) },
        verdict: 'REDIRECT',
        net: 1,
        reason: 'forward',
      });
      run({
        name: 'green same flow unaffected',
        frame: { dst: MAC.greenP, ipv4: ipv4('10.9.1.1') },
        verdict: 'REDIRECT',
        net: 2,
        reason: 'forward',
      });
    } finally {
      dp.setFilter(1, []);
    }
  });
});

test('interfaces resolve (fixture sanity)', () => {
  assert.equal(ifindexOf(fx.physName), fx.phys);
});

describe('TC egress: bytes the kernel sends out a physical link (bridged from vifs)', () => {
  test("charged to the network of the vif it came in on, at the link's slot; the host's own pass uncounted", () => {
    const prog = dp.object.program('xnm_link_out');
    const frame = buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') });
    const before = counters(1);
    assert.equal(runTc(prog, { data: frame, ifindex: fx.phys, ingressIfindex: fx.vif1 }).retval, TcAction.OK);
    const a = counters(1);
    assert.equal(a.verdicts.tc_pass - before.verdicts.tc_pass, 1n);
    assert.equal(a.linkCarried[0] - before.linkCarried[0], BigInt(frame.length), "slot 0 is P's");
    const host = counters(0);
    runTc(prog, { data: buildFrame({ src: MAC.host, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') }), ifindex: fx.phys });
    assert.equal(counters(0).verdicts.tc_pass - host.verdicts.tc_pass, 1n, "the host's own frames: network 0");
  });

  test('a source MAC the tenant writes never decides who pays: green sending as blue is charged to green', () => {
    const prog = dp.object.program('xnm_link_out');
    const frame = buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') });
    const blue = counters(1);
    const green = counters(2);
    runTc(prog, { data: frame, ifindex: fx.phys, ingressIfindex: fx.vif2 });
    assert.equal(counters(1).linkOffered[0], blue.linkOffered[0], "blue's link counters do not move");
    assert.equal(
      counters(2).linkOffered[0] - green.linkOffered[0],
      BigInt(frame.length),
      'green pays for its own frame',
    );
  });

  test('the link drop probability applies to stack-sent frames too', () => {
    const links = new Array(16).fill(0);
    links[0] = 1;
    dp.setDrops(1, { cpu: 0, residual: 0, links });
    try {
      const before = counters(1);
      const r = runTc(dp.object.program('xnm_link_out'), {
        data: buildFrame({ src: MAC.blueP, dst: MAC.ext1, ipv4: ipv4('10.1.0.2') }),
        ifindex: fx.phys,
        ingressIfindex: fx.vif1,
      });
      assert.equal(r.retval, TcAction.SHOT);
      assert.equal(counters(1).verdicts.drop_link - before.verdicts.drop_link, 1n);
    } finally {
      dp.setDrops(1, { cpu: 0, residual: 0, links: [] });
    }
  });
});

test("the controller's fast usage read agrees with the full counters", () => {
  const usage = dp.readUsage([1, 2]);
  const full = dp.readCounters([1, 2]);
  assert.equal(usage.cpuOffered[0], Number(full[0].cpuOffered));
  assert.equal(usage.cpuCarried[1], Number(full[1].cpuCarried));
  assert.equal(usage.linkCarried[0 * 16 + 1], Number(full[0].linkCarried[1]));
});

test('the flow cache never serves a changed or removed route', () => {
  const frame = { dst: MAC.blueP, ipv4: ipv4('10.77.1.1') };
  dp.addRoutes(1, [{ prefix: '10.77.0.0/16', target: { kind: 'nexthop', nexthopId: fx.nexthopBlue } }]);
  run({
    name: 'fills the cache',
    frame,
    verdict: 'REDIRECT',
    net: 1,
    reason: 'forward',
    check: forwarded(MAC.ext1, MAC.blueQ),
  });
  run({
    name: 'served from the cache',
    frame,
    verdict: 'REDIRECT',
    net: 1,
    reason: 'forward',
    check: forwarded(MAC.ext1, MAC.blueQ),
  });
  const other = dp.nexthop({ netId: 1, ifindex: fx.egress, linkSlot: 1, vlan: 0, smac: MAC.blueQ, dmac: MAC.ext1b });
  dp.addRoutes(1, [{ prefix: '10.77.0.0/16', target: { kind: 'nexthop', nexthopId: other } }]);
  run({
    name: 'replaced route',
    frame,
    verdict: 'REDIRECT',
    net: 1,
    reason: 'forward',
    check: forwarded(MAC.ext1b, MAC.blueQ),
  });
  dp.addRoutes(1, [{ prefix: '10.77.1.0/24', target: { kind: 'via-vm' } }]);
  run({ name: 'a more specific route added', frame, verdict: 'REDIRECT', net: 1, reason: 'to_vm_route' });
  dp.deleteRoutes(1, ['10.77.1.0/24', '10.77.0.0/16']);
  run({ name: 'removed', frame, verdict: 'DROP', net: 1, reason: 'drop_no_route' });
});

test('the flow cache never serves a changed classification, nor a miss once the route exists', () => {
  const mac = '02:00:00:01:00:77';
  const frame = { dst: mac, ipv4: ipv4('10.78.1.1') };
  dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac, netId: 1, vifIfindex: fx.vif1 });
  try {
    run({ name: 'a miss is cached', frame, verdict: 'DROP', net: 1, reason: 'drop_no_route' });
    run({ name: 'served from the cache', frame, verdict: 'DROP', net: 1, reason: 'drop_no_route' });
    dp.addRoutes(1, [{ prefix: '10.78.0.0/16', target: { kind: 'nexthop', nexthopId: fx.nexthopBlue } }]);
    run({
      name: 'the new route is used',
      frame,
      verdict: 'REDIRECT',
      net: 1,
      reason: 'forward',
      check: forwarded(MAC.ext1, MAC.blueQ),
    });
    dp.removeAttachment(fx.phys, 0, mac);
    run({ name: "attachment removed: the host's", frame, verdict: 'PASS', net: 0, reason: 'pass_host' });
    dp.setAttachment({ ifindex: fx.phys, vlan: 0, mac, netId: 2, vifIfindex: fx.vif2 });
    run({
      name: "attachment moved to green: green's table, which has no such route",
      frame,
      verdict: 'DROP',
      net: 2,
      reason: 'drop_no_route',
    });
  } finally {
    dp.removeAttachment(fx.phys, 0, mac);
    dp.deleteRoutes(1, ['10.78.0.0/16']);
  }
});

test('a cached flow meets a filter rule added after it was cached, and passes again once it is removed', () => {
  const frame = { dst: MAC.blueP, ipv4: ipv4('10.9.1.1') };
  run({ name: 'fills the cache: blue has no rules', frame, verdict: 'REDIRECT', net: 1, reason: 'forward' });
  run({ name: 'served from the cache, unfiltered', frame, verdict: 'REDIRECT', net: 1, reason: 'forward' });
  dp.setFilter(1, [{ family: 4, proto: 17, dport: [2000, 2000], dst: '10.9.0.0/16', action: 'drop' }]);
  try {
    run({ name: 'the new rule applies', frame, verdict: 'DROP', net: 1, reason: 'drop_filter' });
    run({ name: 'and again from the cache', frame, verdict: 'DROP', net: 1, reason: 'drop_filter' });
  } finally {
    dp.setFilter(1, []);
  }
  run({ name: 'rule removed', frame, verdict: 'REDIRECT', net: 1, reason: 'forward' });
});

test('flows that share a flow cache slot (a cache of one slot) each get their own route', () => {
  const tiny = DataPlane.open({ flowCacheSlots: 1 });
  const tinyScratch = new Scratch('xtc');
  try {
    const tfx = fastpathFixture(tiny, tinyScratch);
    const prog = tiny.object.program('xnm_phys_in');
    const send = (dst: string, mac: string) =>
      parseFrame(runXdp(prog, { data: buildFrame({ dst: mac, ipv4: ipv4(dst) }), ingressIfindex: tfx.phys }).data);
    for (let i = 0; i < 3; i++) {
      assert.equal(send('10.9.1.1', MAC.blueP).dst, MAC.ext1, 'blue /16');
      assert.equal(send('10.9.7.1', MAC.blueP).dst, MAC.ext1b, 'blue /24');
      assert.equal(send('10.9.1.1', MAC.greenP).dst, MAC.ext2, 'green, same destination');
    }
    assert.throws(() => DataPlane.open({ flowCacheSlots: 3 }), /flowCacheSlots/);
  } finally {
    tiny.close();
    tinyScratch.cleanup();
  }
});
