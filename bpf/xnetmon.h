/* SPDX-License-Identifier: GPL-2.0 */
/* xnetmon.h: every map key, value, counter index, drop reason and limit shared
 * by the data plane (bpf/xnetmon.bpf.c) and user space (mirrored in
 * src/loader/layouts.ts and checked against this object's BTF by a test).
 * Plain data only: no BPF includes, so both sides can read it.
 */
#ifndef XNETMON_H
#define XNETMON_H

#include <linux/types.h>

/* Network id 0 holds what belongs to no virtual network (unclassified frames). */
#ifndef XNM_MAX_NETS
#define XNM_MAX_NETS 4096 /* ids 1..4095: one per 802.1Q VLAN id is the natural bound */
#endif

#ifndef XNM_MAX_LINKS
#define XNM_MAX_LINKS 16 /* physical output links a host shares; per-network counters scale with it */
#endif

#ifndef XNM_MAX_NEXTHOPS
#define XNM_MAX_NEXTHOPS 65536 /* resolved neighbours across all networks */
#endif

#ifndef XNM_MAX_ROUTES4
#define XNM_MAX_ROUTES4 4194304 /* a full IPv4 table (~1M) for several networks */
#endif

#ifndef XNM_MAX_ROUTES6
#define XNM_MAX_ROUTES6 1048576
#endif

#ifndef XNM_MAX_IFACES
#define XNM_MAX_IFACES 1024 /* physical links + vifs known to the data plane */
#endif

#ifndef XNM_MAX_IP6_EXTHDRS
#define XNM_MAX_IP6_EXTHDRS 8 /* IPv6 extension headers walked before the filter gives up (RFC 8200 allows any number) */
#endif

#ifndef XNM_MAX_SEG_ADDRS
#define XNM_MAX_SEG_ADDRS 4096 /* routers' configured addresses over all segments (a few per attachment) */
#endif

#ifndef XNM_MAX_FILTER_RULES
#define XNM_MAX_FILTER_RULES 32 /* per network; the replicated filter is a bounded linear scan */
#endif

/* Interface kinds: where a frame enters decides how it is classified (paper II, Fig. 1). */
enum xnm_iface_kind {
	XNM_IFACE_NONE = 0,
	XNM_IFACE_PHYS = 1, /* host NIC towards external machines */
	XNM_IFACE_VIF = 2,  /* host side of a virtual router's interface (Xen vif, veth, tap) */
};

/* Packet paths, each with its own CPU cost (paper IV-A, Table I). */
enum xnm_path {
	XNM_PATH_EXT_EXT = 0, /* external -> external, forwarded in the host (plane separation) */
	XNM_PATH_EXT_VM = 1,  /* external -> virtual router (control, via-VM routes) */
	XNM_PATH_VM_EXT = 2,  /* virtual router -> external */
	XNM_PATH_VM_VM = 3,   /* virtual router -> another virtual router: charged to the sender */
	XNM_PATH_VM_HOST = 4, /* virtual router -> host: charged to the virtual router */
	XNM_PATH_HOST_VM = 5, /* host -> virtual router: charged to the virtual router too (paper IV-A) */
	XNM_PATH_MAX = 6,
};

