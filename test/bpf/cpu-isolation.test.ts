// BPF unit tests of CPU isolation (paper IV-A), through BPF_PROG_TEST_RUN: a packet is costed
// once, by the path the lookup chose (carried <= offered); host -> VM is charged to the VM;
// punishment drops a network's heaviest flows first and spares its update channel and its
// neighbour resolution, each within a budget.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DataPlane, solveFairRate, type DataPlaneSettings } from '../../src/dataplane/index.js';
import { runXdp, runTc, TcAction, XdpAction, FAIR_BUCKETS, type PathName } from '../../src/loader/index.js';
import { buildFrame, ipv6Bytes, macBytes, type FrameSpec } from '../../src/packet/index.js';
import { Scratch } from '../support/host.js';
import { counters as countersOf } from '../support/xdp-cases.js';
import { fastpathFixture, MAC, TABLE1_COSTS, type Fixture } from '../../src/lab/index.js';

let dp: DataPlane;
let scratch: Scratch;
let fx: Fixture;

/** Costs whose ext_vm is dearer than ext_ext, as the config's defaults: a packet costed ext_ext
 *  before the lookup and ext_vm after it would carry more than it offered. */
const COSTS: Record<PathName, number> = { ...TABLE1_COSTS, ext_ext: 1, ext_vm: 2 };
const SETTINGS: DataPlaneSettings = { accounting: true, punish: true, filter: true, pathCost: COSTS, costPerKib: 1 };
const CHANNEL_PORT = 7400;

before(() => {
  scratch = new Scratch('xci');
  dp = DataPlane.open();
  fx = fastpathFixture(dp, scratch);
  dp.configure(SETTINGS);
});

after(() => {
  dp?.close();
  scratch?.cleanup();
});

const noDrops = { cpu: 0, residual: 0, links: [] };
const udp = (dst: string, sport = 1000, dport = 2000, payload = 18) => ({
  src: '10.1.0.2',
  dst,
  udp: { sport, dport },
  payload,
});

function runPhys(frame: Buffer, repeat = 1): number {
  return runXdp(dp.object.program('xnm_phys_in'), { data: frame, ingressIfindex: fx.phys, repeat }).retval;
}

describe('account once, by the final path', () => {
  const cases: { name: string; frame: FrameSpec; path: PathName | undefined }[] = [
    { name: 'forwarded: ext_ext', frame: { dst: MAC.blueP, ipv4: udp('10.9.1.1') }, path: 'ext_ext' },
    { name: 'route via the virtual router: ext_vm', frame: { dst: MAC.blueP, ipv4: udp('10.8.1.1') }, path: 'ext_vm' },
    { name: 'local route (to the router): ext_vm', frame: { dst: MAC.blueP, ipv4: udp('10.1.0.1') }, path: 'ext_vm' },
    {
      name: 'control (TTL 1): ext_vm',
      frame: { dst: MAC.blueP, ipv4: { ...udp('10.9.1.1'), ttl: 1 } },
      path: 'ext_vm',
    },
    {
      name: 'no route: ext_ext (the work the input did)',
      frame: { dst: MAC.blueP, ipv4: udp('10.7.1.1') },
      path: 'ext_ext',
    },
  ];

  test("offered = carried = the final path's cost, without punishment", () => {
    for (const c of cases) {
      const frame = buildFrame(c.frame);
      const before = countersOf(dp, 1);
      runPhys(frame);
      const a = countersOf(dp, 1);
      const cost = BigInt(COSTS[c.path!] + ((frame.length * 1) >> 10));
      assert.equal(a.cpuOffered - before.cpuOffered, cost, `${c.name}: offered`);
      assert.equal(a.cpuCarried - before.cpuCarried, cost, `${c.name}: carried`);
      assert.equal(a.pathPackets[c.path!] - before.pathPackets[c.path!], 1n, `${c.name}: path`);
    }
  });

  test("a CPU-dropped packet offers its final path's cost and carries nothing", () => {
    dp.setDrops(1, { ...noDrops, cpu: 1 });
    try {
      for (const c of cases) {
        const frame = buildFrame(c.frame);
        const before = countersOf(dp, 1);
        assert.equal(runPhys(frame), XdpAction.DROP, c.name);
        const a = countersOf(dp, 1);
        assert.equal(a.cpuOffered - before.cpuOffered, BigInt(COSTS[c.path!]), `${c.name}: offered`);
        assert.equal(a.cpuCarried, before.cpuCarried, `${c.name}: nothing carried`);
        assert.equal(a.verdicts.drop_cpu - before.verdicts.drop_cpu, 1n, `${c.name}: counted as a CPU drop`);
      }
    } finally {
      dp.setDrops(1, noDrops);
    }
  });

  test('carried <= offered over a mix of paths at drop probability 0.5', () => {
    dp.setDrops(1, { ...noDrops, cpu: 0.5 });
    try {
      const before = countersOf(dp, 1);
      for (let i = 0; i < 200; i++) for (const c of cases) runPhys(buildFrame(c.frame));
      const a = countersOf(dp, 1);
      const offered = a.cpuOffered - before.cpuOffered;
      const carried = a.cpuCarried - before.cpuCarried;
      assert.ok(carried <= offered, `carried ${carried} <= offered ${offered}`);
      assert.ok(carried > 0n && carried < offered, 'some dropped, some carried');
    } finally {
      dp.setDrops(1, noDrops);
    }
  });
});

