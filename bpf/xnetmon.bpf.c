// SPDX-License-Identifier: GPL-2.0
/* xnetmon.bpf.c: the shared data plane of XNetMon (paper II and IV).
 *
 * xnm_phys_in  XDP on each physical NIC: classify, hand control traffic to the
 *              virtual router, punish, filter, look up the network's table,
 *              rewrite and redirect (plane separation, paper II, Fig. 1(c)).
 * xnm_vif_in   XDP on each virtual router's host-side interface: account the
 *              path and punish, then pass the frame to the host bridge.
 * xnm_vif_out  TC egress on each vif: charges what the host itself sends a
 *              virtual router to that router's network (host -> VM).
 * xnm_link_out TC egress on each physical NIC: accounts and punishes the bytes
 *              the kernel sends (bridged from a vif) that XDP never sees.
 * xnm_pass     XDP_PASS, for the peer end of a veth so that redirects deliver.
 *
 * A packet meets the steps in this order: parse, classify, control, lookup,
 * account + punish (costed once, by the path the lookup chose; the heaviest
 * flows first), filter, account link, punish link, forward. Each verdict
 * leaves through finish(), which counts it per network with a reason.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"
#include "xnetmon.h"

char LICENSE[] SEC("license") = "GPL";

/* What each interface is: physical link or vif (and then whose). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNM_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct xnm_iface);
} xnm_ifaces SEC(".maps");

/* Physical ingress classification: (ifindex, VLAN, virtual router MAC) -> network. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNM_MAX_IFACES * 4);
	__type(key, struct xnm_classify_key);
	__type(value, struct xnm_classify_val);
} xnm_classify SEC(".maps");

/* Every network's IPv4 forwarding table, keyed by network id + prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XNM_MAX_ROUTES4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xnm_route4_key);
	__type(value, struct xnm_route_val);
} xnm_routes4 SEC(".maps");

/* The same IPv4 routes, each under its exact prefix (xnetmon.h): what the fast path probes. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNM_MAX_ROUTES4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xnm_route4_exact_key);
	__type(value, struct xnm_route_val);
} xnm_routes4_exact SEC(".maps");

/* Per network: the IPv4 prefix lengths it has in xnm_routes4_exact (xnetmon.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNM_MAX_NETS);
	__type(key, __u32);
	__type(value, struct xnm_route4_lengths);
} xnm_route4_lengths SEC(".maps");

/* Every network's IPv6 forwarding table, keyed by network id + prefix. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, XNM_MAX_ROUTES6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct xnm_route6_key);
	__type(value, struct xnm_route_val);
} xnm_routes6 SEC(".maps");

/* Resolved next hops, shared by the routes of their owning network. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNM_MAX_NEXTHOPS);
	__type(key, __u32);
	__type(value, struct xnm_nexthop);
} xnm_nexthops SEC(".maps");

/* The MACs each virtual router may send from on its vif: its attachments' MACs
 * (anti-spoofing, for vifs marked XNM_IFACE_MAC_LOCKED). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNM_MAX_IFACES * 4);
	__type(key, struct xnm_vif_mac_key);
	__type(value, __u32);
} xnm_vif_macs SEC(".maps");

/* The IP addresses each network's routers own on each segment (their attachments'
 * `addresses`): ARP and ND from another network's vif may not claim them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XNM_MAX_SEG_ADDRS);
	__type(key, struct xnm_seg_addr_key);
	__type(value, __u32);
} xnm_seg_addrs SEC(".maps");

/* Egress devices for bpf_redirect_map, keyed by ifindex. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XNM_MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} xnm_tx_ports SEC(".maps");

/* Drop probabilities per network, written by the controller every period. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNM_MAX_NETS);
	__type(key, __u32);
	__type(value, struct xnm_drop);
} xnm_drops SEC(".maps");

/* Per network, per CPU: verdicts, paths, CPU cost and link bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNM_MAX_NETS);
	__type(key, __u32);
	__type(value, struct xnm_net_stats);
} xnm_stats SEC(".maps");

/* Replicated packet filters: network n's rules at n * XNM_MAX_FILTER_RULES + i. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, XNM_MAX_NETS * XNM_MAX_FILTER_RULES);
	__type(key, __u32);
	__type(value, struct xnm_filter_rule);
} xnm_filters SEC(".maps");

/* Per CPU: the packet's fields the filter matches, handed to the rule scan (xnm_filter_scan). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnm_filter_flow);
} xnm_filter_scratch SEC(".maps");

/* Per-CPU direct-mapped cache of IPv4 classification + LPM results, checked
 * against xnm_route_gen: array reads are inlined by the verifier, where a hash or
 * trie lookup is a call and a walk. Small (xnetmon.h): a hit must save more than a
 * probe that misses costs, and a probe that misses the CPU caches costs more than
 * the hash and the trie walk it would save on a machine where helper calls are cheap. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNM_FLOW_CACHE_SLOTS);
	__type(key, __u32);
	__type(value, struct xnm_flow);
} xnm_flow_cache SEC(".maps");

/* Per CPU (index 0): the flow cache's hit rate over the current window, and its rest (xnetmon.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnm_flow_cache_state);
} xnm_flow_cache_state SEC(".maps");

/* Generation (index 0): bumped by user space after every change of a route or a
 * classification entry, which invalidates every flow cache slot at once. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} xnm_route_gen SEC(".maps");

/* Flow-aware punishment: a per-CPU count-min sketch of flow rates (xnetmon.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNM_SKETCH_ROWS * XNM_SKETCH_COLS);
	__type(key, __u32);
	__type(value, struct xnm_flow_rate);
} xnm_flow_rates SEC(".maps");

/* Per network, per CPU: offered packets by flow rate, and the update channel's exemption. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XNM_MAX_NETS);
	__type(key, __u32);
	__type(value, struct xnm_fair_stats);
} xnm_fair SEC(".maps");

/* Host-wide settings (index 0): feature flags and the cost table. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnm_settings);
} xnm_settings SEC(".maps");

/* Never read by programs: the layout version of the pinned maps (struct xnm_schema), so that
 * a daemon of another version refuses them rather than misreading them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnm_schema);
} xnm_schema SEC(".maps");

/* Never read: it carries the shared enums into the object's BTF, so that user
 * space can check its mirror of them (test/bpf/btf.test.ts). */
struct xnm_enums {
	enum xnm_reason reason;
	enum xnm_path path;
	enum xnm_iface_kind kind;
	enum xnm_route_flags route_flags;
	enum xnm_settings_flags settings_flags;
	enum xnm_iface_flags iface_flags;
	enum xnm_flow_state flow_state;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xnm_enums);
} xnm_enum_btf SEC(".maps");

