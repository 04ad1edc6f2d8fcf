// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * Stockade's network enforcer: cgroup BPF programs that deny, per container, what its policy does
 * not allow (EPERM to the caller), and report each decision outside the allow-list.
 *
 * CO-RE object built at install time (scripts/build-bpf.sh), loaded by stockade.enforce.netguard.
 * The programs are attached (bpf_link, multi) to each protected container's cgroup2 directory; they
 * find the container's rules by the current task's cgroup id (or, for a task in a sub-cgroup, its
 * nearest protected ancestor's):
 *
 *   cgroup/connect4, connect6   egress: destination address, port, protocol (TCP, connected UDP)
 *   cgroup/sendmsg4, sendmsg6   egress: unconnected UDP datagrams (the destination of each send)
 *   cgroup/bind4, bind6         listening: the local address and port bound
 *   cgroup/sock_create          raw sockets: SOCK_RAW of AF_INET/AF_INET6
 *
 * Rules live in one LPM trie (`rules`) keyed by (cgroup id, generation, kind, family) followed by
 * the address: the fixed part is 128 bits, so a lookup never matches another cgroup's entries. The
 * agent stores at each rule network the entries of every rule whose network covers it, sorted by
 * precedence (block and audit rules before allow rules, each in rule order), so one longest-prefix
 * lookup yields every rule that can apply to the address and the first entry whose port range and
 * protocol match decides. No match: the container's default action. IPv4-mapped IPv6 destinations
 * (::ffff:a.b.c.d) are decided as the IPv4 address they are.
 *
 * `cfg` (hash: an update replaces the element as a whole) holds each cgroup's generation, default
 * action, raw-socket action, audit-only flag and record rate: the agent writes a new generation's
 * entries, then flips `cfg`, then deletes the old ones, so a rule change never opens a window where
 * everything is allowed.
 *
 * Each decision that is not a plain allow (block, audit, or audit-only) is sent to the `denials`
 * ring buffer, at most cfg.rate records per second and cgroup (`rate`); suppressed records are
 * counted there, ring-buffer reserve failures per CPU in `lost`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "cgroup_lookup.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ACT_ALLOW 0
#define ACT_AUDIT 1
#define ACT_BLOCK 2

#define KIND_EGRESS 0
#define KIND_BIND 1

#define OP_CONNECT4 1
#define OP_CONNECT6 2
#define OP_SENDMSG4 3
#define OP_SENDMSG6 4
#define OP_BIND4 5
#define OP_BIND6 6
#define OP_SOCK 7

#define PROTO_ANY 0
#define RULE_DEFAULT 0xffff
#define RULE_RAW 0xfffe
#define MAX_ENTRIES 32
#define WINDOW_NS 1000000000ULL

#define AF_INET_ 2
#define AF_INET6_ 10
#define SOCK_RAW_ 3

struct rule_key {
	__u32 prefixlen; /* 128 + the network's prefix length */
	__u32 cgid_lo;   /* the cgroup id in two halves: no padding before the trie's data */
	__u32 cgid_hi;
	__u32 gen;
	__u8 kind;
	__u8 family; /* 4 or 6 */
	__u8 pad[2];
	__u32 addr[4]; /* network byte order; IPv4 in addr[0] */
};

struct rule_ent {
	__u16 port_lo;
	__u16 port_hi;
	__u8 proto; /* PROTO_ANY, 6 (TCP), 17 (UDP) */
	__u8 action;
	__u16 rule; /* index in the container's egress or bind rules */
};

struct rule_val {
	__u32 n;
	struct rule_ent ent[MAX_ENTRIES];
};

struct cg_cfg {
	__u32 gen;
	__u8 default_action;
	__u8 raw_action;
	__u8 audit_only;
	__u8 pad;
	__u32 rate; /* ring-buffer records per second */
	__u32 pad2;
};

struct cg_rate {
	__u64 window_start;
	__u64 count;
	__u64 suppressed;
	__u64 emitted;
};

struct ng_rec {
	__u64 ts;
	__u64 cgid;
	__u64 suppressed; /* this cgroup's suppressed records so far */
	__u32 pid;
	__u32 gen;
	char comm[16];
	__u8 op;
	__u8 family;
	__u8 proto;
	__u8 action;
	__u8 blocked;
	__u8 pad;
	__u16 port;
	__u16 rule;
	__u16 sock_type;
	__u32 pad2;
	__u32 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct rule_key);
	__type(value, struct rule_val);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cg_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct cg_rate);
} rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} denials SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* what the agent keeps to find its state again after a restart (JSON, in 1 KiB parts):
 * key (cgroup id, generation, part) */
