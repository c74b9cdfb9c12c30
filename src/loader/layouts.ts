// TypeScript mirror of bpf/xnetmon.h: constants, enums and struct layouts.
// test/integration/btf.test.ts checks every one of them against the object's BTF.
import { StructLayout, array } from './layout.js';

export const MAX_NETS = 4096;
export const MAX_LINKS = 16;
export const MAX_NEXTHOPS = 65536;
export const MAX_IFACES = 1024;
export const MAX_FILTER_RULES = 32;
/** Per CPU: 256 slots of 32 bytes, 8 KiB, stay in the CPU caches and the TLB (bpf/xnetmon.h). */
export const FLOW_CACHE_SLOTS = 256;
/** enum xnm_flow_state. */
export const FlowState = { FOUND: 1, UNFILTERED: 2 } as const;

export const IfaceKind = { NONE: 0, PHYS: 1, VIF: 2 } as const;
/** enum xnm_iface_flags. */
export const IfaceFlags = { MAC_LOCKED: 1 } as const;

/** enum xnm_path: packet paths, each with its own CPU cost (paper IV-A, Table I). */
export const PATHS = ['ext_ext', 'ext_vm', 'vm_ext', 'vm_vm', 'vm_host', 'host_vm'] as const;
export type PathName = (typeof PATHS)[number];

/** enum xnm_reason, in order: the index is the C value. */
export const REASONS = [
  'forward',
  'to_vm_control',
  'to_vm_route',
  'from_vm',
  'pass_host',
  'tc_pass',
  'drop_malformed',
  'drop_no_route',
  'drop_blackhole',
  'drop_nexthop',
  'drop_cpu',
  'drop_link',
  'drop_residual',
  'drop_filter',
  'drop_redirect',
  'drop_vlan',
  'drop_spoof',
  'drop_no_vif',
  'to_vm_mtu',
  'to_vm_exthdr',
] as const;
export type ReasonName = (typeof REASONS)[number];

export const RouteFlags = { VIA_VM: 1, LOCAL: 2, BLACKHOLE: 4 } as const;
export const NEXTHOP_VALID = 1;
export const SettingsFlags = { ACCOUNTING: 1, PUNISH: 2, FILTER: 4, FLOW_CACHE: 8, FAIR_DROP: 16 } as const;

/** Flow-aware punishment (bpf/xnetmon.h): sketch size, epoch and the rate histogram's buckets. */
export const SKETCH_ROWS = 2;
export const SKETCH_COLS = 4096;
/** An epoch of the flow rate sketch is 2^26 ns (67 ms). */
export const FAIR_EPOCH_SHIFT = 26;
export const FAIR_BUCKETS = 40;

export const ifaceLayout = new StructLayout('xnm_iface', [
  { name: 'kind', type: 'u32' },
  { name: 'net_id', type: 'u32' },
  { name: 'link_slot', type: 'u32' },
  { name: 'seg_ifindex', type: 'u32' },
  { name: 'seg_vlan', type: 'u16' },
  { name: 'flags', type: 'u16' },
]);

export const vifMacKeyLayout = new StructLayout('xnm_vif_mac_key', [
  { name: 'ifindex', type: 'u32' },
  { name: 'mac', type: array('u8', 6) },
  { name: 'pad', type: 'u16' },
]);

export const segAddrKeyLayout = new StructLayout('xnm_seg_addr_key', [
  { name: 'ifindex', type: 'u32' },
  { name: 'vlan', type: 'u16' },
  { name: 'family', type: 'u8' },
  { name: 'pad', type: 'u8' },
  { name: 'addr', type: array('u8', 16) },
]);

export const classifyKeyLayout = new StructLayout('xnm_classify_key', [
  { name: 'ifindex', type: 'u32' },
  { name: 'vlan', type: 'u16' },
  { name: 'mac', type: array('u8', 6) },
]);

export const classifyValLayout = new StructLayout('xnm_classify_val', [
  { name: 'net_id', type: 'u32' },
  { name: 'vif_ifindex', type: 'u32' },
]);

export const route4KeyLayout = new StructLayout('xnm_route4_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'net_id', type: 'u32' },
  { name: 'addr', type: 'be32' },
]);