/* What one frame is, as far as the data plane needs to know. */
struct pkt {
	void *data_end;
	struct ethhdr *eth;
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	void *l4;             /* past the IP header and, for IPv6, its extension headers */
	__u32 len;
	__u32 l3_off;         /* where the IP header starts: Ethernet plus the tag */
	__u16 vlan;
	__u16 sport, dport;
	__u8 l4proto;
	__u8 has_ports;
	__u8 exthdr_unparsed; /* IPv6: the extension header chain was too long or cut short */
	__u8 neighbour;       /* ARP, or ICMPv6 RS/RA/NS/NA right behind the IPv6 header (RFC 4861) */
};

/* Per-packet context of the verdict: whose counters and which settings. The
 * programs check the three pointers once, as they bind them, so that every
 * later step uses them unchecked and the compiler keeps no test per step. */
struct verdict_ctx {
	struct xnm_net_stats *stats;
	struct xnm_settings *settings;
	struct xnm_drop *drop;
	__u32 net_id;
	__u64 offered_cost; /* what punish_cpu() charged as offered, for account_cpu() to carry */
};

/* ---- exit ---------------------------------------------------------------- */

/* The one exit: every verdict is counted with its reason. */
static __always_inline int finish(struct verdict_ctx *v, enum xnm_reason reason, int action)
{
	if (reason < XNM_R_MAX)
		v->stats->verdict[reason]++;
	return action;
}

/* Both arrays hold XNM_MAX_NETS entries, so the lookups of a clamped key cannot
 * fail: -1 is for the verifier. */
static __always_inline int bind_network(struct verdict_ctx *v, __u32 net_id)
{
	__u32 key = net_id < XNM_MAX_NETS ? net_id : 0;

	v->net_id = key;
	v->stats = bpf_map_lookup_elem(&xnm_stats, &key);
	v->drop = bpf_map_lookup_elem(&xnm_drops, &key);
	return v->stats && v->drop ? 0 : -1;
}

/* Index 0 of an array always exists: -1 is for the verifier. */
static __always_inline int load_settings(struct verdict_ctx *v)
{
	__u32 zero = 0;

	v->settings = bpf_map_lookup_elem(&xnm_settings, &zero);
	return v->settings ? 0 : -1;
}

/* ---- parse ----------------------------------------------------------------- */

/* Returns 0; -1 for a frame whose headers are truncated or invalid; PARSE_STACKED_TAGS
 * for 802.1ad or two tags. An IPv6 extension header chain that cannot be walked is not an
 * error here: the packet is marked, and the caller hands it to the router. */
static __always_inline int parse(void *data, void *data_end, struct pkt *p)
{
	struct cursor c = { .pos = data };
	int proto;
	__u8 nonfirst = 0;

	p->data_end = data_end;
	p->len = data_end - data;
	proto = parse_ethhdr(&c, data_end, &p->eth, &p->vlan);
	if (proto < 0)
		return proto;
	p->l3_off = c.pos - data;

	if (proto == ETH_P_IP) {
		int l4 = parse_iphdr(&c, data_end, &p->ip4);

		if (l4 < 0)
			return -1;
		p->l4proto = l4;
		nonfirst = (p->ip4->frag_off & bpf_htons(0x1fff)) != 0;
	} else if (proto == ETH_P_IPV6) {
		int l4 = parse_ip6hdr(&c, data_end, &p->ip6);

		if (l4 < 0)
			return -1;
		/* Neighbour discovery is decided here, before the extension header walk multiplies
		 * the verifier's states, as a constant per path: ND never has extension headers. */
		if (l4 == IPPROTO_ICMPV6) {
			__u8 *icmp = c.pos;

			if ((void *)(icmp + 1) <= data_end && icmp[0] >= 133 && icmp[0] <= 136)
				p->neighbour = 1;
		}
		/* The filter matches the upper-layer protocol and ports behind any extension
		 * headers, as the router's nftables does (issue: the filter sees through IPv6). */
		l4 = parse_ip6_exthdrs(&c, data_end, l4, &nonfirst);
		if (l4 < 0) {
			p->exthdr_unparsed = 1;
			return 0;
		}
		p->l4proto = l4;
	} else {
		if (proto == ETH_P_ARP)
			p->neighbour = 1;
		return 0; /* ARP and the rest: not IP, never forwarded in the host */
	}
	p->l4 = c.pos;

	/* A fragment other than the first has no ports. */
	if ((p->l4proto == IPPROTO_TCP || p->l4proto == IPPROTO_UDP || p->l4proto == IPPROTO_SCTP) && !nonfirst)
		p->has_ports = parse_ports(&c, data_end, &p->sport, &p->dport) == 0;
	return 0;
}

/* ---- control --------------------------------------------------------------- */

/* Control traffic goes up to the virtual router, never through the fast path
 * (paper II: "control packets are forwarded to DomU"). */
static __always_inline int is_control(struct pkt *p)
{
	if (p->ip4) {
		__u32 dst = bpf_ntohl(p->ip4->daddr);

		if (p->ip4->ihl > 5) /* IPv4 options need the slow path */
			return 1;
		if (p->ip4->ttl <= 1) /* the router must answer with ICMP time exceeded */
			return 1;
		if ((dst >> 28) == 0xe || dst == 0xffffffff) /* multicast, broadcast */
			return 1;
		if ((dst >> 16) == 0xa9fe) /* 169.254/16 link-local */
			return 1;
		return 0;
	}
	if (p->ip6) {
		__u8 first = p->ip6->daddr.in6_u.u6_addr8[0];
		__u8 second = p->ip6->daddr.in6_u.u6_addr8[1];

		if (p->ip6->hop_limit <= 1)
			return 1;
		if (first == 0xff) /* multicast (ND solicitations included) */
			return 1;
		if (first == 0xfe && (second & 0xc0) == 0x80) /* fe80::/10 */
			return 1;
		if (p->ip6->nexthdr == IPPROTO_HOPOPTS || p->l4proto == IPPROTO_ICMPV6)
			return 1; /* ND, router advertisements, errors, MLD: the router's business */
		return 0;
	}
	return 1; /* ARP and any other EtherType addressed to the router */
}

/* ---- account / punish -------------------------------------------------------- */

static __always_inline __u64 path_cost(struct xnm_settings *s, enum xnm_path path, __u32 len)
{
	__u64 cost = path < XNM_PATH_MAX ? s->path_cost[path] : 0;

	return cost + (((__u64)len * s->cost_per_kib) >> 10);
}

