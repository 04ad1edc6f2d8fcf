// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * Stockade's network isolation of a container (incident response): every packet of an isolated
 * cgroup is dropped, and every new connection or datagram refused (EPERM), unless its peer is on
 * the container's forensics allow-list.
 *
 * CO-RE object built at install time (scripts/build-bpf.sh), loaded by stockade.enforce.isolate.
 * The programs are attached (bpf_link, multi: beside NetGuard's; any program that denies wins) to
 * the isolated container's cgroup2 directory:
 *
 *   cgroup_skb/egress, ingress   every packet of the cgroup's sockets, established ones included
 *   cgroup/connect4, connect6    new connections (TCP, connected UDP): EPERM
 *   cgroup/sendmsg4, sendmsg6    unconnected UDP datagrams: EPERM
 *   cgroup/sock_create           raw IP sockets (SOCK_RAW of AF_INET/AF_INET6): EPERM
 *
 * `isolated` (hash: cgroup id -> flags) says which cgroups are isolated; a task (or socket) of a
 * sub-cgroup is decided by its nearest isolated ancestor. `allow` is an LPM trie keyed by (cgroup id,
 * family) followed by the peer address: at each allowed network the agent stores the port ranges of
 * every allow entry whose network covers it, so one longest-prefix lookup decides. A port range
 * matches the peer's port or the container's own port (a forensics host connecting in, or the
 * container connecting out to it); a packet without ports (ICMP) matches only an entry for every
 * port. Loopback (127.0.0.0/8, ::1, and a packet from the container's own address to itself) stays
 * allowed when the flag ISO_LOOPBACK is set (a container with its own network namespace). TCP resets
 * leave: they are what tells the peer of a connection the agent cut that it is gone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "cgroup_lookup.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ISO_LOOPBACK 1
#define MAX_RANGES 16

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define AF_INET_ 2
#define AF_INET6_ 10
#define SOCK_RAW_ 3

struct iso_cfg {
	__u32 flags;
	__u32 pad;
};

struct allow_key {
	__u32 prefixlen; /* 96 + the network's prefix length */
	__u32 cgid_lo;
	__u32 cgid_hi;
	__u32 family; /* 4 or 6 */
	__u32 addr[4]; /* network byte order; IPv4 in addr[0] */
};

struct port_range {
	__u16 lo;
	__u16 hi;
};

struct allow_val {
	__u32 n;
	struct port_range r[MAX_RANGES];
};

/* what the programs did per isolated cgroup */
struct iso_stats {
	__u64 egress_dropped;
	__u64 ingress_dropped;
	__u64 connect_denied;
	__u64 sendmsg_denied;
	__u64 socket_denied;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct iso_cfg);
} isolated SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_key);
	__type(value, struct allow_val);
} allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct iso_stats);
} stats SEC(".maps");

/* the isolated cgroup of a socket buffer: its socket's cgroup, or that cgroup's nearest isolated
 * ancestor */
static __always_inline struct iso_cfg *skb_cfg(struct __sk_buff *skb, __u64 *cgid)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	struct iso_cfg *c = bpf_map_lookup_elem(&isolated, &id);
	if (c) {
		*cgid = id;
		return c;
	}
	struct iso_cfg *found = 0;
	for (int level = 0; level < MAX_CGROUP_LEVELS; level++) {
		__u64 anc = bpf_skb_ancestor_cgroup_id(skb, level);
		if (!anc)
			break;
		struct iso_cfg *a = bpf_map_lookup_elem(&isolated, &anc);
		if (a) {
			found = a;
			*cgid = anc;
		}
	}
	return found;
}

static __always_inline int range_ok(struct allow_val *v, __u16 p1, __u16 p2)
{
	__u32 n = v->n;
	for (int i = 0; i < MAX_RANGES; i++) {
		if (i >= n)
			break;
		struct port_range *r = &v->r[i];
		if (p1 >= r->lo && p1 <= r->hi)
			return 1;
		if (p2 >= r->lo && p2 <= r->hi)
			return 1;
	}
	return 0;
}

/* 1 when the peer `addr` (family 4 or 6) is on cgroup `cgid`'s allow-list for peer port `pport`
 * or own port `lport` (0: none) */
static __always_inline int allowed(__u64 cgid, __u32 family, const __u32 *addr, __u16 pport, __u16 lport)
{
	struct allow_key k = {
		.prefixlen = 96 + (family == 4 ? 32 : 128),
		.cgid_lo = (__u32)cgid,
		.cgid_hi = (__u32)(cgid >> 32),
		.family = family,
	};
	k.addr[0] = addr[0];
	if (family == 6) {
		k.addr[1] = addr[1];
		k.addr[2] = addr[2];
		k.addr[3] = addr[3];
	}
	struct allow_val *v = bpf_map_lookup_elem(&allow, &k);
	if (!v)
		return 0;
	return range_ok(v, pport, lport);
}

static __always_inline int loopback4(__u32 a)
{
	return (bpf_ntohl(a) >> 24) == 127;
}