describe('host -> VM is charged to the VM', () => {
  const frame = buildFrame({
    src: MAC.host,
    dst: MAC.blueP,
    ipv4: { src: '10.1.0.254', dst: '10.1.0.1', udp: { sport: 7400, dport: 40000 }, payload: 100 },
  });
  const out = (ingressIfindex: number) =>
    runTc(dp.object.program('xnm_vif_out'), { data: frame, ifindex: fx.vif1, ingressIfindex });

  test("a frame the host sends (no ingress interface) is host_vm, charged to the vif's network", () => {
    const before = countersOf(dp, 1);
    assert.equal(out(0).retval, TcAction.OK);
    const a = countersOf(dp, 1);
    assert.equal(a.pathPackets.host_vm - before.pathPackets.host_vm, 1n);
    const cost = BigInt(COSTS.host_vm + ((frame.length * 1) >> 10));
    assert.equal(a.cpuOffered - before.cpuOffered, cost);
    assert.equal(a.cpuCarried - before.cpuCarried, cost);
  });

  test('a frame from a physical link or another vif was charged where it came in: not again', () => {
    for (const ingress of [fx.phys, fx.vif2]) {
      const before = countersOf(dp, 1);
      const beforeNone = countersOf(dp, 0);
      assert.equal(out(ingress).retval, TcAction.OK);
      const a = countersOf(dp, 1);
      assert.equal(a.cpuOffered, before.cpuOffered, `ingress ${ingress}`);
      assert.equal(a.pathPackets.host_vm, before.pathPackets.host_vm);
      // Nor counted again, under any network: its verdict was counted where it came in.
      assert.deepEqual(
        countersOf(dp, 0).verdicts,
        beforeNone.verdicts,
        `ingress ${ingress}: no verdict under no network`,
      );
      assert.deepEqual(a.verdicts, before.verdicts, `ingress ${ingress}: no second verdict`);
    }
  });

  test('never dropped, even at CPU drop probability 1', () => {
    dp.setDrops(1, { cpu: 1, residual: 1, links: [] });
    try {
      assert.equal(out(0).retval, TcAction.OK);
    } finally {
      dp.setDrops(1, noDrops);
    }
  });
});