/* A Bernoulli trial with probability threshold / 2^32. */
static __always_inline int chance(__u32 threshold)
{
	return threshold && bpf_get_prandom_u32() < threshold;
}

/* The epoch of the flow rate sketch and of the channel budget (xnetmon.h). */
static __always_inline __u32 fair_epoch(void)
{
	return bpf_ktime_get_coarse_ns() >> XNM_FAIR_EPOCH_SHIFT;
}

/* A flow: the network, the addresses, the protocol and the ports, mixed into 32 bits. */
static __always_inline __u32 flow_hash(struct pkt *p, __u32 net_id)
{
	__u32 h = net_id * 0x9e3779b1u ^ p->l4proto;

	if (p->ip4) {
		h ^= p->ip4->saddr * 0x85ebca6bu;
		h ^= p->ip4->daddr * 0xc2b2ae35u;
	} else if (p->ip6) {
		h ^= (p->ip6->saddr.in6_u.u6_addr32[2] ^ p->ip6->saddr.in6_u.u6_addr32[3]) * 0x85ebca6bu;
		h ^= (p->ip6->daddr.in6_u.u6_addr32[2] ^ p->ip6->daddr.in6_u.u6_addr32[3]) * 0xc2b2ae35u;
		h ^= (p->ip6->saddr.in6_u.u6_addr32[1] ^ p->ip6->daddr.in6_u.u6_addr32[1]) * 0x27d4eb2fu;
	}
	h ^= (((__u32)p->sport << 16) | p->dport) * 0x165667b1u;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	return h;
}

/* One sketch cell brought to this epoch (halved per epoch passed), then counted. */
static __always_inline __u32 sketch_add(__u32 index, __u32 epoch)
{
	struct xnm_flow_rate *cell = bpf_map_lookup_elem(&xnm_flow_rates, &index);

	if (!cell)
		return 0;
	if (cell->epoch != epoch) {
		__u32 passed = epoch - cell->epoch;

		cell->count = passed >= 32 ? 0 : cell->count >> passed;
		cell->epoch = epoch;
	}
	return ++cell->count;
}

/* Bucket of a rate >= 1: two per octave (xnetmon.h). */
static __always_inline __u32 rate_bucket(__u32 rate)
{
	__u32 octave = 0, r = rate;

	if (r >> 16) { octave += 16; r >>= 16; }
	if (r >> 8) { octave += 8; r >>= 8; }
	if (r >> 4) { octave += 4; r >>= 4; }
	if (r >> 2) { octave += 2; r >>= 2; }
	if (r >> 1) { octave += 1; }
	__u32 bucket = 2 * octave + (octave ? (rate >> (octave - 1)) & 1 : 0);

	return bucket < XNM_FAIR_BUCKETS ? bucket : XNM_FAIR_BUCKETS - 1;
}

/* The packet's flow rate (count-min over the rows: a collision only overestimates), counted
 * in its network's histogram before any drop, for the controller to set cpu_fair. */
static __always_inline __u32 flow_rate(struct verdict_ctx *v, struct pkt *p, __u32 epoch)
{
	__u32 h = flow_hash(p, v->net_id);
	__u32 a = sketch_add(h & (XNM_SKETCH_COLS - 1), epoch);
	__u32 b = sketch_add(XNM_SKETCH_COLS + ((h >> 16 ^ h * 0x9e3779b1u) & (XNM_SKETCH_COLS - 1)), epoch);
	__u32 rate = a < b ? a : b;
	__u32 key = v->net_id;
	struct xnm_fair_stats *fair = bpf_map_lookup_elem(&xnm_fair, &key);

	if (fair && rate) {
		__u64 bucket = rate_bucket(rate);

		/* The bound is checked here, at the access, on a value the compiler cannot see
		 * through: it folded rate_bucket's clamp into code whose range Linux 6.1's
		 * verifier lost (it saw bucket 60 of 40 and refused xnm_phys_in). */
		asm volatile("" : "+r"(bucket));
		if (bucket < XNM_FAIR_BUCKETS)
			fair->hist[bucket]++;
	}
	return rate;
}

/* Approximate fair dropping: a flow at or under the fair rate is never dropped, a heavier one
 * loses 1 - fair/rate of its packets; with no fair rate set, every packet has the same chance. */
static __always_inline int fair_chance(__u32 threshold, __u32 fair, __u32 rate)
{
	if (!threshold)
		return 0;
	if (!fair || !rate)
		return chance(threshold);
	if (rate <= fair)
		return 0;
	return (__u64)bpf_get_prandom_u32() * rate < ((__u64)(rate - fair) << 32);
}

/* One packet spared from CPU punishment, if this network's budget for its kind has room on
 * this CPU in this epoch. */
static __always_inline int spend_exemption(__u64 *exempt, __u32 *epoch_of, __u32 *used, __u16 budget)
{
	__u32 epoch = fair_epoch();

	if (*epoch_of != epoch) {
		*epoch_of = epoch;
		*used = 0;
	}
	if (*used >= budget)
		return 0;
	(*used)++;
	(*exempt)++;
	return 1;
}

/* Packets a punished network's router needs to keep working are spared from CPU
 * punishment, each kind within its own budget per network, CPU and epoch, and still charged:
 * - its update channel to the host (a TCP segment to the manager's port; paper V: the
 *   controller "reserves the CPU resources required by DomU1 to send the update messages");
 * - its neighbour resolution, both ways: dropped like data, a lost ARP or ND exchange takes
 *   every flow to that neighbour down for seconds, far beyond the share the law asked for. */
static __always_inline int exempt(struct verdict_ctx *v, struct pkt *p, enum xnm_path path, int control)
{
	struct xnm_settings *s = v->settings;
	int channel = path == XNM_PATH_VM_HOST && s->channel_budget && p->has_ports && p->l4proto == IPPROTO_TCP &&
		      p->dport == s->channel_port;
	/* `control`: only a caller whose packet may be neighbour discovery asks (a constant, so
	 * the fast path carries neither the test nor the verifier's extra states) */
	int neighbour = control && !channel && s->neighbour_budget && p->neighbour;

	if (!channel && !neighbour)
		return 0;
	__u32 key = v->net_id;
	struct xnm_fair_stats *fair = bpf_map_lookup_elem(&xnm_fair, &key);

	if (!fair)
		return 0;
	if (channel)
		return spend_exemption(&fair->channel_exempt, &fair->channel_epoch, &fair->channel_used,
				       s->channel_budget);
	return spend_exemption(&fair->neighbour_exempt, &fair->neighbour_epoch, &fair->neighbour_used,
			       s->neighbour_budget);
}