/** Key of xnm_routes4_exact: the fast path's exact-match index of IPv4 routes (prefixlen without net_id's 32 bits). */
export const route4ExactKeyLayout = new StructLayout('xnm_route4_exact_key', [
  { name: 'net_id', type: 'u32' },
  { name: 'prefixlen', type: 'u32' },
  { name: 'addr', type: 'be32' },
]);

/** Hash probes of the index before the fast path asks the trie (XNM_ROUTE4_MAX_PROBES). */
export const ROUTE4_MAX_PROBES = 8;

/** Value of xnm_route4_lengths: the prefix lengths the fast path probes for a network, longest first. */
export const route4LengthsLayout = new StructLayout('xnm_route4_lengths', [
  { name: 'indexed', type: 'u8' },
  { name: 'count', type: 'u8' },
  { name: 'more', type: 'u8' },
  { name: 'pad', type: 'u8' },
  { name: 'len', type: array('u8', ROUTE4_MAX_PROBES) },
  { name: 'pad2', type: 'u32' },
  { name: 'present', type: 'u64' },
]);

export const route6KeyLayout = new StructLayout('xnm_route6_key', [
  { name: 'prefixlen', type: 'u32' },
  { name: 'net_id', type: 'u32' },
  { name: 'addr', type: array('u8', 16) },
]);

export const routeValLayout = new StructLayout('xnm_route_val', [
  { name: 'nexthop_id', type: 'u32' },
  { name: 'flags', type: 'u32' },
]);

export const nexthopLayout = new StructLayout('xnm_nexthop', [
  { name: 'ifindex', type: 'u32' },
  { name: 'net_id', type: 'u32' },
  { name: 'link_slot', type: 'u32' },
  { name: 'vlan', type: 'u16' },
  { name: 'flags', type: 'u16' },
  { name: 'smac', type: array('u8', 6) },
  { name: 'dmac', type: array('u8', 6) },
  { name: 'mtu', type: 'u16' },
  { name: 'pad', type: 'u16' },
]);

export const dropLayout = new StructLayout('xnm_drop', [
  { name: 'cpu', type: 'u32' },
  { name: 'residual', type: 'u32' },
  { name: 'link', type: array('u32', MAX_LINKS) },
  { name: 'cpu_fair', type: 'u32' },
]);

export const flowRateLayout = new StructLayout('xnm_flow_rate', [
  { name: 'count', type: 'u32' },
  { name: 'epoch', type: 'u32' },
]);

export const fairStatsLayout = new StructLayout('xnm_fair_stats', [
  { name: 'hist', type: array('u64', FAIR_BUCKETS) },
  { name: 'channel_exempt', type: 'u64' },
  { name: 'channel_epoch', type: 'u32' },
  { name: 'channel_used', type: 'u32' },
  { name: 'neighbour_exempt', type: 'u64' },
  { name: 'neighbour_epoch', type: 'u32' },
  { name: 'neighbour_used', type: 'u32' },
]);

export const netStatsLayout = new StructLayout('xnm_net_stats', [
  { name: 'verdict', type: array('u64', REASONS.length) },
  { name: 'path_packets', type: array('u64', PATHS.length) },
  { name: 'path_bytes', type: array('u64', PATHS.length) },
  { name: 'cpu_offered', type: 'u64' },
  { name: 'cpu_carried', type: 'u64' },
  { name: 'link_offered', type: array('u64', MAX_LINKS) },
  { name: 'link_carried', type: array('u64', MAX_LINKS) },
]);

export const filterRuleLayout = new StructLayout('xnm_filter_rule', [
  { name: 'family', type: 'u8' },
  { name: 'proto', type: 'u8' },
  { name: 'action', type: 'u8' },
  { name: 'pad', type: 'u8' },
  { name: 'sport_lo', type: 'u16' },
  { name: 'sport_hi', type: 'u16' },
  { name: 'dport_lo', type: 'u16' },
  { name: 'dport_hi', type: 'u16' },
  { name: 'src', type: array('be32', 4) },
  { name: 'src_mask', type: array('be32', 4) },
  { name: 'dst', type: array('be32', 4) },
  { name: 'dst_mask', type: array('be32', 4) },
]);

/** The packet's fields the filter matches, handed to the rule scan (per CPU, xnm_filter_scratch). */
export const filterFlowLayout = new StructLayout('xnm_filter_flow', [
  { name: 'src', type: array('u32', 4) },
  { name: 'dst', type: array('u32', 4) },
  { name: 'sport', type: 'u16' },
  { name: 'dport', type: 'u16' },
  { name: 'family', type: 'u8' },
  { name: 'l4proto', type: 'u8' },
  { name: 'has_ports', type: 'u8' },
  { name: 'pad', type: 'u8' },
]);