/* Every verdict leaves through one exit that counts it with one of these reasons. */
enum xnm_reason {
	XNM_R_FORWARD = 0,          /* fast path: rewritten and redirected out a physical link */
	XNM_R_TO_VM_CONTROL = 1,    /* control traffic handed to the virtual router */
	XNM_R_TO_VM_ROUTE = 2,      /* route says "via the virtual router" (paper II) */
	XNM_R_FROM_VM = 3,          /* frame from a virtual router passed on to the host bridge */
	XNM_R_PASS_HOST = 4,        /* unclassified: left to the host stack */
	XNM_R_TC_PASS = 5,          /* stack-sent frame leaving a physical link, accounted */
	XNM_R_DROP_MALFORMED = 6,   /* truncated or invalid headers */
	XNM_R_DROP_NO_ROUTE = 7,    /* LPM miss in the network's table */
	XNM_R_DROP_BLACKHOLE = 8,   /* blackhole / unreachable route */
	XNM_R_DROP_NEXTHOP = 9,     /* next hop missing or owned by another network */
	XNM_R_DROP_CPU = 10,        /* CPU punishment at the input (paper IV-A) */
	XNM_R_DROP_LINK = 11,       /* bandwidth punishment at the output link (paper IV-A) */
	XNM_R_DROP_RESIDUAL = 12,   /* residual punishment on vif input (paper IV-A) */
	XNM_R_DROP_FILTER = 13,     /* the network's replicated packet filter (paper IV-B) */
	XNM_R_DROP_REDIRECT = 14,   /* redirect refused by the egress device */
	XNM_R_DROP_VLAN = 15,       /* VLAN tag refused: stacked (802.1ad/QinQ), unknown on the segment, or not rewritable */
	XNM_R_DROP_SPOOF = 16,      /* from a vif: a source MAC, tag or ARP/ND address not its router's */
	XNM_R_DROP_NO_VIF = 17,     /* the virtual router's vif is gone from the egress devices: dropped, never bridged */
	XNM_R_TO_VM_MTU = 18,       /* larger than the egress link's MTU: to the router, which answers with ICMP */
	XNM_R_TO_VM_EXTHDR = 19,    /* IPv6 extension header chain too long or broken: to the router (the filter cannot see it) */
	XNM_R_MAX = 20,
};

/* Key of xnm_ifaces: an interface index. Value: what that interface is. */
struct xnm_iface {
	__u32 kind;         /* enum xnm_iface_kind */
	__u32 net_id;       /* VIF: the network of its virtual router */
	__u32 link_slot;    /* PHYS: its slot in per-link counters and drop probabilities; VIF: its segment's */
	__u32 seg_ifindex;  /* VIF: the physical interface of the segment it is attached to */
	__u16 seg_vlan;     /* VIF: its attachment's VLAN on that segment */
	__u16 flags;        /* enum xnm_iface_flags */
};

enum xnm_iface_flags {
	XNM_IFACE_MAC_LOCKED = 1 << 0, /* VIF: frames must come from a MAC in xnm_vif_macs (its attachments) */
};

/* Key of xnm_vif_macs: a MAC the router behind a vif may send from (its attachments' MACs). */
struct xnm_vif_mac_key {
	__u32 ifindex;
	__u8 mac[6];
	__u16 pad;
};

/* Key of xnm_seg_addrs: an IP address that a virtual router owns on a segment (the physical
 * interface and VLAN of its attachment, which lists the address). Value: the owner's network id.
 * ARP and neighbour discovery from a vif may not claim another network's address there. */
struct xnm_seg_addr_key {
	__u32 ifindex;
	__u16 vlan;     /* 0 = untagged */
	__u8 family;    /* 4 or 6 */
	__u8 pad;
	__u8 addr[16];  /* IPv4: the first 4 bytes, the rest zero */
};

/* Physical ingress classification (paper IV, virtual network definition):
 * ingress interface + VLAN + destination MAC of the virtual router's interface.
 * The TC egress program looks the same key up with the source MAC. */
struct xnm_classify_key {
	__u32 ifindex;
	__u16 vlan; /* 0 = untagged */
	__u8 mac[6];
};

struct xnm_classify_val {
	__u32 net_id;      /* 0 = the host itself (its bridge MAC) */
	__u32 vif_ifindex; /* the virtual router's interface on this segment; 0 = hand over via the host bridge */
};

/* A route's key: network id + prefix. prefixlen counts net_id's 32 bits too, so a
 * network's routes can never match another network's packets. */
struct xnm_route4_key {
	__u32 prefixlen; /* 32 + IPv4 prefix length */
	__u32 net_id;
	__be32 addr;
};

struct xnm_route6_key {
	__u32 prefixlen; /* 32 + IPv6 prefix length */
	__u32 net_id;
	__u8 addr[16];
};

