// Reconciliation as pure data: the desired topology of a config, and the plan that turns the
// maps' state into it. Unchanged entries are never written; a MAC or a vif that moves from one
// network to another is one in-place change (no DuplicateAttachmentError); what nothing
// declares is removed; writes come in an order where no frame meets a half-made state.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, removeNetwork, type XnetmonConfig } from '../../src/config/index.js';
import { desiredTopology, type TopologyProbe } from '../../src/control/index.js';
import { planTopology, summarizePlan, emptyTopology, type TopologyState } from '../../src/dataplane/index.js';

const key = (seed: number): string => {
  const bytes = Buffer.alloc(32, 0x5a);
  bytes.writeUInt32BE(seed);
  return bytes.toString('base64');
};

const BASE = parseConfig(
  `
host:
  links:
    - { name: l0, capacity_mbps: 1000 }
networks:
  - id: 1
    name: blue
    routers: [{ vif: vb, client_public_key: "${key(1)}" }]
    attachments: [{ interface: l0, mac: "02:00:00:00:01:01", vif: vb }]
  - id: 2
    name: green
    routers: [{ vif: vg, client_public_key: "${key(2)}" }]
    attachments: [{ interface: l0, vlan: 10, mac: "02:00:00:00:02:01", vif: vg }]
  - id: 3
    name: red
    routers: [{ vif: vr, client_public_key: "${key(3)}" }]
    attachments: [{ interface: l0, mac: "02:00:00:00:03:01", vif: vr }]
`,
  'test.yaml',
);

const IFINDEX: Record<string, number> = { l0: 10, vb: 21, vg: 22, vr: 23, vx: 24 };
const probe: TopologyProbe = { ifindexOf: (name) => IFINDEX[name]!, hostMacOf: () => '02:00:00:00:00:fe' };
const desired = (config: XnetmonConfig): TopologyState => desiredTopology(config, probe).state;

/** A state as a map reader would return it: deep copies, so the plan cannot lean on identity. */
function copy(state: TopologyState): TopologyState {
  return {
    ifaces: new Map([...state.ifaces].map(([k, v]) => [k, { ...v }])),
    classify: new Map([...state.classify].map(([k, v]) => [k, { ...v }])),
    vifMacs: new Map([...state.vifMacs].map(([k, v]) => [k, { ...v }])),
    segAddrs: new Map([...state.segAddrs].map(([k, v]) => [k, { ...v }])),
  };
}

describe('desired topology', () => {
  it('is what a fresh daemon writes: links, vifs locked to their MACs, classification, the host MAC, VLAN groups', () => {
    const s = desired(BASE);
    assert.deepEqual(s.ifaces.get(10), {
      kind: 'phys',
      netId: 0,
      linkSlot: 0,
      segIfindex: 0,
      segVlan: 0,
      macLocked: false,
    });
    assert.deepEqual(s.ifaces.get(22), {
      kind: 'vif',
      netId: 2,
      linkSlot: 0,
      segIfindex: 10,
      segVlan: 10,
      macLocked: true,
    });
    assert.equal(s.classify.get('10/0/02:00:00:00:00:fe')?.netId, 0, "the host's own MAC");
    assert.equal(s.classify.get('10/0/02:00:00:00:01:01')?.vifIfindex, 21);
    assert.deepEqual(
      s.classify.get('10/10/00:00:00:00:00:00'),
      { ifindex: 10, vlan: 10, mac: '00:00:00:00:00:00', netId: 2, vifIfindex: 22 },
      'VLAN 10 has one network: it gets the broadcasts',
    );
    assert.equal(s.vifMacs.get('23/02:00:00:00:03:01')?.netId, 3);
  });
});