export const settingsLayout = new StructLayout('xnm_settings', [
  { name: 'flags', type: 'u32' },
  { name: 'cost_per_kib', type: 'u32' },
  { name: 'path_cost', type: array('u32', PATHS.length) },
  { name: 'flow_cache_mask', type: 'u32' },
  { name: 'channel_port', type: 'u16' },
  { name: 'channel_budget', type: 'u16' },
  { name: 'neighbour_budget', type: 'u16' },
  { name: 'reserved', type: 'u16' },
]);

export const flowKeyLayout = new StructLayout('xnm_flow_key', [
  { name: 'ifindex', type: 'u32' },
  { name: 'vlan', type: 'u16' },
  { name: 'mac', type: array('u8', 6) },
  { name: 'daddr', type: 'be32' },
]);

/** Per CPU: the flow cache's hit-rate window and rest (bpf/xnetmon.h: XNM_FLOW_WINDOW, _MIN_HITS, _REST). */
export const flowCacheStateLayout = new StructLayout('xnm_flow_cache_state', [
  { name: 'probes', type: 'u32' },
  { name: 'hits', type: 'u32' },
  { name: 'rest', type: 'u32' },
  { name: 'rests', type: 'u32' },
]);
export const FLOW_WINDOW = 256;
export const FLOW_MIN_HITS = 64;
export const FLOW_REST = 65536;

/** A flow cache slot; nested structs as words (the data plane alone writes slots: this is for inspection). */
export const flowLayout = new StructLayout('xnm_flow', [
  { name: 'key', type: array('u32', 4) }, // struct xnm_flow_key
  { name: 'gen', type: 'u32' },
  { name: 'net_id', type: 'u16' },
  { name: 'route_flags', type: 'u8' },
  { name: 'state', type: 'u8' },
  { name: 'vif_ifindex', type: 'u32' },
  { name: 'nexthop_id', type: 'u32' },
]);

/** Index 0 of xnm_schema: the layout version of the pinned maps (src/dataplane/schema.ts). */
export const schemaLayout = new StructLayout('xnm_schema', [{ name: 'layout_sha256', type: array('u8', 32) }]);

/** Every mirrored struct, for the BTF conformance test. */
export const LAYOUTS: readonly StructLayout[] = [
  ifaceLayout,
  vifMacKeyLayout,
  segAddrKeyLayout,
  classifyKeyLayout,
  classifyValLayout,
  route4KeyLayout,
  route4ExactKeyLayout,
  route4LengthsLayout,
  route6KeyLayout,
  routeValLayout,
  nexthopLayout,
  dropLayout,
  netStatsLayout,
  filterRuleLayout,
  filterFlowLayout,
  settingsLayout,
  flowKeyLayout,
  flowLayout,
  flowCacheStateLayout,
  flowRateLayout,
  fairStatsLayout,
  schemaLayout,
];

/** Every mirrored enum (C name -> TypeScript names in value order, or name -> value). */
export const ENUMS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  xnm_reason: Object.fromEntries(REASONS.map((r, i) => [`XNM_R_${r.toUpperCase()}`, i])),
  xnm_path: Object.fromEntries(PATHS.map((p, i) => [`XNM_PATH_${p.toUpperCase()}`, i])),
  xnm_iface_kind: { XNM_IFACE_NONE: 0, XNM_IFACE_PHYS: 1, XNM_IFACE_VIF: 2 },
  xnm_route_flags: { XNM_ROUTE_VIA_VM: 1, XNM_ROUTE_LOCAL: 2, XNM_ROUTE_BLACKHOLE: 4 },
  xnm_settings_flags: {
    XNM_SET_ACCOUNTING: 1,
    XNM_SET_PUNISH: 2,
    XNM_SET_FILTER: 4,
    XNM_SET_FLOW_CACHE: 8,
    XNM_SET_FAIR_DROP: 16,
  },
  xnm_iface_flags: { XNM_IFACE_MAC_LOCKED: 1 },
  xnm_flow_state: { XNM_FLOW_FOUND: 1, XNM_FLOW_UNFILTERED: 2 },
};