describe('flow-aware punishment: the heaviest flows carry the drops', () => {
  // One round: a heavy flow of 200 packets, a medium one of 50 and 30 light ones of 2 each, all
  // to a blackhole route (the frame stays the same under PROG_RUN's repeat; CPU punishment comes
  // first and is counted as drop_cpu).
  const flow = (sport: number) => buildFrame({ dst: MAC.blueP, ipv4: udp('10.66.1.1', sport, 9) });
  const heavy = flow(1);
  const medium = flow(2);
  const light = Array.from({ length: 30 }, (_, i) => flow(100 + i));
  const ROUNDS = 20;
  // The sketch counts packets per epoch of 2^XNM_FAIR_EPOCH_SHIFT ns of the kernel's coarse
  // monotonic clock. Unpaced, the rounds run as fast as PROG_RUN goes, so a flow's measured rate
  // depended on the machine's load at that moment: the histogram F is set from and the run F is
  // applied to saw different rates (CI dropped 55 % for p = 0.3). Paced, each round starts just
  // after an epoch boundary, so every run sees the same rates whatever the load.
  const EPOCH_NS = 1n << 26n;
  const COARSE_LAG_NS = 5_000_000n; // the coarse clock trails CLOCK_MONOTONIC by up to a tick
  const pause = new Int32Array(new SharedArrayBuffer(4));
  function awaitEpochStart(): void {
    const now = process.hrtime.bigint();
    const next = (now / EPOCH_NS + 1n) * EPOCH_NS + COARSE_LAG_NS;
    Atomics.wait(pause, 0, 0, Number(next - now) / 1e6);
  }

  function drops(frames: Buffer | readonly Buffer[], repeat: number): number {
    const before = countersOf(dp, 1).verdicts.drop_cpu;
    for (const frame of Buffer.isBuffer(frames) ? [frames] : frames) runPhys(frame, repeat);
    return Number(countersOf(dp, 1).verdicts.drop_cpu - before);
  }

  function rounds(): { heavy: number; medium: number; light: number; total: number } {
    const d = { heavy: 0, medium: 0, light: 0, total: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      awaitEpochStart();
      d.heavy += drops(heavy, 200);
      d.medium += drops(medium, 50);
      // One read of the counters for all 30 light flows: a round must fit in its epoch, and a
      // read per run had made it long enough for a loaded machine to stretch it over two.
      d.light += drops(light, 2);
    }
    d.total = d.heavy + d.medium + d.light;
    return d;
  }

  function histogram(): Float64Array {
    return dp.readFair([1]).hist.slice(0, FAIR_BUCKETS);
  }

  test("the controller's fair rate drops about p of the packets, none from the light flows", () => {
    const offeredPerRound = 200 + 50 + 60;
    const p = 0.3;
    // Rates are measured only while the network is punished: a first period of random drops at p
    // fills the histogram, from which F is set, as the controller does.
    dp.setDrops(1, { ...noDrops, cpu: p });
    rounds(); // warms the sketch up
    const h0 = histogram();
    const random = rounds();
    assert.ok(random.light > 0, 'random drops hit the light flows too');
    const h1 = histogram();
    const delta = h1.map((v, i) => v - h0[i]);
    assert.equal(
      delta.reduce((s, v) => s + v, 0),
      ROUNDS * offeredPerRound,
      'every offered packet is in the histogram',
    );
    const fair = solveFairRate(delta, p);
    assert.ok(fair > 0, `fair rate ${fair}`);
    dp.setDrops(1, { ...noDrops, cpu: p, fair });
    try {
      const d = rounds();
      const fraction = d.total / (ROUNDS * offeredPerRound);
      console.log(
        `fair dropping: p ${p}, F ${fair}, dropped ${(fraction * 100).toFixed(1)} % (heavy ${d.heavy}, medium ${d.medium}, light ${d.light})`,
      );
      assert.equal(d.light, 0, 'no light flow loses a packet');
      assert.ok(d.heavy > d.medium, `heavy ${d.heavy} > medium ${d.medium}`);
      // F comes from one run's histogram and is applied to the next (as the controller does from
      // period to period): within half of p here; the law's correction closes the rest in a loop.
      assert.ok(
        Math.abs(fraction - p) < 0.5 * p,
        `dropped ${(fraction * 100).toFixed(1)} % of the packets for p = ${p}`,
      );
    } finally {
      dp.setDrops(1, noDrops);
    }
  });

  test("an unpunished network's flows are not measured", () => {
    const h0 = histogram();
    assert.equal(rounds().total, 0);
    assert.deepEqual(histogram(), h0);
  });

  test('without a fair rate, every flow has the same chance (random drops)', () => {
    dp.setDrops(1, { ...noDrops, cpu: 0.5 });
    try {
      const d = rounds();
      assert.ok(d.light > 0.3 * ROUNDS * 60, `light flows lose about half: ${d.light} of ${ROUNDS * 60}`);
    } finally {
      dp.setDrops(1, noDrops);
    }
  });

  test('with fair dropping off, the fair rate is ignored', () => {
    dp.configure({ ...SETTINGS, fairDrop: false });
    dp.setDrops(1, { ...noDrops, cpu: 0.5, fair: 1e9 });
    try {
      assert.ok(drops(heavy, 200) > 50, 'random drops at p');
    } finally {
      dp.setDrops(1, noDrops);
      dp.configure(SETTINGS);
    }
  });
});