/* Paper IV-A: CPU use is weighted by the cost of the packet's path and charged to the
 * responsible network; an over-reservation network loses packets at the input, before the
 * expensive work (redirect, bridge, copy into a guest). `path` is the path the packet takes,
 * known from the lookup, so offered and carried are costed once, alike: carried <= offered.
 * Returns a drop reason, or 0 to go on. */
static __always_inline int punish_cpu(struct verdict_ctx *v, struct pkt *p, enum xnm_path path, int residual,
					  int control)
{
	struct xnm_settings *s = v->settings;
	__u32 rate = 0;

	if (s->flags & XNM_SET_ACCOUNTING) {
		v->offered_cost = path_cost(s, path, p->len);
		v->stats->cpu_offered += v->offered_cost;
	}
	/* Only a punished network's flows are measured: the rest pay nothing for it, and a
	 * network's first punished period drops at random while its histogram fills. */
	if ((s->flags & XNM_SET_FAIR_DROP) && v->net_id && v->drop->cpu)
		rate = flow_rate(v, p, fair_epoch());
	if (!(s->flags & XNM_SET_PUNISH) || exempt(v, p, path, control))
		return 0;
	if (residual && chance(v->drop->residual))
		return XNM_R_DROP_RESIDUAL;
	if (fair_chance(v->drop->cpu, v->drop->cpu_fair, rate))
		return XNM_R_DROP_CPU;
	return 0;
}

/* The CPU the host spends on a packet that got past the input: what punish_cpu() offered. */
static __always_inline void account_cpu(struct verdict_ctx *v, enum xnm_path path, __u32 len)
{
	struct xnm_settings *s = v->settings;

	if (!(s->flags & XNM_SET_ACCOUNTING) || path >= XNM_PATH_MAX)
		return;
	v->stats->cpu_carried += v->offered_cost;
	v->stats->path_packets[path]++;
	v->stats->path_bytes[path] += len;
}

/* Paper IV-A: bytes per output link; an over-reservation network loses the
 * packets destined to that link. Returns 1 when the packet must be dropped. */
static __always_inline int account_link(struct verdict_ctx *v, __u32 slot, __u32 len)
{
	struct xnm_settings *s = v->settings;

	if (slot >= XNM_MAX_LINKS)
		return 0;
	int counted = s->flags & XNM_SET_ACCOUNTING;

	if (counted)
		v->stats->link_offered[slot] += len;
	if ((s->flags & XNM_SET_PUNISH) && chance(v->drop->link[slot]))
		return 1;
	if (counted)
		v->stats->link_carried[slot] += len;
	return 0;
}

/* ---- filter ------------------------------------------------------------------ */

/* Every field is written: the scratch value still holds the last packet's. */
static __always_inline int load_flow(struct pkt *p, struct xnm_filter_flow *f)
{
	f->l4proto = p->l4proto;
	f->has_ports = p->has_ports;
	f->sport = p->sport;
	f->dport = p->dport;
	if (p->ip4) {
		__builtin_memset(f->src, 0, sizeof(f->src));
		__builtin_memset(f->dst, 0, sizeof(f->dst));
		f->src[0] = p->ip4->saddr;
		f->dst[0] = p->ip4->daddr;
		f->family = 4;
		return 0;
	}
	if (p->ip6) {
		__builtin_memcpy(f->src, p->ip6->saddr.in6_u.u6_addr32, 16);
		__builtin_memcpy(f->dst, p->ip6->daddr.in6_u.u6_addr32, 16);
		f->family = 6;
		return 0;
	}
	return -1;
}

static __always_inline int masked_equal(const __u32 *addr, const __u32 *want, const __u32 *mask)
{
	return !(((addr[0] ^ want[0]) & mask[0]) | ((addr[1] ^ want[1]) & mask[1]) |
		 ((addr[2] ^ want[2]) & mask[2]) | ((addr[3] ^ want[3]) & mask[3]));
}

static __always_inline int rule_matches(struct xnm_filter_rule *r, struct xnm_filter_flow *f)
{
	if (r->family != f->family)
		return 0;
	if (r->proto && r->proto != f->l4proto)
		return 0;
	if (r->sport_lo || r->sport_hi != 0xffff || r->dport_lo || r->dport_hi != 0xffff) {
		if (!f->has_ports)
			return 0;
		if (f->sport < r->sport_lo || f->sport > r->sport_hi)
			return 0;
		if (f->dport < r->dport_lo || f->dport > r->dport_hi)
			return 0;
	}
	return masked_equal(f->src, r->src, r->src_mask) && masked_equal(f->dst, r->dst, r->dst_mask);
}

/* Most networks have no rules: their first slot is the end marker. */
static __always_inline int has_rules(__u32 net_id)
{
	__u32 first = net_id * XNM_MAX_FILTER_RULES;
	struct xnm_filter_rule *r = bpf_map_lookup_elem(&xnm_filters, &first);

	return r && r->family != 0;
}

/* Paper IV-B: the network's replicated filter, first match wins; a network's
 * rules live at its own index range, so they can only see its own packets.
 * `unfiltered`: the flow cache knows that the network has no rules. Returns 1
 * when the packet must be dropped. */
/* The rule scan, first match wins: a global function, which the verifier checks once on its
 * own, reading the packet's fields from the per-CPU scratch value. Inlined, its 32 rules were
 * checked again for every path a packet can take to the filter: xnm_phys_in then took 94 % of
 * Linux 6.18's one-million-instruction verifier budget, 40 % as a function (6.1: 48 %, 76 %).
 * bpf_loop() would need 5.17, over our floor. Measured, the function is also 3-4 ns faster per
 * filtered packet than the inlined scan (docs/benchmarks.md). Returns 1 to drop. */
__attribute__((noinline)) int xnm_filter_scan(__u32 first)
{
	__u32 zero = 0;
	struct xnm_filter_flow *f = bpf_map_lookup_elem(&xnm_filter_scratch, &zero);

	if (!f)
		return 0;
	for (__u32 i = 0; i < XNM_MAX_FILTER_RULES; i++) {
		__u32 key = first + i;
		struct xnm_filter_rule *r = bpf_map_lookup_elem(&xnm_filters, &key);

		if (!r || r->family == 0)
			break;
		if (rule_matches(r, f))
			return r->action == 1;
	}
	return 0;
}