enum xnm_route_flags {
	XNM_ROUTE_VIA_VM = 1 << 0,    /* deliver to the virtual router: its "default route to the VM" */
	XNM_ROUTE_LOCAL = 1 << 1,     /* an address of the virtual router itself: control */
	XNM_ROUTE_BLACKHOLE = 1 << 2, /* blackhole / unreachable / prohibit */
};

struct xnm_route_val {
	__u32 nexthop_id; /* index into xnm_nexthops; ignored unless no flag is set */
	__u32 flags;      /* enum xnm_route_flags */
};

/* The IPv4 fast path looks routes up in an exact-match index (xnm_routes4_exact), one
 * hash probe per prefix length the network has, longest first, instead of walking the
 * trie: a trie of 1M routes is ~20 dependent node reads (136 ns per packet with every
 * node cached, ~3.3 us in a PROG_RUN call that starts with a flushed TLB), a hash probe
 * one or two (19 ns, ~1.4 us). The trie stays the table of record (listing, IPv6-like
 * reads by user space) and answers whenever the index cannot: a network not indexed, or
 * more than XNM_ROUTE4_MAX_PROBES lengths to try. */
struct xnm_route4_exact_key {
	__u32 net_id;
	__u32 prefixlen; /* IPv4 prefix length 0..32 (net_id not counted, unlike xnm_route4_key) */
	__be32 addr;     /* host bits zero */
};

#ifndef XNM_ROUTE4_MAX_PROBES
#define XNM_ROUTE4_MAX_PROBES 8 /* hash probes before the trie is cheaper (a full table: /24 to /17) */
#endif

/* Value of xnm_route4_lengths, per network: which prefix lengths to probe, in order, so
 * that the fast path's loop has one way round (a bitmap walk had two, which the verifier
 * explores as 2^33 paths). An entry of zeros sends the network's lookups to the trie. */
struct xnm_route4_lengths {
	__u8 indexed;  /* 1: every IPv4 route of the network is in xnm_routes4_exact */
	__u8 count;    /* lengths in len[], longest first */
	__u8 more;     /* it has lengths beyond len[]: the trie answers when len[] misses */
	__u8 pad;
	__u8 len[XNM_ROUTE4_MAX_PROBES];
	__u32 pad2;
	__u64 present; /* bit L: it may have a route of length L (set before such a route is
			* indexed, cleared only when its routes are flushed); len[] derives from it */
};

/* A resolved next hop: everything needed to rewrite and send the frame. */
struct xnm_nexthop {
	__u32 ifindex;   /* physical egress interface */
	__u32 net_id;    /* owner: a route of network A can never use network B's next hop */
	__u32 link_slot; /* egress link's counter slot */
	__u16 vlan;      /* egress VLAN tag, 0 = untagged */
	__u16 flags;     /* XNM_NH_VALID */
	__u8 smac[6];    /* the virtual router's MAC on the egress segment */
	__u8 dmac[6];    /* the neighbour's MAC */
	__u16 mtu;       /* the egress link's MTU (IP bytes) when the next hop was made; 0 = unchecked */
	__u16 pad;
};

#define XNM_NH_VALID 1

/* Per network: drop probabilities set by the controller, as thresholds on
 * bpf_get_prandom_u32() (probability * 2^32, saturated). 0 never drops. */
struct xnm_drop {
	__u32 cpu;                    /* at the input interface (paper IV-A) */
	__u32 residual;               /* constant, on vif input (paper IV-A, end) */
	__u32 link[XNM_MAX_LINKS];    /* at the output decision, per physical link */
	__u32 cpu_fair;               /* the network's fair per-flow rate (sketch units): flows at or under it are
				       * never CPU-dropped, heavier ones lose 1 - fair/rate; 0 = drop at random */
};

/* Per network, per CPU: counters the controller reads every period. */
struct xnm_net_stats {
	__u64 verdict[XNM_R_MAX];             /* packets by reason */
	__u64 path_packets[XNM_PATH_MAX];
	__u64 path_bytes[XNM_PATH_MAX];
	__u64 cpu_offered;                    /* cost units before the CPU drop decision */
	__u64 cpu_carried;                    /* cost units after it */
	__u64 link_offered[XNM_MAX_LINKS];    /* bytes before the link drop decision */
	__u64 link_carried[XNM_MAX_LINKS];    /* bytes sent out the link */
};

