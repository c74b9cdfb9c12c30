// The in-memory form of an XNetMon configuration: camelCase, fully defaulted.
// The file form (snake_case YAML) lives in schema.ts; docs/config.md documents both.

/** Which Dom0 (host) CPU cost a packet is charged, by where it comes from and goes to. */
export interface CostTable {
  /** External machine -> external machine through the shared (plane-separated) fast path. */
  readonly extExt: number;
  /** External machine -> virtual router (control packets, or a default route to the VM). */
  readonly extVm: number;
  /** Virtual router -> external machine. */
  readonly vmExt: number;
  /** Virtual router -> another virtual router on this host; charged to the sender. */
  readonly vmVm: number;
  /** Virtual router <-> host (either direction); always charged to the virtual router. */
  readonly vmHost: number;
}

/** A physical (or lab) interface of the host that carries tenants' traffic. */
export interface LinkDefinition {
  readonly name: string;
  readonly capacityMbps: number;
}

export type ControlLaw = 'share' | 'algorithm1';
export type FilterDefault = 'accept' | 'drop';

export interface HostSettings {
  /** bpffs directory for pinned maps and links. */
  readonly pinDir: string;
  /** Controller period T in milliseconds. */
  readonly periodMs: number;
  readonly controlLaw: ControlLaw;
  /** Critical level beta: punish above alpha only when total usage >= beta * R. */
  readonly beta: number;
  /** Algorithm 1's Phi_initial. */
  readonly phiInitial: number;
  /** Constant residual drop probability applied on every virtual router's input. */
  readonly residualDrop: number;
  /** Host CPU capacity R for the CPU resource, in cost units per second. */
  readonly cpuCapacity: number;
  /** 'table': R = cpuCapacity and the constant costs; 'measured': costs fitted to the measured CPU time, R = cores x period x cpuShare. */
  readonly cpuModel: 'table' | 'measured';
  /** The share of the host's cores forwarding may use (measured model), in (0, 1]. */
  readonly cpuShare: number;
  /** Total routes the host accepts over all networks (R for the memory resource). */
  readonly fibCapacity: number;
  /** Memory control starts when installed routes reach fibCritical * fibCapacity. */
  readonly fibCritical: number;
  /** Slots per CPU of the data plane's IPv4 flow cache (a power of two). */
  readonly flowCacheSlots: number;
  /** XDP attach mode: native where the driver has it (auto falls back to generic, e.g. Xen netback vifs). */
  readonly xdpMode: 'auto' | 'native' | 'generic';
  /** TC attach mode: tcx links (Linux 6.6+) or a cls_bpf filter on clsact (older kernels); auto picks. */
  readonly tcMode: 'auto' | 'tcx' | 'cls_bpf';
  readonly costs: CostTable;
  /** Extra cost units per KiB of packet, added to the per-path cost (0 = off). */
  readonly costPerKib: number;
  readonly links: readonly LinkDefinition[];
  /** Secure channel listen address, "host:port" or "[ipv6]:port". */
  readonly listen: string;
  readonly hostPrivateKeyFile: string;
  readonly adminSocket: string;
  /** Prometheus endpoint "host:port", or null when disabled. */
  readonly metricsListen: string | null;
  /** Graceful-restart hold time for routes of a disconnected router, seconds. */
  readonly staleRouteTimeoutS: number;
  /** e_max of the replay check, milliseconds. */
  readonly eMaxMs: number;
  /** Update messages each router session may send per second, on average (its token bucket's rate). */
  readonly updateMessagesPerS: number;
  /** How many update messages a session may send at once above that rate (the bucket's size). */
  readonly updateMessagesBurst: number;
}

/** Fixed reservations alpha, each a fraction of the host's resource in [0, 1]. */
export interface Reservation {
  readonly cpu: number;
  readonly fib: number;
  /** Per output link: fraction of that link's capacity; keys are host link names. */
  readonly links: Readonly<Record<string, number>>;
}

/** One virtual router of a network: its host-side interface and its secure-channel key. */
export interface VirtualRouter {
  /** Host-side interface of the router (Xen vif, veth or tap). */
  readonly vif: string;
  /** Base64 of the router's 32-byte public key. */
  readonly clientPublicKey: string;
}

/** Where a network's traffic arrives on a physical link: the classification key. */
export interface Attachment {
  /** A host link name. */
  readonly interface: string;
  /** 0 = untagged, 1..4094 = 802.1Q VLAN id. */
  readonly vlan: number;
  /** The virtual router's MAC that external machines send to (lower-case, colon-separated). */
  readonly mac: string;
  /** The router's host-side interface on this segment (one of its routers' vifs): control
   *  traffic and via-VM routes are redirected to it; absent, the host bridge delivers them. */
  readonly vif?: string;
  /** The router's own IP addresses on this segment (normalised text): no other network's router
   *  may claim them in ARP or neighbour discovery. Absent: nobody is stopped from claiming them. */
  readonly addresses?: readonly string[];
}

/**
 * Per-network limits on the tables every network shares (data plane maps and the update
 * manager's neighbour table). An absent field takes the network's default share of the table
 * (networkQuotas in quota.ts; docs/config.md states the formula): it depends on the other
 * networks' reservations, so it is computed, not stored.
 */
export interface QuotaSettings {
  /** IPv4 routes in xnm_routes4 (router routes, neighbour host routes, memory control's default). */
  readonly routes4?: number;
  /** IPv6 routes in xnm_routes6. */
  readonly routes6?: number;
  /** Next hops in xnm_nexthops. */
  readonly nexthops?: number;
  /** Neighbour entries the update manager keeps for the network. */
  readonly neighbours?: number;
}

export interface NetworkDefinition {
  /** 1..4095, unique; the data plane's key for this network. */
  readonly id: number;
  /** [a-z][a-z0-9_-]{0,31}, unique. */
  readonly name: string;
  /** Idle-share priority W, integer 1..1000. */
  readonly weight: number;
  readonly reserve: Reservation;
  readonly routers: readonly VirtualRouter[];
  readonly attachments: readonly Attachment[];
  /** Default verdict of the replicated packet filter. */
  readonly filterDefault: FilterDefault;
  /** Explicit limits on the shared tables; absent fields take the default share. */
  readonly quota: QuotaSettings;
}

export interface XnetmonConfig {
  readonly host: HostSettings;
  readonly networks: readonly NetworkDefinition[];
}

/** A network as given to addNetwork: fields with a file default may be left out. */
export interface NetworkDefinitionInput {
  readonly id: number;
  readonly name: string;
  readonly weight?: number;
  readonly reserve?: Partial<Reservation>;
  readonly routers: readonly VirtualRouter[];
  readonly attachments?: readonly Attachment[];
  readonly filterDefault?: FilterDefault;
  readonly quota?: QuotaSettings;
}

/** Machine-dependent checks that validateConfig runs only when the caller supplies them. */
export interface ConfigChecks {
  /** True when a network interface of that name exists on this machine. */
  readonly interfaceExists?: (name: string) => boolean;
  /**
   * Entries of the shared tables, when the data plane is opened with other sizes than
   * bpf/xnetmon.h's (tests with small maps); default DEFAULT_TABLE_CAPACITIES (quota.ts).
   */
  readonly tableCapacities?: Partial<TableCapacities>;
}

/** Entries each shared table holds for all networks together. */
export interface TableCapacities {
  readonly routes4: number;
  readonly routes6: number;
  readonly nexthops: number;
  readonly neighbours: number;
}