static __always_inline int filter(struct verdict_ctx *v, struct pkt *p, int unfiltered)
{
	if (!(v->settings->flags & XNM_SET_FILTER) || unfiltered)
		return 0;
	/* settled before the addresses are copied */
	if (!has_rules(v->net_id))
		return 0;

	__u32 zero = 0;
	struct xnm_filter_flow *f = bpf_map_lookup_elem(&xnm_filter_scratch, &zero);

	if (!f || load_flow(p, f))
		return 0;
	return xnm_filter_scan(v->net_id * XNM_MAX_FILTER_RULES);
}

/* ---- lookup -------------------------------------------------------------------- */

/* The flow cache slot of an IPv4 packet, found at classify and filled at lookup. */
struct flow_ref {
	struct xnm_flow *slot; /* NULL: no cache for this packet */
	struct xnm_flow_key key;
	__u32 gen;             /* read before any lookup: a change after it is caught next time */
	int hit;
	int unfiltered;        /* known from the slot (hit) or found while filling it (miss) */
	int found;             /* hit: the slot holds a route (else a cached miss) */
	struct xnm_classify_val cls; /* hit: the slot's classification and route, unpacked */
	struct xnm_route_val route;
};

static __always_inline int flow_key_equal(const struct xnm_flow_key *a, const struct xnm_flow_key *b)
{
	__u64 a0, a1, b0, b1;

	__builtin_memcpy(&a0, a, 8);
	__builtin_memcpy(&a1, (const char *)a + 8, 8);
	__builtin_memcpy(&b0, b, 8);
	__builtin_memcpy(&b1, (const char *)b + 8, 8);
	return a0 == b0 && a1 == b1;
}

/* Multiplicative hash of the key's words, high bits folded down: the low bits pick
 * the slot, as many as the cache's size (set at load) has. */
static __always_inline __u32 flow_slot_index(const struct xnm_flow_key *k, __u32 mask)
{
	__u32 mac_low;

	__builtin_memcpy(&mac_low, k->mac + 2, 4);
	__u32 h = (k->daddr ^ (k->ifindex << 20) ^ ((__u32)k->vlan << 4) ^ mac_low) * 0x9e3779b1u;

	return (h ^ (h >> 16)) & mask;
}

/* Counts a probe in the CPU's window; a window with too few hits rests the cache (xnetmon.h). */
static __always_inline void flow_window(struct xnm_flow_cache_state *st, int hit)
{
	st->hits += hit;
	if (++st->probes < XNM_FLOW_WINDOW)
		return;
	if (st->hits < XNM_FLOW_MIN_HITS) {
		st->rest = XNM_FLOW_REST;
		st->rests++;
	}
	st->probes = 0;
	st->hits = 0;
}

/* Finds the packet's slot; a hit carries both the classification and the route,
 * copied out of the slot so that the rest of the path reads the stack. Nothing while
 * the cache rests on this CPU. */
static __always_inline void flow_find(struct xdp_md *ctx, struct verdict_ctx *v, struct pkt *p,
				      struct flow_ref *f)
{
	__u32 zero = 0;
	__u64 *gen;

	if (!p->ip4 || !(v->settings->flags & XNM_SET_FLOW_CACHE))
		return;
	struct xnm_flow_cache_state *st = bpf_map_lookup_elem(&xnm_flow_cache_state, &zero);

	if (!st)
		return;
	if (st->rest) {
		st->rest--;
		return;
	}
	gen = bpf_map_lookup_elem(&xnm_route_gen, &zero);
	if (!gen)
		return;
	f->gen = (__u32)*gen;
	f->key.ifindex = ctx->ingress_ifindex;
	f->key.vlan = p->vlan;
	__builtin_memcpy(f->key.mac, p->eth->h_dest, ETH_ALEN);
	f->key.daddr = p->ip4->daddr;

	__u32 index = flow_slot_index(&f->key, v->settings->flow_cache_mask);
	struct xnm_flow *slot = bpf_map_lookup_elem(&xnm_flow_cache, &index);

	f->slot = slot;
	if (!slot || slot->gen != f->gen || !flow_key_equal(&slot->key, &f->key)) {
		flow_window(st, 0);
		return;
	}
	flow_window(st, 1);
	f->hit = 1;
	f->unfiltered = slot->state & XNM_FLOW_UNFILTERED;
	f->found = slot->state & XNM_FLOW_FOUND;
	f->cls.net_id = slot->net_id;
	f->cls.vif_ifindex = slot->vif_ifindex;
	f->route.nexthop_id = slot->nexthop_id;
	f->route.flags = slot->route_flags;
}

/* Remembers what classify and the route lookup decided, and whether the network filters,
 * for the next packet of the flow. */
static __always_inline void flow_fill(struct flow_ref *f, struct xnm_classify_val *cls,
				      struct xnm_route_val *route)
{
	struct xnm_flow *slot = f->slot;

	if (!slot || f->hit)
		return;
	f->unfiltered = !has_rules(cls->net_id);
	slot->key = f->key;
	slot->gen = f->gen;
	slot->net_id = cls->net_id;
	slot->vif_ifindex = cls->vif_ifindex;
	slot->state = (route ? XNM_FLOW_FOUND : 0) | (f->unfiltered ? XNM_FLOW_UNFILTERED : 0);
	slot->nexthop_id = route ? route->nexthop_id : 0;
	slot->route_flags = route ? route->flags : 0;
}

/* Longest prefix match in the exact-match index: one probe per length the network has,
 * longest first; the first hit is the longest match. The trie answers when the network is
 * not indexed or has more lengths than XNM_ROUTE4_MAX_PROBES left to try. */
static __always_inline struct xnm_route_val *lookup_route4(__u32 net_id, __be32 daddr)
{
	struct xnm_route4_lengths *lengths = bpf_map_lookup_elem(&xnm_route4_lengths, &net_id);

	if (lengths && lengths->indexed) {
		__u32 host = bpf_ntohl(daddr);
		struct xnm_route4_exact_key key = { .net_id = net_id };

		for (int i = 0; i < XNM_ROUTE4_MAX_PROBES; i++) {
			if (i >= lengths->count)
				break;
			__u32 len = lengths->len[i];
			__u32 mask = len >= 32 ? 0xffffffffu : len ? ~(0xffffffffu >> len) : 0;

			key.prefixlen = len;
			key.addr = bpf_htonl(host & mask);
			struct xnm_route_val *route = bpf_map_lookup_elem(&xnm_routes4_exact, &key);

			if (route)
				return route;
		}
		if (!lengths->more)
			return NULL;
	}
	struct xnm_route4_key key = { .prefixlen = 64, .net_id = net_id, .addr = daddr };

	return bpf_map_lookup_elem(&xnm_routes4, &key);
}