/* Replicated packet filter rule (paper IV-B), confined to its network by its index.
 * Addresses and masks are in network order; an IPv4 rule uses the first word. */
struct xnm_filter_rule {
	__u8 family;    /* 0 = end of the network's rules, 4 or 6 */
	__u8 proto;     /* 0 = any */
	__u8 action;    /* 0 = accept, 1 = drop */
	__u8 pad;
	__u16 sport_lo, sport_hi; /* host order; 0..65535 = any */
	__u16 dport_lo, dport_hi;
	__u32 src[4];
	__u32 src_mask[4];
	__u32 dst[4];
	__u32 dst_mask[4];
};

enum xnm_settings_flags {
	XNM_SET_ACCOUNTING = 1 << 0,  /* count CPU cost and link bytes */
	XNM_SET_PUNISH = 1 << 1,      /* apply drop probabilities */
	XNM_SET_FILTER = 1 << 2,      /* run the replicated packet filter */
	XNM_SET_FLOW_CACHE = 1 << 3, /* cache IPv4 classification + LPM results per flow */
	XNM_SET_FAIR_DROP = 1 << 4,  /* estimate flow rates and drop a punished network's heaviest flows first */
};

/* Flow-aware CPU punishment (approximate fair dropping, Pan et al. 2003): a per-CPU
 * count-min sketch of flow rates, XNM_SKETCH_ROWS rows of XNM_SKETCH_COLS cells, each
 * a packet count halved per epoch of 2^XNM_FAIR_EPOCH_SHIFT ns (67 ms, about one control
 * period), so a flow of r packets per epoch reads between r and 2r. */
#ifndef XNM_SKETCH_COLS
#define XNM_SKETCH_COLS 4096 /* a power of two; 2 rows x 4096 x 8 bytes = 64 KiB per CPU */
#endif
#define XNM_SKETCH_ROWS 2
#define XNM_FAIR_EPOCH_SHIFT 26
/* Rate buckets of the per-network histogram: two per octave (bucket 2k holds rates in
 * [2^k, 1.5 * 2^k), 2k+1 in [1.5 * 2^k, 2^(k+1))), so rates up to 2^20 per epoch. */
#define XNM_FAIR_BUCKETS 40

/* One sketch cell. */
struct xnm_flow_rate {
	__u32 count; /* packets, halved per epoch passed */
	__u32 epoch; /* the epoch count was last brought up to */
};

/* Per network, per CPU: what the controller needs to set cpu_fair, and the exemptions of
 * the update channel and of neighbour resolution. */
struct xnm_fair_stats {
	__u64 hist[XNM_FAIR_BUCKETS]; /* offered packets by their flow's rate bucket */
	__u64 channel_exempt;         /* packets to the manager's port spared from CPU punishment */
	__u32 channel_epoch;          /* epoch of channel_used */
	__u32 channel_used;           /* exempt packets in that epoch (at most settings.channel_budget) */
	__u64 neighbour_exempt;       /* ARP and ND packets spared from CPU punishment */
	__u32 neighbour_epoch;        /* epoch of neighbour_used */
	__u32 neighbour_used;         /* exempt packets in that epoch (at most settings.neighbour_budget) */
};

#ifndef XNM_FLOW_CACHE_SLOTS
/* Per CPU, direct-mapped; a power of two, resized at load by user space. 256 slots of
 * 32 bytes are 8 KiB per CPU, two pages: they stay in the L1/L2 cache and the TLB, so a
 * probe that misses costs a few ns. The 3 MiB of 65536 48-byte slots (768 pages of
 * per-CPU memory) missed the TLB and the caches on nearly every packet of a wide traffic
 * mix and cost 45 % per packet; 4096 slots still cost 34 %, 256 cost 7 % (xnetmon bench
 * forwarding, 65,536 destinations, docs/benchmarks.md). */
#define XNM_FLOW_CACHE_SLOTS 256
#endif

/* Flow cache key: what the physical fast path decides on for an IPv4 packet,
 * the classification key (ingress, VLAN, router MAC) plus the destination. */
