// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * Stockade's last-resort exec denial: SIGKILL, at exec, to a process of an armed cgroup that
 * executes a file not on its allow-list.
 *
 * For nodes without fanotify permission events. eBPF cannot make execve() fail here (no BPF-LSM,
 * no bpf_override_return); bpf_send_signal(SIGKILL) from sched_process_exec kills the process
 * after the kernel switched to the new program and before any of its instructions runs. Loaded by
 * stockade.enforce.kill.ExecKiller; built by scripts/build-bpf.sh.
 *
 *   armed    cgroup id -> {audit_only}: the cgroups (containers) watched; a task in a sub-cgroup
 *            is decided by its nearest armed ancestor
 *   allowed  (cgroup id, device, inode) of each executable the cgroup may run
 *   kills    ring buffer: one record per exec outside the allow-list (killed, or audited)
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "cgroup_lookup.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SIGKILL_ 9

struct ek_cfg {
	__u8 audit_only;
	__u8 pad[7];
};

struct ek_key {
	__u64 cgid;
	__u64 dev; /* the kernel's dev_t: major << 20 | minor */
	__u64 ino;
};

struct ek_rec {
	__u64 ts;
	__u64 cgid;
	__u64 dev;
	__u64 ino;
	__u32 pid;
	__u8 killed;
	__u8 pad[3];
	char comm[16];
	char filename[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ek_cfg);
} armed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ek_key);
	__type(value, __u8);
} allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} kills SEC(".maps");

static __always_inline struct ek_cfg *find_armed(__u64 *cgid)
{
	return lookup_by_cgroup(&armed, cgid);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ek_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u64 cgid = 0;
	struct ek_cfg *c = find_armed(&cgid);
	if (!c)
		return 0;
	struct inode *inode = BPF_CORE_READ(bprm, file, f_inode);
	struct ek_key k = {
		.cgid = cgid,
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
		.ino = BPF_CORE_READ(inode, i_ino),
	};
	if (bpf_map_lookup_elem(&allowed, &k))
		return 0;
	__u8 killed = !c->audit_only;
	if (killed)
		bpf_send_signal(SIGKILL_);
	struct ek_rec *r = bpf_ringbuf_reserve(&kills, sizeof(*r), 0);
	if (!r)
		return 0;
	r->ts = bpf_ktime_get_ns();
	r->cgid = cgid;
	r->dev = k.dev;
	r->ino = k.ino;
	r->pid = bpf_get_current_pid_tgid() >> 32;
	r->killed = killed;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), BPF_CORE_READ(bprm, filename));
	bpf_ringbuf_submit(r, 0);
	return 0;
}
