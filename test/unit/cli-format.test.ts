// `xnetmon status` and `top` (one formatter): a share above the configured R is marked and
// explained, and the traffic of no network has its line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCpu, formatStatus, OVER_R_NOTE } from '../../src/cli/format.js';
import { parseStatusView, type CpuStatusView, type StatusView } from '../../src/admin/index.js';

const status = (carried: number, noNetwork: Record<string, number> = {}): StatusView => ({
  uptimeS: 5,
  law: 'share',
  periodMs: 100,
  control: true,
  lastPeriod: { period: 3, durationMs: 0.5 },
  noNetwork,
  drift: { networks: [], entries: 0 },
  attachments: [],
  controllerFailures: {},
  networks: [
    {
      id: 1,
      name: 'red',
      weight: 500,
      reserve: { cpu: 0.2, fib: 0, links: {} },
      quotas: null,
      routes: 2,
      forwarded: 10,
      toRouter: 1,
      drops: { drop_cpu: 4 },
      resources: [
        { resource: 'cpu', capacity: 1000, reserved: 200, offered: 1500, carried, target: 200, dropProbability: 0.3 },
      ],
    },
  ],
});

test('a use above the configured R is marked >R and explained', () => {
  const text = formatStatus(status(1140));
  assert.match(text, /red\s+cpu\s+114\.0% >R\s+20\.0%/);
  assert.ok(text.includes(OVER_R_NOTE));
});

test('within R: no mark, no note', () => {
  const text = formatStatus(status(900));
  assert.match(text, /red\s+cpu\s+90\.0%\s+20\.0%/);
  assert.doesNotMatch(text, />R/);
});

test('traffic of no network has its line, by reason', () => {
  assert.match(
    formatStatus(status(900, { pass_host: 12, drop_malformed: 3 })),
    /^\(no network\)\s+pass_host=12 drop_malformed=3$/m,
  );
  assert.doesNotMatch(formatStatus(status(900)), /no network/);
});

test("net list, routes and clients: the daemon's answers checked against their views, then tabled", async () => {
  const admin = await import('../../src/admin/index.js');
  const { parseNetworkSummaries, parseRoutesView, parseClientsView, parseStatusView, AdminReplyError } = admin;
  const { formatNetworks, formatRoutes, formatClients } = await import('../../src/cli/format.js');
  const nets = parseNetworkSummaries([
    { id: 1, name: 'blue', weight: 500, reserve: { cpu: 0.3, fib: 0.2, links: { eth1: 0.5 } } },
  ]);
  assert.equal(formatNetworks(nets), 'ID  NAME  WEIGHT  CPU  FIB  LINKS\n1   blue  500     0.3  0.2  eth1=0.5');
  const routes = parseRoutesView({
    network: 'blue',
    routes: [
      { prefix: '10.1.0.0/16', target: { kind: 'nexthop', nexthopId: 3 } },
      { prefix: '0.0.0.0/0', target: { kind: 'via-vm' } },
    ],
  });
  assert.equal(formatRoutes(routes), 'PREFIX       TARGET\n10.1.0.0/16  next hop 3\n0.0.0.0/0    via-vm');
  assert.equal(formatClients(parseClientsView([])), 'no virtual router connected');
  const clients = parseClientsView([{ network: 'blue', connected: true, lastUpdate: null }]);
  assert.equal(formatClients(clients), 'NETWORK  CONNECTED  LASTUPDATE\nblue     true       null');
  // A reply of another shape (a daemon of another version) is one error naming where it differs.
  assert.throws(
    () => parseRoutesView({ network: 'blue', routes: [{ prefix: 7 }] }),
    (err: unknown) => err instanceof AdminReplyError && /answer to routes .* at routes\.0\.prefix/.test(err.message),
  );
  assert.throws(() => parseStatusView({ law: 'share' }), AdminReplyError);
  assert.equal(parseStatusView(status(10)).networks[0].name, 'red');
});