struct xnm_flow_key {
	__u32 ifindex;
	__u16 vlan;
	__u8 mac[6];
	__be32 daddr; /* 16 bytes in all, compared as two 64-bit words */
};

/* What a flow cache slot knows besides its route (xnm_flow.state). */
enum xnm_flow_state {
	XNM_FLOW_FOUND = 1 << 0,      /* the table had a route for daddr (else a cached miss) */
	XNM_FLOW_UNFILTERED = 1 << 1, /* the network had no filter rules, so a hit skips the filter */
};

/* Flow cache slot, 32 bytes (two per cache line): the classification and LPM results
 * for its key, valid while gen equals the low 32 bits of xnm_route_gen (user space bumps
 * it after every change of a route, an attachment or a filter; it would take 2^32 changes
 * for a stale slot to look current). An empty slot has ifindex 0, which no packet arrives on. */
struct xnm_flow {
	struct xnm_flow_key key;
	__u32 gen;
	__u16 net_id;      /* the classification: network (< XNM_MAX_NETS) ... */
	__u8 route_flags;  /* enum xnm_route_flags of the route */
	__u8 state;        /* enum xnm_flow_state */
	__u32 vif_ifindex; /* ... and its virtual router's interface on this segment */
	__u32 nexthop_id;  /* the route's next hop */
};

/* The flow cache switches itself off per CPU when its hit rate is low: of a window of
 * XNM_FLOW_WINDOW probes, fewer than XNM_FLOW_MIN_HITS hits (a wide traffic mix, where every
 * probe and fill costs and saves nothing) rest the cache on that CPU for XNM_FLOW_REST
 * packets, after which it probes another window. A hit saves the classification hash and
 * the route probes (~30 ns here); a miss costs the probe and the fill. */
#define XNM_FLOW_WINDOW 256
#define XNM_FLOW_MIN_HITS 64
#define XNM_FLOW_REST 65536

/* Per CPU, index 0 of xnm_flow_cache_state. */
struct xnm_flow_cache_state {
	__u32 probes;  /* in the current window */
	__u32 hits;    /* in the current window */
	__u32 rest;    /* packets left to pass without the cache */
	__u32 rests;   /* windows that ended in a rest (for inspection) */
};

/* Per CPU, index 0 of xnm_filter_scratch: what the filter rules match of the packet at hand,
 * copied once by the program for the rule scan (a function the verifier checks on its own). */
struct xnm_filter_flow {
	__u32 src[4];  /* IPv4 in word 0, the rest 0 */
	__u32 dst[4];
	__u16 sport;   /* host order, as parsed; 0 without ports */
	__u16 dport;
	__u8 family;   /* 4 or 6 */
	__u8 l4proto;
	__u8 has_ports;
	__u8 pad;
};

/* Host-wide settings, index 0 of xnm_settings, changed live by the daemon. */
struct xnm_settings {
	__u32 flags;                      /* enum xnm_settings_flags */
	__u32 cost_per_kib;               /* extra cost units per KiB of frame */
	__u32 path_cost[XNM_PATH_MAX];    /* cost units per packet by path (paper Table I) */
	__u32 flow_cache_mask;            /* xnm_flow_cache's max_entries - 1 (a power of two minus one) */
	__u16 channel_port;               /* the manager's TCP listen port: router -> host packets to it are spared */
	__u16 channel_budget;             /* ... up to this many per network, CPU and epoch (paper V: the controller
					   * reserves the CPU the router needs to send its updates); 0 = no exemption */
	__u16 neighbour_budget;           /* ARP and ND packets to or from a router spared per network, CPU and
					   * epoch; 0 = none */
	__u16 reserved;                   /* 0 */
};

/* Index 0 of xnm_schema: which layout of these structs the pinned maps hold, written by the
 * daemon (a SHA-256 of the layouts, src/dataplane/schema.ts); a daemon of another layout refuses
 * them instead of misreading them. */
struct xnm_schema {
	__u8 layout_sha256[32];
};

#endif /* XNETMON_H */