static __always_inline int loopback6(const __u32 *a)
{
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

static __always_inline void count(__u64 cgid, int which)
{
	struct iso_stats *s = bpf_map_lookup_elem(&stats, &cgid);
	if (!s) {
		struct iso_stats init = {};
		bpf_map_update_elem(&stats, &cgid, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&stats, &cgid);
		if (!s)
			return;
	}
	switch (which) {
	case 0:
		__sync_fetch_and_add(&s->egress_dropped, 1);
		break;
	case 1:
		__sync_fetch_and_add(&s->ingress_dropped, 1);
		break;
	case 2:
		__sync_fetch_and_add(&s->connect_denied, 1);
		break;
	case 3:
		__sync_fetch_and_add(&s->sendmsg_denied, 1);
		break;
	default:
		__sync_fetch_and_add(&s->socket_denied, 1);
	}
}

/* 1: the packet goes; 0: dropped */
static __always_inline int skb_verdict(struct __sk_buff *skb, int egress)
{
	__u64 cgid = 0;
	struct iso_cfg *c = skb_cfg(skb, &cgid);
	if (!c)
		return 1;
	__u32 src[4] = {}, dst[4] = {};
	__u32 family, l4off;
	__u8 proto;
	if (skb->protocol == bpf_htons(ETH_P_IP_)) {
		struct iphdr ip;
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			goto drop;
		family = 4;
		src[0] = ip.saddr;
		dst[0] = ip.daddr;
		proto = ip.protocol;
		l4off = ip.ihl * 4;
		if ((c->flags & ISO_LOOPBACK) && (loopback4(ip.daddr) || ip.saddr == ip.daddr))
			return 1;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr ip6;
		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			goto drop;
		family = 6;
		__builtin_memcpy(src, &ip6.saddr, 16);
		__builtin_memcpy(dst, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		l4off = sizeof(ip6);
		if ((c->flags & ISO_LOOPBACK) &&
		    (loopback6(dst) || (src[0] == dst[0] && src[1] == dst[1] && src[2] == dst[2] && src[3] == dst[3])))
			return 1;
	} else {
		goto drop;
	}
	__u16 sport = 0, dport = 0;
	if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) {
		__u16 ports[2];
		if (bpf_skb_load_bytes(skb, l4off, ports, sizeof(ports)))
			goto drop;
		sport = bpf_ntohs(ports[0]);
		dport = bpf_ntohs(ports[1]);
		if (egress && proto == IPPROTO_TCP_) {
			__u8 flags;
			if (!bpf_skb_load_bytes(skb, l4off + 13, &flags, 1) && (flags & 0x04))
				return 1; /* RST */
		}
	}
	if (egress ? allowed(cgid, family, dst, dport, sport) : allowed(cgid, family, src, sport, dport))
		return 1;
drop:
	count(cgid, egress ? 0 : 1);
	return 0;
}

SEC("cgroup_skb/egress")
int iso_egress(struct __sk_buff *skb)
{
	return skb_verdict(skb, 1);
}

SEC("cgroup_skb/ingress")
int iso_ingress(struct __sk_buff *skb)
{
	return skb_verdict(skb, 0);
}

static __always_inline int addr_verdict4(struct bpf_sock_addr *ctx, int which)
{
	__u64 cgid = 0;
	struct iso_cfg *c = lookup_by_cgroup(&isolated, &cgid);
	if (!c)
		return 1;
	__u32 addr[4] = {ctx->user_ip4, 0, 0, 0};
	if ((c->flags & ISO_LOOPBACK) && loopback4(addr[0]))
		return 1;
	if (allowed(cgid, 4, addr, bpf_ntohs((__u16)ctx->user_port), 0))
		return 1;
	count(cgid, which);
	return 0;
}

static __always_inline int addr_verdict6(struct bpf_sock_addr *ctx, int which)
{
	__u64 cgid = 0;
	struct iso_cfg *c = lookup_by_cgroup(&isolated, &cgid);
	if (!c)
		return 1;
	__u32 addr[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
	__u32 family = 6;
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff)) {
		addr[0] = addr[3]; /* ::ffff:a.b.c.d is the IPv4 address it maps */
		addr[1] = addr[2] = addr[3] = 0;
		family = 4;
	}
	if ((c->flags & ISO_LOOPBACK) && (family == 4 ? loopback4(addr[0]) : loopback6(addr)))
		return 1;
	if (allowed(cgid, family, addr, bpf_ntohs((__u16)ctx->user_port), 0))
		return 1;
	count(cgid, which);
	return 0;
}

SEC("cgroup/connect4")
int iso_connect4(struct bpf_sock_addr *ctx)
{
	return addr_verdict4(ctx, 2);
}

SEC("cgroup/connect6")
int iso_connect6(struct bpf_sock_addr *ctx)
{
	return addr_verdict6(ctx, 2);
}

SEC("cgroup/sendmsg4")
int iso_sendmsg4(struct bpf_sock_addr *ctx)
{
	return addr_verdict4(ctx, 3);
}

SEC("cgroup/sendmsg6")
int iso_sendmsg6(struct bpf_sock_addr *ctx)
{
	return addr_verdict6(ctx, 3);
}

SEC("cgroup/sock_create")
int iso_sock_create(struct bpf_sock *ctx)
{
	if (ctx->type != SOCK_RAW_ || (ctx->family != AF_INET_ && ctx->family != AF_INET6_))
		return 1;
	__u64 cgid = 0;
	if (!lookup_by_cgroup(&isolated, &cgid))
		return 1;
	count(cgid, 4);
	return 0;
}
