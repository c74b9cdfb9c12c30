/* SPDX-License-Identifier: GPL-2.0 */
/* parse.h: header parsing through a cursor, VLAN rewriting and TTL decrement.
 *
 * Contract (xdp-tutorial style): every parse_* helper takes the cursor and the
 * end of the frame, checks bounds before it touches a byte, advances the cursor
 * past the header and returns the next protocol (host order), or -1 when the
 * frame is too short or the header is invalid (-2 where a helper says so).
 */
#ifndef XNM_PARSE_H
#define XNM_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "xnetmon.h"

struct cursor {
	void *pos;
};

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

#define VLAN_VID_MASK 0x0fff

#define PARSE_STACKED_TAGS -2

/* Ethernet plus at most one 802.1Q tag. Returns the inner EtherType, or
 * PARSE_STACKED_TAGS for an 802.1ad (QinQ) outer tag or a second tag: no attachment
 * is named by two tags, and a bridge would carry such a frame across VLANs. */
static __always_inline int parse_ethhdr(struct cursor *c, void *data_end, struct ethhdr **eth,
					__u16 *vlan)
{
	struct ethhdr *e = c->pos;

	if ((void *)(e + 1) > data_end)
		return -1;
	c->pos = e + 1;
	*eth = e;
	*vlan = 0;

	__u16 proto = bpf_ntohs(e->h_proto);
	if (proto == ETH_P_8021AD)
		return PARSE_STACKED_TAGS;
	if (proto == ETH_P_8021Q) {
		struct vlan_hdr *v = c->pos;

		if ((void *)(v + 1) > data_end)
			return -1;
		c->pos = v + 1;
		*vlan = bpf_ntohs(v->tci) & VLAN_VID_MASK;
		proto = bpf_ntohs(v->encapsulated_proto);
		if (proto == ETH_P_8021Q || proto == ETH_P_8021AD)
			return PARSE_STACKED_TAGS;
	}
	return proto;
}

/* IPv4: rejects IHL < 5 and headers past the end. Returns the L4 protocol. */
static __always_inline int parse_iphdr(struct cursor *c, void *data_end, struct iphdr **iph)
{
	struct iphdr *ip = c->pos;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	__u32 hdr_len = ip->ihl * 4;
	if ((void *)ip + hdr_len > data_end)
		return -1;
	if (bpf_ntohs(ip->tot_len) < hdr_len)
		return -1;
	c->pos = (void *)ip + hdr_len;
	*iph = ip;
	return ip->protocol;
}

/* IPv6 fixed header. Returns the next header (extension headers are not walked). */
static __always_inline int parse_ip6hdr(struct cursor *c, void *data_end, struct ipv6hdr **ip6h)
{
	struct ipv6hdr *ip6 = c->pos;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (ip6->version != 6)
		return -1;
	c->pos = ip6 + 1;
	*ip6h = ip6;
	return ip6->nexthdr;
}

#define PARSE_CHAIN_TOO_LONG -2

/* IPv6 extension headers (RFC 8200 section 4): Hop-by-Hop, Routing, Fragment,
 * Destination Options and AH, at most XNM_MAX_IP6_EXTHDRS of them. Returns the
 * upper-layer protocol, -1 when a header is cut short, or PARSE_CHAIN_TOO_LONG.
 * Sets *nonfirst for a fragment other than the first: it carries no ports. */
static __always_inline int parse_ip6_exthdrs(struct cursor *c, void *data_end, int nexthdr, __u8 *nonfirst)
{
	for (int i = 0; i < XNM_MAX_IP6_EXTHDRS; i++) {
		__u8 *h = c->pos;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(h + 2) > data_end)
				return -1;
			nexthdr = h[0];
			c->pos = h + ((__u32)h[1] + 1) * 8; /* length in 8-octet units, not counting the first */
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(h + 8) > data_end)
				return -1;
			if (((h[2] << 8) | h[3]) & 0xfff8) /* fragment offset, in the upper 13 bits */
				*nonfirst = 1;
			nexthdr = h[0];
			c->pos = h + 8;
			break;
		case IPPROTO_AH:
			if ((void *)(h + 2) > data_end)
				return -1;
			nexthdr = h[0];
			c->pos = h + ((__u32)h[1] + 2) * 4; /* length in 4-octet units, minus 2 */
			break;
		default:
			return nexthdr;
		}
	}
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_FRAGMENT:
	case IPPROTO_AH:
		return PARSE_CHAIN_TOO_LONG;
	default:
		return nexthdr;
	}
}

/* Ports of TCP/UDP/SCTP (the first four bytes of each). Returns 0, or -1 if short. */
static __always_inline int parse_ports(struct cursor *c, void *data_end, __u16 *sport, __u16 *dport)
{
	__be16 *ports = c->pos;

	if ((void *)(ports + 2) > data_end)
		return -1;
	*sport = bpf_ntohs(ports[0]);
	*dport = bpf_ntohs(ports[1]);
	return 0;
}

/* RFC 1624 incremental update for a TTL decrement (as the kernel's ip_decrease_ttl). */
static __always_inline void ipv4_decrease_ttl(struct iphdr *iph)
{
	__u32 check = (__u32)iph->check;

	check += (__u32)bpf_htons(0x0100);
	iph->check = (__sum16)(check + (check >= 0xFFFF));
	iph->ttl--;
}

/* Make the frame carry `want` as its VLAN (0 = untagged), given it now carries `have`.
 * Returns 0 or -1. After a change the caller must re-read ctx->data. */
static __always_inline int xdp_set_vlan(struct xdp_md *ctx, __u16 have, __u16 want)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (have == want)
		return 0;

	if (have && want) {
		struct vlan_hdr *v = data + sizeof(struct ethhdr);

		if ((void *)(v + 1) > data_end)
			return -1;
		v->tci = bpf_htons((bpf_ntohs(v->tci) & ~VLAN_VID_MASK) | want);
		return 0;
	}

	if (have) { /* pop: move the MACs 4 bytes up, then drop the first 4 bytes */
		struct ethhdr *e = data;

		if ((void *)e + sizeof(struct ethhdr) + sizeof(struct vlan_hdr) > data_end)
			return -1;
		struct vlan_hdr *v = (void *)(e + 1);
		__be16 inner = v->encapsulated_proto;
		__u8 macs[12];

		__builtin_memcpy(macs, e, 12);
		if (bpf_xdp_adjust_head(ctx, (int)sizeof(struct vlan_hdr)))
			return -1;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		e = data;
		if ((void *)(e + 1) > data_end)
			return -1;
		__builtin_memcpy(e, macs, 12);
		e->h_proto = inner;
		return 0;
	}

	/* push */
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct vlan_hdr)))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *e = data;

	if ((void *)e + sizeof(struct ethhdr) + sizeof(struct vlan_hdr) > data_end)
		return -1;
	struct ethhdr *old = (void *)e + sizeof(struct vlan_hdr);
	struct vlan_hdr *v = (void *)(e + 1);
	__be16 inner = old->h_proto;
	__u8 macs[12];

	__builtin_memcpy(macs, old, 12); /* the two headers overlap: copy through a buffer */
	__builtin_memcpy(e, macs, 12);
	e->h_proto = bpf_htons(ETH_P_8021Q);
	v->tci = bpf_htons(want);
	v->encapsulated_proto = inner;
	return 0;
}

#endif /* XNM_PARSE_H */