describe('the update channel is spared within its budget', () => {
  const toHost = (dport: number) =>
    buildFrame({
      src: MAC.blueP,
      dst: MAC.host,
      ipv4: { src: '10.1.0.1', dst: '10.1.0.254', tcp: { sport: 40000, dport }, payload: 60 },
    });
  const vifRun = (frame: Buffer, repeat: number) =>
    runXdp(dp.object.program('xnm_vif_in'), { data: frame, ingressIfindex: fx.vif1, repeat });

  test("TCP to the manager's port passes up to the budget at CPU drop probability 1; other traffic does not", () => {
    const budget = 5;
    dp.configure({ ...SETTINGS, channelPort: CHANNEL_PORT, channelBudget: budget });
    dp.setDrops(1, { cpu: 1, residual: 1, links: [] });
    try {
      const before = countersOf(dp, 1);
      const exemptBefore = dp.readFair([1]).channelExempt[0];
      vifRun(toHost(CHANNEL_PORT), 40);
      const a = countersOf(dp, 1);
      const passed = Number(a.verdicts.from_vm - before.verdicts.from_vm);
      // An epoch (67 ms) may end during the 40 runs, which renews the budget once.
      assert.ok(passed >= budget && passed <= 2 * budget, `passed ${passed} (budget ${budget})`);
      assert.equal(dp.readFair([1]).channelExempt[0] - exemptBefore, passed, 'counted as exempt');
      assert.equal(
        a.pathPackets.vm_host - before.pathPackets.vm_host,
        BigInt(passed),
        'and still charged to the router',
      );
      assert.equal(vifRun(toHost(CHANNEL_PORT + 1), 1).retval, XdpAction.DROP, 'another port is punished');
      const toGreen = buildFrame({
        src: MAC.blueP,
        dst: MAC.greenP,
        ipv4: { src: '10.1.0.1', dst: '10.2.0.1', tcp: { sport: 40000, dport: CHANNEL_PORT }, payload: 60 },
      });
      assert.equal(vifRun(toGreen, 1).retval, XdpAction.DROP, 'the port on another router is punished');
    } finally {
      dp.setDrops(1, noDrops);
      dp.configure(SETTINGS);
    }
  });

  test('no budget, no exemption', () => {
    dp.setDrops(1, { ...noDrops, cpu: 1 });
    try {
      assert.equal(vifRun(toHost(CHANNEL_PORT), 1).retval, XdpAction.DROP);
    } finally {
      dp.setDrops(1, noDrops);
    }
  });
});

