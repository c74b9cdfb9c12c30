// What the daemon answers to the admin commands that the CLI formats, defined once: the daemon
// builds these (typed against them), the CLI checks a reply against them before formatting it.
// To add a field: add it here (optional if an older daemon may lack it), set it where the
// daemon builds the view (src/control/daemon.ts), and show it in src/cli/format.ts if wanted.
// `--json` prints the daemon's answer as it came; a field this CLI does not know is kept there.
import { z } from 'zod';

const resourceStatus = z.object({
  /** "cpu", "fib" or a link's name. */
  resource: z.string(),
  /** R: the resource's capacity in its unit (cost units, bytes or routes per period). */
  capacity: z.number(),
  reserved: z.number(),
  offered: z.number(),
  carried: z.number(),
  target: z.number(),
  dropProbability: z.number(),
});

const networkStatus = z.object({
  id: z.number(),
  name: z.string(),
  weight: z.number(),
  reserve: z.object({ cpu: z.number(), fib: z.number(), links: z.record(z.string(), z.number()) }),
  /** Routes installed in the data plane. */
  routes: z.number(),
  /** Per shared table: { used, quota, rejections }; and mapWriteFailures. Null without an update manager. */
  quotas: z
    .record(
      z.string(),
      z.union([z.number(), z.object({ used: z.number(), quota: z.number(), rejections: z.number() })]),
    )
    .nullable(),
  forwarded: z.number(),
  toRouter: z.number(),
  resources: z.array(resourceStatus),
  /** Drops by reason (drop_*). */
  drops: z.record(z.string(), z.number()),
  /** Every verdict by reason (from_vm, tc_pass and to_vm_* too): with noNetwork, every packet. */
  packets: z.record(z.string(), z.number()).optional(),
});

const driftCounts = z.object({ add: z.number(), change: z.number(), remove: z.number() });

/**
 * `check`: what converging the data plane to the running configuration would change (nothing is
 * changed); status's `drift`: what the last reconciliation that changed anything did.
 */
export const driftViewSchema = z.object({
  /** start, reload, change (a live net command) or check (nothing written). */
  trigger: z.enum(['start', 'reload', 'change', 'check']),
  /** When, as an ISO 8601 time. */
  at: z.string(),
  /** Ids of networks that were in the maps and not in the configuration. */
  networks: z.array(z.number()),
  /** Map entries written or removed, all maps together. */
  entries: z.number(),
  /** Per map: entries added, changed and removed. */
  maps: z.record(z.string(), driftCounts),
  /** Networks whose filter default was (or would be) set back to the configuration's. */
  filters: z.array(z.object({ netId: z.number(), network: z.string(), to: z.enum(['drop', 'accept']) })),
  /** Interfaces whose programs were (or would be) detached: the configuration does not name them. */
  detached: z.array(z.string()),
  /** Declared interfaces without their pinned XDP program. */
  missingPrograms: z.array(z.string()),
});

export type DriftView = z.infer<typeof driftViewSchema>;

/** Status's drift: a daemon from before reconciliation reports only networks and entries. */
const statusDrift = driftViewSchema.partial({
  trigger: true,
  at: true,
  maps: true,
  filters: true,
  detached: true,
  missingPrograms: true,
});

/** The last reconciliation as status reports it (the fields after networks and entries may be missing). */
export type StatusDriftView = z.infer<typeof statusDrift>;

const nullableNumber = z.number().nullable();

/** The CPU model (src/cpu CpuMeterView): where R and the cost table come from, and the fit's quality. */
const cpuStatus = z.object({
  source: z.enum(['measured', 'table']),
  fallbackReason: z.string().nullable(),
  unit: z.string(),
  costs: z.record(z.string(), z.number()),
  costPerKib: z.number(),
  capacityPerS: z.number(),
  cores: z.number(),
  share: z.number(),
  fit: z
    .object({ rSquared: nullableNumber, rmseNs: z.number(), samples: z.number(), converged: z.boolean() })
    .nullable(),
  fittedCosts: z.record(z.string(), z.number()).nullable(),
  fittedCostPerKib: nullableNumber,
  measuredNsPerS: nullableNumber,
  unattributedNsPerS: nullableNumber,
  bpfRunTimeNsPerS: nullableNumber,
});

export const statusViewSchema = z.object({
  uptimeS: z.number(),
  law: z.string(),
  periodMs: z.number(),
  /** False: accounting only (`xnetmon up --no-control`). */
  control: z.boolean(),
  lastPeriod: z.object({ period: z.number(), durationMs: z.number() }).nullable(),
  /** The CPU model: cost table (measured or constant), its fit quality, R and U(t). */
  cpu: cpuStatus.optional(),
  /** The last reconciliation that changed anything (at start: the start-up's, changed or not). */
  drift: statusDrift,
  /** What the kernel runs on each interface: XDP native or generic, TC as tcx or cls_bpf. */
  attachments: z.array(z.object({ ifname: z.string(), xdp: z.string(), tc: z.string() })),
  /** Periods and memory control actions that failed and were survived, by kind. */
  controllerFailures: z.record(z.string(), z.number()),
  /** Verdicts of frames that belong to no network, by reason (non-zero only). */
  noNetwork: z.record(z.string(), z.number()),
  networks: z.array(networkStatus),
});

/** `status`: the daemon, each network's reservations, use, drop probabilities and drops. */
export type StatusView = z.infer<typeof statusViewSchema>;
export type NetworkStatus = z.infer<typeof networkStatus>;
export type ResourceStatusView = z.infer<typeof resourceStatus>;
export type CpuStatusView = z.infer<typeof cpuStatus>;

export const networkSummarySchema = z.object({
  id: z.number(),
  name: z.string(),
  weight: z.number(),
  reserve: z.object({ cpu: z.number(), fib: z.number(), links: z.record(z.string(), z.number()) }),
});

/** `net.list`: one entry per network. */
export type NetworkSummary = z.infer<typeof networkSummarySchema>;

const routeTarget = z.union([
  z.object({ kind: z.literal('nexthop'), nexthopId: z.number() }),
  z.object({ kind: z.enum(['via-vm', 'local', 'blackhole']) }),
]);

export const routesViewSchema = z.object({
  network: z.string(),
  routes: z.array(z.object({ prefix: z.string(), target: routeTarget })),
});

/** `routes`: a network's forwarding table as installed in the host. */
export type RoutesView = z.infer<typeof routesViewSchema>;

/** `clients`: one object per virtual router session (fields from the update manager). */
export const clientsViewSchema = z.array(z.record(z.string(), z.unknown()));
export type ClientsView = z.infer<typeof clientsViewSchema>;