/* The network's table, or the flow cache when it holds this flow. */
static __always_inline struct xnm_route_val *lookup_route(struct verdict_ctx *v, struct pkt *p,
							  struct flow_ref *f)
{
	__u32 net_id = v->net_id;

	if (f->hit)
		return f->found ? &f->route : NULL;
	if (p->ip4)
		return lookup_route4(net_id, p->ip4->daddr);
	if (!p->ip6)
		return NULL;
	struct xnm_route6_key key6 = { .prefixlen = 160, .net_id = net_id };

	__builtin_memcpy(key6.addr, p->ip6->daddr.in6_u.u6_addr8, 16);
	return bpf_map_lookup_elem(&xnm_routes6, &key6);
}

/* ---- forward ------------------------------------------------------------------- */

/* Hand a frame from a physical link to its virtual router: untagged, as on its vif.
 * A frame never reaches another VLAN or the untagged segment: with no vif to redirect
 * to, only an untagged frame may go to the host bridge (which delivers by MAC), and a
 * vif missing from the egress devices is a counted drop, never a pass to the bridge. */
static __always_inline int to_vm(struct xdp_md *ctx, struct verdict_ctx *v, struct pkt *p,
				 struct xnm_classify_val *cls, enum xnm_reason reason)
{
	if (!cls->vif_ifindex) {
		if (p->vlan)
			return finish(v, XNM_R_DROP_VLAN, XDP_DROP);
		return finish(v, reason, XDP_PASS);
	}
	if (xdp_set_vlan(ctx, p->vlan, 0))
		return finish(v, XNM_R_DROP_VLAN, XDP_DROP);
	if (bpf_redirect_map(&xnm_tx_ports, cls->vif_ifindex, XDP_DROP) != XDP_REDIRECT)
		return finish(v, XNM_R_DROP_NO_VIF, XDP_DROP);
	return finish(v, reason, XDP_REDIRECT);
}

/* The valid next hop of the network's forwarding route, or NULL (no route, a route to the
 * router or a blackhole, or a next hop that is missing, invalid or another network's). */
static __always_inline struct xnm_nexthop *next_hop(struct verdict_ctx *v, struct xnm_route_val *route)
{
	if (!route || (route->flags & (XNM_ROUTE_LOCAL | XNM_ROUTE_VIA_VM | XNM_ROUTE_BLACKHOLE)))
		return NULL;
	__u32 nh_id = route->nexthop_id;
	struct xnm_nexthop *nh = bpf_map_lookup_elem(&xnm_nexthops, &nh_id);

	if (!nh || !(nh->flags & XNM_NH_VALID) || nh->net_id != v->net_id)
		return NULL;
	return nh;
}

/* The IP packet must fit the egress link: a larger one goes to the virtual router,
 * which answers with ICMP "fragmentation needed" / "packet too big" or fragments it,
 * instead of a driver drop that the counters would call forwarded. */
static __always_inline int too_big(struct pkt *p, struct xnm_nexthop *nh)
{
	return nh->mtu && p->len - p->l3_off > nh->mtu;
}

/* Rewrite MACs, VLAN and TTL from the next hop and send it out its link. */
static __always_inline int forward(struct xdp_md *ctx, struct verdict_ctx *v, struct pkt *p,
				   struct xnm_nexthop *nh)
{
	if (p->ip4)
		ipv4_decrease_ttl(p->ip4);
	else if (p->ip6)
		p->ip6->hop_limit--;

	if (xdp_set_vlan(ctx, p->vlan, nh->vlan))
		return finish(v, XNM_R_DROP_VLAN, XDP_DROP);

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return finish(v, XNM_R_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);

	int action = bpf_redirect_map(&xnm_tx_ports, nh->ifindex, XDP_ABORTED);

	if (action != XDP_REDIRECT)
		return finish(v, XNM_R_DROP_REDIRECT, XDP_DROP);
	return finish(v, XNM_R_FORWARD, XDP_REDIRECT);
}

/* ---- anti-spoofing ------------------------------------------------------------- */

/* ARP for IPv4 over Ethernet (RFC 826). */
struct arp_eth {
	__be16 hrd, pro;
	__u8 hln, pln;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5]));
}

/* Whether `key` (an address on the vif's segment) belongs to another network's router:
 * claiming it in ARP or ND would draw that router's traffic to this one (a bridge and every
 * neighbour cache on the segment believe the last claim). */
static __always_inline int owned_by_other(struct xnm_iface *iface, struct xnm_seg_addr_key *key)
{
	key->ifindex = iface->seg_ifindex;
	key->vlan = iface->seg_vlan;
	__u32 *owner = bpf_map_lookup_elem(&xnm_seg_addrs, key);

	return owner && *owner != iface->net_id;
}

static __always_inline int ip4_of_other(struct xnm_iface *iface, const __u8 *addr)
{
	struct xnm_seg_addr_key key = { .family = 4 };

	__builtin_memcpy(key.addr, addr, 4);
	return owned_by_other(iface, &key);
}

static __always_inline int ip6_of_other(struct xnm_iface *iface, const __u8 *addr)
{
	struct xnm_seg_addr_key key = { .family = 6 };

	__builtin_memcpy(key.addr, addr, 16);
	return owned_by_other(iface, &key);
}

/* An ARP packet's sender hardware address must be the frame's source, and its sender IP
 * (request, reply or gratuitous: each updates the caches that hear it) no other router's. */
static __always_inline int arp_spoofed(struct xnm_iface *iface, struct pkt *p)
{
	struct arp_eth *arp = (void *)(p->eth + 1);

	if ((void *)(arp + 1) > p->data_end)
		return 1;
	if (arp->hln != ETH_ALEN || !mac_equal(arp->sha, p->eth->h_source))
		return 1;
	return ip4_of_other(iface, arp->spa);
}

#define ND_MAX_OPTIONS 4

/* Neighbour discovery (RFC 4861): the source and target link-layer address options of
 * router and neighbour solicitations and advertisements must carry the frame's source; the
 * IPv6 source (unless unspecified, as in duplicate address detection) and a neighbour
 * advertisement's target must be no other router's address on the segment.
 * (A redirect's target address is another machine's by design: routers' redirects are
 * accepted only from the host's own first hop, RFC 4861 8.1.) */
