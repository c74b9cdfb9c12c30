// SPDX-License-Identifier: GPL-2.0
/* baseline.bpf.c: reference programs that benchmarks compare XNetMon against.
 *
 * base_count   bumps a per-CPU counter and passes: the cost floor of any XDP program.
 * base_drop    counts and drops: the sink of forwarding benchmarks.
 * base_fwd     a minimal XDP forwarder: bpf_fib_lookup + bpf_redirect, nothing else.
 * base_relay   redirects every frame to one port: the forwarding benchmark's NIC-like feed.
 * base_floor   the least any IPv4 forwarder does: parse Ethernet + IPv4, rewrite the MACs,
 *              decrement the TTL with the checksum fix, count, bpf_redirect_map. No
 *              classification, no table: the floor XNetMon's fast path is held against.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "parse.h"

char LICENSE[] SEC("license") = "GPL";

#ifndef AF_INET
#define AF_INET 2
#endif

/* Packets and bytes seen, per CPU (index 0). */
struct base_counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct base_counter);
} base_counters SEC(".maps");

static __always_inline void count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct base_counter *c = bpf_map_lookup_elem(&base_counters, &zero);

	if (c) {
		c->packets++;
		c->bytes += ctx->data_end - ctx->data;
	}
}

SEC("xdp")
int base_count(struct xdp_md *ctx)
{
	count(ctx);
	return XDP_PASS;
}

SEC("xdp")
int base_drop(struct xdp_md *ctx)
{
	count(ctx);
	return XDP_DROP;
}

SEC("xdp")
int base_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cursor c = { .pos = data };
	struct bpf_fib_lookup fib = {};
	struct ethhdr *eth;
	struct iphdr *iph;
	__u16 vlan;

	if (parse_ethhdr(&c, data_end, &eth, &vlan) != ETH_P_IP || vlan)
		return XDP_PASS;
	if (parse_iphdr(&c, data_end, &iph) < 0 || iph->ttl <= 1)
		return XDP_PASS;

	fib.family = AF_INET;
	fib.tos = iph->tos;
	fib.l4_protocol = iph->protocol;
	fib.tot_len = bpf_ntohs(iph->tot_len);
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	/* BPF_FIB_LKUP_RET_SUCCESS: neighbour resolved, forward; anything else
	 * (no route, no neighbour, not forwarding) is left to the kernel. */
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	ipv4_decrease_ttl(iph);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

/* The ifindex base_relay sends every frame to (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} base_relay_port SEC(".maps");

/* Takes the generator's frames (skbs, which native XDP on a veth copies into pages of
 * its own) and redirects them into the next veth, whose peer then receives XDP frames,
 * as a host's XDP program receives a NIC's: the copy is paid here, before the host. */
SEC("xdp")
int base_relay(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u32 *port = bpf_map_lookup_elem(&base_relay_port, &zero);

	if (!port || !*port)
		return XDP_PASS;
	return bpf_redirect(*port, 0);
}

/* base_floor's next hop (index 0): the MACs it writes and the port it sends to, which
 * must also be in base_floor_ports. */
struct base_floor_hop {
	__u32 ifindex;
	__u8 smac[6];
	__u8 dmac[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct base_floor_hop);
} base_floor_hop SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} base_floor_ports SEC(".maps");

SEC("xdp")
int base_floor(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct cursor c = { .pos = data };
	struct ethhdr *eth;
	struct iphdr *iph;
	__u32 zero = 0;
	__u16 vlan;

	if (parse_ethhdr(&c, data_end, &eth, &vlan) != ETH_P_IP || vlan)
		return XDP_PASS;
	if (parse_iphdr(&c, data_end, &iph) < 0 || iph->ttl <= 1)
		return XDP_PASS;
	struct base_floor_hop *hop = bpf_map_lookup_elem(&base_floor_hop, &zero);

	if (!hop)
		return XDP_PASS;
	ipv4_decrease_ttl(iph);
	__builtin_memcpy(eth->h_dest, hop->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, hop->smac, ETH_ALEN);
	count(ctx);
	return bpf_redirect_map(&base_floor_ports, hop->ifindex, XDP_DROP);
}