test("check: the answer checked against its view, then shown; status shows drift, an old daemon's too", async () => {
  const { parseDriftView, parseStatusView, AdminReplyError } = await import('../../src/admin/index.js');
  const { formatDrift, driftFound } = await import('../../src/cli/format.js');
  const none = {
    trigger: 'check',
    at: '2026-12-02T09:00:00.000Z',
    networks: [],
    entries: 0,
    maps: {},
    filters: [],
    detached: [],
    missingPrograms: [],
  };
  assert.equal(formatDrift(parseDriftView(none)), 'the data plane matches the configuration');
  const drift = parseDriftView({
    ...none,
    networks: [7],
    entries: 3,
    maps: { xnm_iface: { add: 0, change: 1, remove: 2 } },
    filters: [{ netId: 2, network: 'green', to: 'drop' }],
    detached: ['vif7.0'],
  });
  assert.ok(driftFound(drift));
  const text = formatDrift(drift);
  assert.match(text, /^drift \(check, 2026-12-02T09:00:00\.000Z\): 3 map entries$/m);
  assert.match(text, /networks the configuration does not declare: 7 \(reconciliation would remove them\)/);
  assert.match(text, /^xnm_iface\s+0\s+1\s+2$/m);
  assert.match(text, /filter of green: default would become drop/);
  assert.match(text, /programs on interfaces the configuration does not name: vif7\.0/);
  assert.throws(
    () => parseDriftView({ ...none, trigger: 'sometime' }),
    (err: unknown) => err instanceof AdminReplyError && /answer to check .* at trigger/.test(err.message),
  );
  // status: the last reconciliation that changed anything is shown under the tables.
  assert.match(
    formatStatus(parseStatusView({ ...status(10), drift: { ...drift, trigger: 'start' } })),
    /\n\ndrift \(start, .*\): 3 map entries\nnetworks the configuration does not declare: 7 \(reconciliation did/,
  );
  // A daemon from before reconciliation reports networks and entries only.
  const older = parseStatusView({ ...status(10), drift: { networks: [4], entries: 9 } });
  assert.match(formatStatus(older), /\n\ndrift: 9 map entries\n/);
  assert.doesNotMatch(formatStatus(status(10)), /drift/);
});

const parseStatusViewCpu = (v: StatusView): string | undefined => parseStatusView(v).cpu?.source;

test("the CPU model: where R and the costs come from, the fit's quality, and why the table applies", () => {
  const costs = { ext_ext: 1, ext_vm: 2, vm_ext: 60, vm_vm: 85, vm_host: 66, host_vm: 66 };
  const cpu: CpuStatusView = {
    source: 'measured',
    fallbackReason: null,
    unit: 'ns',
    costs: { ...costs, ext_ext: 310 },
    costPerKib: 40,
    capacityPerS: 9.8e8,
    cores: 2,
    share: 0.5,
    fit: { rSquared: 0.934, rmseNs: 120000, samples: 50, converged: true },
    fittedCosts: { ...costs, ext_ext: 310 },
    fittedCostPerKib: 40,
    measuredNsPerS: 3e8,
    unattributedNsPerS: 2e7,
    bpfRunTimeNsPerS: null,
  };
  const text = formatCpu(cpu);
  assert.match(
    text,
    /cpu: measured costs \(ns\); R 980000000 ns\/s \(2 cores x share 0\.5, less the unattributed load\)/,
  );
  assert.match(text, /U\(t\) irq\+softirq 30\.0% of a core, unattributed 2\.0% of a core, data plane programs -/);
  assert.match(text, /fit R\^2 0\.934/);
  assert.match(text, /^in use\s+310\s+2\s+60\s+85\s+66\s+66\s+40$/m);
  const table = formatCpu({
    ...cpu,
    source: 'table',
    unit: 'cost units',
    costs,
    costPerKib: 0,
    capacityPerS: 2e6,
    fallbackReason: 'warming up',
    fit: null,
  });
  assert.match(
    table,
    /cpu: table costs \(cost units\) - table because warming up; R 2000000 cost units\/s \(cpu_capacity\)/,
  );
  assert.match(table, /no fit yet/);
  assert.match(formatStatus({ ...status(900), cpu }), /^cpu: measured/m);
  assert.equal(parseStatusViewCpu({ ...status(900), cpu }), 'measured', 'the admin view keeps the CPU model');
});