struct meta_key {
	__u64 cgid;
	__u32 gen;
	__u32 part;
};

struct meta_val {
	__u32 len;
	char data[1020];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct meta_key);
	__type(value, struct meta_val);
} meta SEC(".maps");

struct decision {
	__u8 action;
	__u16 rule;
};

static __always_inline struct cg_cfg *find_cfg(__u64 *cgid)
{
	return lookup_by_cgroup(&cfg, cgid);
}

static __always_inline struct decision decide(struct cg_cfg *c, __u64 cgid, __u8 kind, __u8 family,
					     const __u32 *addr, __u16 port, __u8 proto)
{
	struct decision d = {.action = c->default_action, .rule = RULE_DEFAULT};
	struct rule_key k = {
		.prefixlen = 128 + (family == 4 ? 32 : 128),
		.cgid_lo = (__u32)cgid,
		.cgid_hi = (__u32)(cgid >> 32),
		.gen = c->gen,
		.kind = kind,
		.family = family,
	};
	k.addr[0] = addr[0];
	if (family == 6) {
		k.addr[1] = addr[1];
		k.addr[2] = addr[2];
		k.addr[3] = addr[3];
	}
	struct rule_val *v = bpf_map_lookup_elem(&rules, &k);
	if (!v)
		return d;
	__u32 n = v->n;
	for (int i = 0; i < MAX_ENTRIES; i++) {
		if (i >= n)
			break;
		struct rule_ent *e = &v->ent[i];
		if (port < e->port_lo || port > e->port_hi)
			continue;
		if (e->proto != PROTO_ANY && e->proto != proto)
			continue;
		d.action = e->action;
		d.rule = e->rule;
		return d;
	}
	return d;
}

/* whether to send a record for this cgroup now (at most c->rate per second); counts the others */
static __always_inline int rate_ok(struct cg_cfg *c, __u64 cgid, __u64 now, __u64 *suppressed)
{
	struct cg_rate *r = bpf_map_lookup_elem(&rate, &cgid);
	if (!r) {
		struct cg_rate init = {.window_start = now, .count = 1, .emitted = 1};
		bpf_map_update_elem(&rate, &cgid, &init, BPF_NOEXIST);
		*suppressed = 0;
		return 1;
	}
	if (now - r->window_start > WINDOW_NS) {
		r->window_start = now;
		r->count = 0;
	}
	if (r->count >= c->rate) {
		__sync_fetch_and_add(&r->suppressed, 1);
		return 0;
	}
	__sync_fetch_and_add(&r->count, 1);
	__sync_fetch_and_add(&r->emitted, 1);
	*suppressed = r->suppressed;
	return 1;
}

static __always_inline void report(struct cg_cfg *c, __u64 cgid, __u8 op, __u8 family, const __u32 *addr,
				   __u16 port, __u8 proto, __u16 sock_type, struct decision d, __u8 blocked)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 suppressed = 0;
	if (!rate_ok(c, cgid, now, &suppressed))
		return;
	struct ng_rec *r = bpf_ringbuf_reserve(&denials, sizeof(*r), 0);
	if (!r) {
		__u32 zero = 0;
		__u64 *l = bpf_map_lookup_elem(&lost, &zero);
		if (l)
			*l += 1;
		return;
	}
	r->ts = now;
	r->cgid = cgid;
	r->suppressed = suppressed;
	r->pid = bpf_get_current_pid_tgid() >> 32;
	r->gen = c->gen;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	r->op = op;
	r->family = family;
	r->proto = proto;
	r->action = d.action;
	r->blocked = blocked;
	r->pad = 0;
	r->port = port;
	r->rule = d.rule;
	r->sock_type = sock_type;
	r->pad2 = 0;
	r->addr[0] = addr[0];
	r->addr[1] = addr[1];
	r->addr[2] = addr[2];
	r->addr[3] = addr[3];
	bpf_ringbuf_submit(r, 0);
}