static __always_inline int nd_spoofed(struct xnm_iface *iface, struct pkt *p)
{
	__u8 *icmp = p->l4;
	__u32 first;

	if (!icmp || (void *)(icmp + 4) > p->data_end)
		return 0;
	switch (icmp[0]) {
	case 133: first = 8; break;  /* router solicitation */
	case 134: first = 16; break; /* router advertisement */
	case 135: first = 24; break; /* neighbour solicitation */
	case 136:                    /* neighbour advertisement: its target is what it claims */
		if ((void *)(icmp + 24) > p->data_end)
			return 1; /* too short to name its target (RFC 4861 7.1.2) */
		if (ip6_of_other(iface, icmp + 8))
			return 1;
		first = 24;
		break;
	default: return 0;
	}
	struct in6_addr *src = &p->ip6->saddr;

	if ((src->in6_u.u6_addr32[0] | src->in6_u.u6_addr32[1] | src->in6_u.u6_addr32[2] | src->in6_u.u6_addr32[3]) &&
	    ip6_of_other(iface, src->in6_u.u6_addr8))
		return 1;
	__u8 *opt = icmp + first;

	for (int i = 0; i < ND_MAX_OPTIONS; i++) {
		if ((void *)(opt + 8) > p->data_end)
			return 0;
		if (opt[1] == 0)
			return 1; /* a zero-length option is invalid (RFC 4861 4.6) */
		if ((opt[0] == 1 || opt[0] == 2) && !mac_equal(opt + 2, p->eth->h_source))
			return 1;
		opt += (__u32)opt[1] * 8;
	}
	return 0;
}

/* A virtual router may write anything into its frames: what it claims must be its own.
 * Its vif is an access port (no tag), its source MAC is one of its attachments' MACs
 * (when the vif has any), ARP and ND carry that same MAC, and no address that another
 * network's router owns on the segment. A spoofed MAC would teach the host bridge to send
 * another router's or machine's frames to this vif; a spoofed address, the neighbours. */
static __always_inline int spoofed(struct xnm_iface *iface, __u32 ifindex, struct pkt *p)
{
	if (p->eth->h_proto == bpf_htons(ETH_P_8021Q))
		return 1;
	if (iface->flags & XNM_IFACE_MAC_LOCKED) {
		struct xnm_vif_mac_key key = { .ifindex = ifindex };

		__builtin_memcpy(key.mac, p->eth->h_source, ETH_ALEN);
		if (!bpf_map_lookup_elem(&xnm_vif_macs, &key))
			return 1;
	}
	if (p->eth->h_proto == bpf_htons(ETH_P_ARP))
		return arp_spoofed(iface, p);
	if (p->ip6 && p->l4proto == IPPROTO_ICMPV6)
		return nd_spoofed(iface, p);
	return 0;
}

/* ---- programs ------------------------------------------------------------------ */

/* Physical ingress: the plane-separated fast path (paper II, Fig. 1(c)). */
static __always_inline int phys_in(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct verdict_ctx v = {};
	struct pkt p = {};

	if (load_settings(&v))
		return XDP_PASS;

	/* parse */
	int parsed = parse(data, data_end, &p);

	if (parsed < 0) {
		if (bind_network(&v, 0))
			return XDP_DROP;
		return finish(&v, parsed == PARSE_STACKED_TAGS ? XNM_R_DROP_VLAN : XNM_R_DROP_MALFORMED, XDP_DROP);
	}

	/* classify: ingress interface + VLAN + destination MAC (paper IV), from the
	 * flow cache when this flow was seen since the last change */
	struct flow_ref flow = {};
	struct xnm_classify_val *cls;

	flow_find(ctx, &v, &p, &flow);
	if (flow.hit) {
		cls = &flow.cls;
	} else {
		struct xnm_classify_key ck = { .ifindex = ctx->ingress_ifindex, .vlan = p.vlan };

		__builtin_memcpy(ck.mac, p.eth->h_dest, ETH_ALEN);
		cls = bpf_map_lookup_elem(&xnm_classify, &ck);
		/* Broadcast and multicast on a VLAN go to the network that owns the VLAN
		 * (its entry has the all-zero MAC), untagged, as to_vm hands every frame. */
		if (!cls && p.vlan && (p.eth->h_dest[0] & 1)) {
			__builtin_memset(ck.mac, 0, ETH_ALEN);
			cls = bpf_map_lookup_elem(&xnm_classify, &ck);
		}
	}

	if (!cls || cls->net_id == 0) {
		if (bind_network(&v, 0))
			return XDP_PASS;
		/* A tagged frame that no network and not the host owns would be flooded by the
		 * host bridge to the untagged ports and other VLANs' routers. */
		if (!cls && p.vlan)
			return finish(&v, XNM_R_DROP_VLAN, XDP_DROP);
		return finish(&v, XNM_R_PASS_HOST, XDP_PASS);
	}
	if (bind_network(&v, cls->net_id))
		return XDP_DROP;

	/* control: up to the virtual router, charged to its network; so is an IPv6
	 * packet whose extension headers the filter cannot see past */
	if (p.exthdr_unparsed || is_control(&p)) {
		int drop = punish_cpu(&v, &p, XNM_PATH_EXT_VM, 0, 1);

		if (drop)
			return finish(&v, drop, XDP_DROP);
		account_cpu(&v, XNM_PATH_EXT_VM, p.len);
		return to_vm(ctx, &v, &p, cls, p.exthdr_unparsed ? XNM_R_TO_VM_EXTHDR : XNM_R_TO_VM_CONTROL);
	}

	/* lookup in this network's table only */
	struct xnm_route_val *route = lookup_route(&v, &p, &flow);

	flow_fill(&flow, cls, route);

	/* the next hop of a route forwarded in the host: its MTU decides the path */
	struct xnm_nexthop *nh = next_hop(&v, route);

	/* account + punish at the input (paper IV-A), by the path the packet will take: a
	 * packet over the next hop's MTU goes up to the router (ext_vm), not out (ext_ext) */
	enum xnm_path path = XNM_PATH_EXT_EXT;

	if (route && (route->flags & (XNM_ROUTE_LOCAL | XNM_ROUTE_VIA_VM)))
		path = XNM_PATH_EXT_VM;
	else if (nh && too_big(&p, nh))
		path = XNM_PATH_EXT_VM;
	int drop = punish_cpu(&v, &p, path, 0, 0);

	if (drop)
		return finish(&v, drop, XDP_DROP);
	account_cpu(&v, path, p.len);
	if (!route)
		return finish(&v, XNM_R_DROP_NO_ROUTE, XDP_DROP);
	if (route->flags & XNM_ROUTE_BLACKHOLE)
		return finish(&v, XNM_R_DROP_BLACKHOLE, XDP_DROP);
	if (route->flags & XNM_ROUTE_LOCAL)
		return to_vm(ctx, &v, &p, cls, XNM_R_TO_VM_CONTROL);
	if (route->flags & XNM_ROUTE_VIA_VM) /* paper II: the default route to the VM */
		return to_vm(ctx, &v, &p, cls, XNM_R_TO_VM_ROUTE);
	if (!nh)
		return finish(&v, XNM_R_DROP_NEXTHOP, XDP_DROP);
	if (path == XNM_PATH_EXT_VM)
		return to_vm(ctx, &v, &p, cls, XNM_R_TO_VM_MTU);

	/* filter: the network's replicated packet filter (paper IV-B) */
	if (filter(&v, &p, flow.unfiltered))
		return finish(&v, XNM_R_DROP_FILTER, XDP_DROP);

	/* account + punish at the output link (paper IV-A) */
	if (account_link(&v, nh->link_slot, p.len))
		return finish(&v, XNM_R_DROP_LINK, XDP_DROP);

	return forward(ctx, &v, &p, nh);
}