describe('neighbour resolution is spared within its budget', () => {
  const arpFromRouter = buildFrame({
    src: MAC.blueP,
    dst: 'ff:ff:ff:ff:ff:ff',
    arp: { op: 1, senderMac: MAC.blueP, senderIp: '10.1.0.1', targetIp: '10.1.0.2' },
  });
  const arpToRouter = buildFrame({
    src: MAC.ext1,
    dst: MAC.blueP,
    arp: { op: 2, senderMac: MAC.ext1, senderIp: '10.1.0.2', targetIp: '10.1.0.1' },
  });
  /** A neighbour solicitation from blue's router, its source link-layer address its own MAC. */
  const solicitation = (() => {
    const body = Buffer.alloc(24);
    ipv6Bytes('2001:db8:1::2').copy(body, 0);
    body[16] = 1; // source link-layer address
    body[17] = 1; // 8 bytes
    macBytes(MAC.blueP).copy(body, 18);
    return buildFrame({
      src: MAC.blueP,
      dst: '33:33:ff:00:00:02',
      ipv6: { src: '2001:db8:1::1', dst: 'ff02::1:ff00:2', hopLimit: 255, icmp: { type: 135, code: 0 }, payload: body },
    });
  })();
  const echoRequest = buildFrame({
    src: MAC.blueP,
    dst: MAC.ext1,
    ipv6: { src: '2001:db8:1::1', dst: '2001:db8:1::2', icmp: { type: 128, code: 0 }, payload: 24 },
  });
  const vifRun = (frame: Buffer, repeat = 1) =>
    runXdp(dp.object.program('xnm_vif_in'), { data: frame, ingressIfindex: fx.vif1, repeat });
  /** Runs `body` with blue punished at CPU drop probability 1 (residual 1) and this budget. */
  function punished(neighbourBudget: number, body: () => void): void {
    dp.configure({ ...SETTINGS, neighbourBudget });
    dp.setDrops(1, { cpu: 1, residual: 1, links: [] });
    try {
      body();
    } finally {
      dp.setDrops(1, noDrops);
      dp.configure(SETTINGS);
    }
  }

  test("a punished router's ARP passes up to the budget, is counted as exempt and still charged", () => {
    const budget = 5;
    punished(budget, () => {
      const before = countersOf(dp, 1);
      const exemptBefore = dp.readFair([1]).neighbourExempt[0];
      vifRun(arpFromRouter, 40);
      const after = countersOf(dp, 1);
      const passed = Number(after.verdicts.from_vm - before.verdicts.from_vm);
      // An epoch (67 ms) may end during the 40 runs, which renews the budget once.
      assert.ok(passed >= budget && passed <= 2 * budget, `passed ${passed} (budget ${budget})`);
      assert.equal(dp.readFair([1]).neighbourExempt[0] - exemptBefore, passed, 'counted as exempt');
      assert.ok(after.cpuCarried > before.cpuCarried, 'and charged to the router');
      assert.ok(
        after.verdicts.drop_cpu + after.verdicts.drop_residual >
          before.verdicts.drop_cpu + before.verdicts.drop_residual,
        'past the budget, punished',
      );
    });
  });

  test('ND from the router and ARP to it pass; other ICMPv6 and IPv4 do not', () => {
    punished(1000, () => {
      assert.equal(vifRun(solicitation).retval, XdpAction.PASS, 'a neighbour solicitation from the router');
      assert.notEqual(runPhys(arpToRouter), XdpAction.DROP, 'an ARP reply to the router');
      assert.equal(vifRun(echoRequest).retval, XdpAction.DROP, 'an ICMPv6 echo request is data');
      assert.equal(runPhys(buildFrame({ dst: MAC.blueP, ipv4: udp('10.9.1.1') })), XdpAction.DROP, 'IPv4 is data');
    });
  });

  test('no budget, no exemption', () => {
    punished(0, () => {
      assert.equal(vifRun(arpFromRouter).retval, XdpAction.DROP);
      assert.equal(runPhys(arpToRouter), XdpAction.DROP);
    });
  });
});