describe('planTopology', () => {
  it('writes nothing when the maps already hold the config', () => {
    const plan = planTopology(copy(desired(BASE)), desired(BASE));
    assert.equal(plan.ops.length, 0);
    assert.ok(plan.unchanged > 0);
  });

  it('from empty maps, adds every entry: interfaces before what classifies to them', () => {
    const plan = planTopology(emptyTopology(), desired(BASE));
    assert.ok(plan.ops.every((op) => !op.before));
    const firstClassify = plan.ops.findIndex((op) => op.map === 'classify');
    const lastIface = plan.ops.map((op) => op.map).lastIndexOf('ifaces');
    assert.ok(lastIface < firstClassify, 'vifs exist before frames are classified to them');
  });

  it('a network removed from the config: its entries go, the others are not touched', () => {
    const plan = planTopology(copy(desired(BASE)), desired(removeNetwork(BASE, 'red')));
    assert.ok(plan.ops.length > 0 && plan.ops.every((op) => !op.after), 'only removals');
    for (const op of plan.ops) {
      const entry = op.before as { netId: number };
      assert.equal(entry.netId, 3, `only red's entries are removed (${op.map} ${String(op.key)})`);
    }
    const sum = summarizePlan(plan);
    assert.deepEqual(sum.ifaces, { add: 0, change: 0, remove: 1 });
    assert.deepEqual(sum.classify, { add: 0, change: 0, remove: 1 });
    assert.deepEqual(sum.vifMacs, { add: 0, change: 0, remove: 1 });
  });

  it('a MAC moved from red to blue is one in-place change of its classification entry', () => {
    const next: XnetmonConfig = {
      ...BASE,
      networks: BASE.networks.map((n) => {
        if (n.name === 'red') return { ...n, attachments: [] };
        if (n.name === 'blue')
          return {
            ...n,
            attachments: [...n.attachments, { interface: 'l0', vlan: 0, mac: '02:00:00:00:03:01', vif: 'vb' }],
          };
        return n;
      }),
    };
    const plan = planTopology(copy(desired(BASE)), desired(next));
    const classify = plan.ops.filter((op) => op.map === 'classify');
    assert.equal(classify.length, 1);
    assert.equal(classify[0]!.before?.netId, 3);
    assert.equal(classify[0]!.after?.netId, 1, 'the entry now says blue, written once, never absent');
    assert.ok(
      plan.ops.every((op) => op.map !== 'classify' || op.before),
      'no delete-then-add',
    );
    // blue's own entries are not rewritten
    assert.ok(!plan.ops.some((op) => op.map === 'classify' && op.key === '10/0/02:00:00:00:01:01'));
  });

  it("net del red, then a network that re-uses red's vif: the vif entry changes owner in place", () => {
    const without = removeNetwork(BASE, 'red');
    const gold = { ...BASE.networks[2]!, id: 4, name: 'gold', routers: [{ vif: 'vr', clientPublicKey: key(4) }] };
    const next: XnetmonConfig = { ...without, networks: [...without.networks, gold] };
    const afterDel = desired(without);
    const plan = planTopology(copy(afterDel), desired(next));
    assert.ok(
      plan.ops.every((op) => !op.before),
      'after the delete, re-using the vif only adds',
    );
    const direct = planTopology(copy(desired(BASE)), desired(next));
    const vif = direct.ops.find((op) => op.map === 'ifaces');
    assert.equal(vif?.before?.netId, 3);
    assert.equal(vif?.after?.netId, 4);
  });

  it('a router address moved from red to blue is one in-place change of its segment entry; the text form is one', () => {
    const withAddresses = (config: XnetmonConfig, owner: string): XnetmonConfig => ({
      ...config,
      networks: config.networks.map((n) =>
        n.name !== owner
          ? n
          : {
              ...n,
              attachments: n.attachments.map((a, i) => (i ? a : { ...a, addresses: ['10.3.0.1', 'FE80::0:1'] })),
            },
      ),
    });
    const red = desired(withAddresses(BASE, 'red'));
    assert.deepEqual(red.segAddrs.get('10/0/fe80::1'), { ifindex: 10, vlan: 0, address: 'fe80::1', netId: 3 });
    assert.equal(planTopology(copy(red), desired(withAddresses(BASE, 'red'))).ops.length, 0);
    const plan = planTopology(copy(red), desired(withAddresses(BASE, 'blue')));
    const addrs = plan.ops.filter((op) => op.map === 'segAddrs');
    assert.equal(addrs.length, 2);
    assert.ok(
      addrs.every((op) => op.before?.netId === 3 && op.after?.netId === 1),
      'owner changed in place, never absent',
    );
    assert.deepEqual(summarizePlan(plan).segAddrs, { add: 0, change: 2, remove: 0 });
    const gone = planTopology(copy(red), desired(BASE));
    assert.deepEqual(summarizePlan(gone).segAddrs, { add: 0, change: 0, remove: 2 });
  });

  it('removals come after every add and change, so a frame never finds a half-made network', () => {
    const next: XnetmonConfig = {
      ...BASE,
      networks: [
        BASE.networks[0]!,
        {
          ...BASE.networks[2]!,
          id: 5,
          name: 'gold',
          routers: [{ vif: 'vx', clientPublicKey: key(5) }],
          attachments: [{ interface: 'l0', vlan: 0, mac: '02:00:00:00:05:01', vif: 'vx' }],
        },
      ],
    };
    const plan = planTopology(copy(desired(BASE)), desired(next));
    const firstRemove = plan.ops.findIndex((op) => !op.after);
    assert.ok(firstRemove > 0);
    assert.ok(plan.ops.slice(firstRemove).every((op) => !op.after));
  });
});