/* Vif ingress: a virtual router's own traffic, charged to it (paper IV-A). */
static __always_inline int vif_in(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct verdict_ctx v = {};
	struct pkt p = {};
	__u32 ifindex = ctx->ingress_ifindex;
	struct xnm_iface *iface = bpf_map_lookup_elem(&xnm_ifaces, &ifindex);

	if (load_settings(&v) || bind_network(&v, iface && iface->kind == XNM_IFACE_VIF ? iface->net_id : 0))
		return XDP_PASS;
	if (!iface || iface->kind != XNM_IFACE_VIF)
		return finish(&v, XNM_R_PASS_HOST, XDP_PASS);
	int parsed = parse(data, data_end, &p);

	if (parsed < 0)
		return finish(&v, parsed == PARSE_STACKED_TAGS ? XNM_R_DROP_SPOOF : XNM_R_DROP_MALFORMED, XDP_DROP);
	if (spoofed(iface, ifindex, &p))
		return finish(&v, XNM_R_DROP_SPOOF, XDP_DROP);

	/* The destination MAC tells the path: another router (charged to this
	 * sender), the host itself, or an external machine. */
	enum xnm_path path = XNM_PATH_VM_EXT;
	struct xnm_classify_key ck = { .ifindex = iface->seg_ifindex, .vlan = iface->seg_vlan };

	__builtin_memcpy(ck.mac, p.eth->h_dest, ETH_ALEN);
	struct xnm_classify_val *cls = bpf_map_lookup_elem(&xnm_classify, &ck);

	if (cls)
		path = cls->net_id ? XNM_PATH_VM_VM : XNM_PATH_VM_HOST;

	int drop = punish_cpu(&v, &p, path, 1, 1);

	if (drop)
		return finish(&v, drop, XDP_DROP);
	account_cpu(&v, path, p.len);
	return finish(&v, XNM_R_FROM_VM, XDP_PASS);
}

SEC("xdp")
int xnm_phys_in(struct xdp_md *ctx)
{
	return phys_in(ctx);
}

SEC("xdp")
int xnm_vif_in(struct xdp_md *ctx)
{
	return vif_in(ctx);
}

/* The network a frame the kernel sends belongs to: that of the vif it came in on. The
 * frame's own fields (source MAC, tag) are the tenant's to write, so they never decide
 * who pays; the ingress interface is the kernel's. 0: the host's own or not from a vif. */
static __always_inline __u32 sender_network(struct __sk_buff *skb)
{
	__u32 ingress = skb->ingress_ifindex;
	struct xnm_iface *from = ingress ? bpf_map_lookup_elem(&xnm_ifaces, &ingress) : NULL;

	return from && from->kind == XNM_IFACE_VIF ? from->net_id : 0;
}

/* Physical egress of what the kernel sends (bridged frames from vifs): XDP never
 * sees these, so bytes per output link are charged here (paper IV-A). */
SEC("tc")
int xnm_link_out(struct __sk_buff *skb)
{
	struct verdict_ctx v = {};
	__u32 ifindex = skb->ifindex;
	struct xnm_iface *iface = bpf_map_lookup_elem(&xnm_ifaces, &ifindex);
	__u32 net_id = iface && iface->kind == XNM_IFACE_PHYS ? sender_network(skb) : 0;

	if (load_settings(&v) || bind_network(&v, net_id))
		return TC_ACT_OK;
	if (!net_id)
		return finish(&v, XNM_R_TC_PASS, TC_ACT_OK);
	if (account_link(&v, iface->link_slot, skb->len))
		return finish(&v, XNM_R_DROP_LINK, TC_ACT_SHOT);
	return finish(&v, XNM_R_TC_PASS, TC_ACT_OK);
}

/* Host -> virtual router (paper IV-A: "in transfers between DomU and Dom0, the CPU usage cost
 * is always accounted for the DomU"): TC egress on each vif charges the frames the host itself
 * sends, the ones that came in on no interface the data plane knows (a socket of the host, its
 * bridge), to the vif's network. Frames from a physical link or another vif were charged where
 * they came in. Never dropped here: the host's work is done by now, and the network pays for it
 * through the drops on its own traffic. */
SEC("tc")
int xnm_vif_out(struct __sk_buff *skb)
{
	struct verdict_ctx v = {};
	__u32 ifindex = skb->ifindex;
	__u32 ingress = skb->ingress_ifindex;
	struct xnm_iface *iface = bpf_map_lookup_elem(&xnm_ifaces, &ifindex);
	struct xnm_iface *from = ingress ? bpf_map_lookup_elem(&xnm_ifaces, &ingress) : NULL;
	__u32 net_id = iface && iface->kind == XNM_IFACE_VIF && (!from || from->kind == XNM_IFACE_NONE) ? iface->net_id : 0;

	/* A frame that came in on an interface of the data plane got its verdict there (counted
	 * once, issue 17): passed on uncounted, so that the verdicts add up to the frames. */
	if (!net_id)
		return TC_ACT_OK;
	if (load_settings(&v) || bind_network(&v, net_id))
		return TC_ACT_OK;
	if (v.settings->flags & XNM_SET_ACCOUNTING) {
		v.offered_cost = path_cost(v.settings, XNM_PATH_HOST_VM, skb->len);
		v.stats->cpu_offered += v.offered_cost;
		account_cpu(&v, XNM_PATH_HOST_VM, skb->len);
	}
	return finish(&v, XNM_R_TC_PASS, TC_ACT_OK);
}

SEC("xdp")
int xnm_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