/* 1: let the operation go ahead; 0: EPERM */
static __always_inline int verdict(struct cg_cfg *c, __u64 cgid, __u8 op, __u8 kind, __u8 family,
				   const __u32 *addr, __u16 port, __u8 proto)
{
	struct decision d = decide(c, cgid, kind, family, addr, port, proto);
	if (d.action == ACT_ALLOW)
		return 1;
	__u8 blocked = d.action == ACT_BLOCK && !c->audit_only;
	report(c, cgid, op, family, addr, port, proto, 0, d, blocked);
	return !blocked;
}

static __always_inline int check4(struct bpf_sock_addr *ctx, __u8 op, __u8 kind)
{
	__u64 cgid = 0;
	struct cg_cfg *c = find_cfg(&cgid);
	if (!c)
		return 1;
	__u32 addr[4] = {ctx->user_ip4, 0, 0, 0};
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	return verdict(c, cgid, op, kind, 4, addr, port, (__u8)ctx->protocol);
}

static __always_inline int check6(struct bpf_sock_addr *ctx, __u8 op, __u8 kind)
{
	__u64 cgid = 0;
	struct cg_cfg *c = find_cfg(&cgid);
	if (!c)
		return 1;
	__u32 addr[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 family = 6;
	if (addr[0] == 0 && addr[1] == 0 && addr[2] == bpf_htonl(0xffff)) {
		/* ::ffff:a.b.c.d is the IPv4 address it maps */
		addr[0] = addr[3];
		addr[1] = 0;
		addr[2] = 0;
		addr[3] = 0;
		family = 4;
	}
	return verdict(c, cgid, op, kind, family, addr, port, (__u8)ctx->protocol);
}

SEC("cgroup/connect4")
int ng_connect4(struct bpf_sock_addr *ctx)
{
	return check4(ctx, OP_CONNECT4, KIND_EGRESS);
}

SEC("cgroup/connect6")
int ng_connect6(struct bpf_sock_addr *ctx)
{
	return check6(ctx, OP_CONNECT6, KIND_EGRESS);
}

SEC("cgroup/sendmsg4")
int ng_sendmsg4(struct bpf_sock_addr *ctx)
{
	return check4(ctx, OP_SENDMSG4, KIND_EGRESS);
}

SEC("cgroup/sendmsg6")
int ng_sendmsg6(struct bpf_sock_addr *ctx)
{
	return check6(ctx, OP_SENDMSG6, KIND_EGRESS);
}

SEC("cgroup/bind4")
int ng_bind4(struct bpf_sock_addr *ctx)
{
	return check4(ctx, OP_BIND4, KIND_BIND);
}

SEC("cgroup/bind6")
int ng_bind6(struct bpf_sock_addr *ctx)
{
	return check6(ctx, OP_BIND6, KIND_BIND);
}

SEC("cgroup/sock_create")
int ng_sock_create(struct bpf_sock *ctx)
{
	if (ctx->type != SOCK_RAW_ || (ctx->family != AF_INET_ && ctx->family != AF_INET6_))
		return 1;
	__u64 cgid = 0;
	struct cg_cfg *c = find_cfg(&cgid);
	if (!c || c->raw_action == ACT_ALLOW)
		return 1;
	struct decision d = {.action = c->raw_action, .rule = RULE_RAW};
	__u8 blocked = d.action == ACT_BLOCK && !c->audit_only;
	__u32 addr[4] = {0, 0, 0, 0};
	report(c, cgid, OP_SOCK, ctx->family == AF_INET_ ? 4 : 6, addr, 0, (__u8)ctx->protocol,
	       (__u16)ctx->type, d, blocked);
	return !blocked;
}
