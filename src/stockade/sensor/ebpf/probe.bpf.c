// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * Stockade's eBPF sensor: process, file and network syscalls into one BPF ring buffer.
 *
 * CO-RE program built at install time (scripts/build-bpf.sh), loaded by
 * stockade.sensor.ebpf.backend through libbpf. Only BTF tracepoints (tp_btf) are used: they work
 * where kprobes, fentry and BPF-LSM are refused.
 *
 *   raw_syscalls:sys_enter   remember the arguments of an enabled syscall (per-thread hash map)
 *   raw_syscalls:sys_exit    one event per enabled syscall: arguments + result (+ strings, sockets)
 *   sched:sched_process_exec execve/execveat that succeeded (filename, exe path, argv)
 *   sched:sched_process_fork clone/fork/vfork/clone3 (the new process)
 *   sched:sched_process_exit procexit (thread-group leaders)
 *
 * Which syscalls are processed is decided by user space (the `specs` map, indexed by syscall
 * number): a syscall the rules do not need costs one array lookup. The spec also says how to read
 * each argument (a user string, a path to resolve against a directory fd, a sockaddr, a socket fd),
 * so adding a syscall is a line in Python, not a new BPF program.
 *
 * A spec may also say that the failed calls of a syscall are dropped here (SPEC_DROP_FAILED: no
 * loaded rule can match them, as stockade.rules.prefilter proves), and that its calls on a path no
 * loaded rule cares about are (the interest filter, pf_*: stockade.rules.interest); both are
 * counted per CPU and syscall in `filtered`, apart from the losses.
 *
 * Learning (cgroups in `watched`, filled by user space): each operation of a watched cgroup has a
 * learning key (its identity as a behaviour profile sees it: the path and access of an open, the
 * executable, arguments and parent executable of an exec, the peer of a connect, the port of a
 * bind or listen, ...: the lk* fields of the spec). The first time a key is seen (the LRU map
 * `seen`) the record is kept whatever the filters above say, flagged HF_NOVEL; a repeat is
 * dropped where those filters would drop it (counted in `filtered` as a learned repeat) and kept,
 * flagged HF_SEEN, where a rule wants it. Syscalls followed for learning only (SPEC_LEARN_ONLY) are not
 * even remembered for the other cgroups. While some cgroup is watched for its syscalls, sys_enter
 * sets a bit per syscall number each such cgroup makes in `sc_used` (in the sensor's own program:
 * a second program on the tracepoint would cost about 140 ns a syscall to every process here).
 *
 * Watching by ancestor (`watch_parents`, user space's set_watched_parents): a task whose own
 * cgroup is not in `watched` but one of whose ancestors (levels 1..PARENT_LEVELS) is in
 * `watch_parents` is watched with that entry's flags and epoch, keyed by its own cgroup, as if it
 * were listed: a container is learned from its first instruction, before user space knows it. Its
 * first such call records it in `inherited` and makes its counters (`learn_repeats`, `sc_used`).
 * Only while switch 7 says some parent is watched do the other tasks pay for the ancestors' lookup.
 *
 * Record layout (little-endian): struct ev_hdr, then blobs {u16 tag, u16 len, data[len]} each
 * starting at a 4-byte aligned offset. Reserve failures are counted per CPU in `drops`.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EV_SYSCALL 1
#define EV_EXEC 2
#define EV_FORK 3
#define EV_EXIT 4

/* argument kinds (struct sc_spec.kind[i]) */
#define K_INT 0
#define K_STR 1      /* user string */
#define K_PATH 2     /* user path; relative ones get the directory of aux[i] (fd arg, 0xff = cwd) */
#define K_SOCKADDR 3 /* user sockaddr, length in arg aux[i] */
#define K_SOCKADDR_OUT 4 /* user sockaddr filled by the kernel, length at user pointer arg aux[i] */
#define K_SOCKFD 5   /* a socket fd: local and remote address from the struct sock */
#define K_ARGV 6     /* user char *argv[] */
#define K_RETSOCK 7  /* the return value is a socket fd (accept) */
#define K_FDPATH 8   /* an fd: its file's path (T_DIR + slot); aux: a path argument's slot that, when
		      * not NULL, makes it unneeded (0xff: always read) */
#define K_MEM 9      /* user memory of aux bytes (T_SADDR + slot): a struct such as timespec[2] */

#define SPEC_ON 1
#define SPEC_FAIL_ONLY 2 /* success is reported by a sched tracepoint (exec, fork) */
#define SPEC_DROP_FAILED 4 /* a failed call (ret < 0) is dropped and counted in `filtered` */
#define SPEC_LEARN_ONLY 8 /* followed for learning only: the calls of cgroups not watched are not read */

/* ev_hdr.kind: the record's kind in the low byte, these flags above it */
#define HF_NOVEL 0x100 /* the operation's learning key was new to its cgroup (the `seen` map) */
#define HF_SEEN 0x200  /* a watched cgroup's call whose key was seen (kept: a rule wants it, an exec) */

/* blob tags */
#define T_STR 0x10     /* + arg index */
#define T_DIR 0x20     /* + arg index: directory components, leaf first, each NUL-terminated */
#define T_SADDR 0x30   /* + arg index */
#define T_SOCK 0x40    /* + arg index (0xf = return value) */
#define T_ARGV 0x50    /* NUL-separated argument strings */
#define T_EXE 0x51     /* exe path components, leaf first */
#define T_FILENAME 0x52
#define T_CWD 0x53
#define T_CGROUP 0x54 /* cgroup path components (pids, else memory hierarchy), leaf first */
#define T_ENV 0x55    /* exec: the environment's first bytes (NUL-separated NAME=value) */
#define T_ENV_TAIL 0x56 /* exec: the environment's last bytes, when it is longer than T_ENV */
#define T_STDIO 0x60  /* + fd (0-2): struct stdio_info of the exec'd program's fd */
#define T_STDIO_PATH 0x64 /* + fd: its path components, leaf first (files, devices, fifos) */
#define T_STDIO_SOCK 0x68 /* + fd: its struct sock_info (sockets) */
#define ENV_TAIL 2048 /* the environment's last bytes read when it is longer than MAX_STR - 1 */

#define BUF_SZ 65536
#define POS_MASK 0x7fff
#define OFF_MASK 0x3fff
#define MAX_STR 4096
#define MAX_COMPONENTS 48
#define MAX_ARGV 64
#define AT_FDCWD -100
#define S_IFMT 00170000
#define S_IFSOCK 0140000

struct ev_hdr {
	__u16 kind;
	__u16 nr;
	__u32 len;
	__u64 ts;
	__u32 pid, tid, ppid, vpid;
	__u32 uid, gid, loginuid, tty;
	__u64 cgroup_id;
	__u32 mntns, pidns;
	__s64 ret;
	__u64 args[6];
	__u64 start_ns;
	char comm[16];
};

struct sock_info {
	__u16 family;
	__u16 type;
	__u16 proto;
	__u16 lport;
	__u16 rport;
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* what an exec'd program's fd 0, 1 or 2 is (T_STDIO): user space names its type as Falco's fd.type */
struct stdio_info {
	__u32 mode;  /* the inode's i_mode */
	__u32 magic; /* its file system's magic (pipefs, sockfs, anon_inodefs, ...) */
	__u64 ino;
};

struct sc_spec {
	__u8 flags;
	__u8 kind[6];
	__u8 aux[6];
	__u8 pf_classes; /* interest filter: the classes (PF_*) whose calls on an unrelated path are dropped */
	__u8 pf_path;    /* the argument slot of the path */
	__u8 pf_flags;   /* the argument slot of open(2) flags, PF_HOW (openat2), PF_NO_FLAGS */
	__u8 lk;         /* learning: how the call's key is made (LK_*) */
	__u8 lk_slot;    /* the argument slot it reads (LK_SADDR: the sockaddr) */
	__u8 lk_aux;     /* LK_SADDR: the slot of the sockaddr's length */
	__u8 lk_pad;
	__u16 lk_op;     /* the operation class of the key (calls of one class share keys) */
};

struct inflight {
	__u64 args[6];
	__u32 nr;
	__u32 pad;
};

struct scratch {
	__u8 buf[BUF_SZ];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct sc_spec);
} specs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* 0: ring buffer full, 1: in-flight table full, 2: exec/fork/exit tracepoint events lost (same cause) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* calls dropped on purpose (not losses: no rule needed them), per syscall number: failed calls
 * (SPEC_DROP_FAILED) at nr, calls on a path no rule cares about (the interest filter) at 512 + nr,
 * repeats of an operation a watched cgroup was already seen to do at LEARNED_BASE + nr */
#define LEARNED_BASE 1024
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1536);
	__type(key, __u32);
	__type(value, __u64);
} filtered SEC(".maps");

/* switches: 0 exec, 1 fork, 2 exit, 3 cwd on exec, 4 wake-up threshold (bytes), 5 some cgroup is
 * watched for learning, 6 some cgroup is watched for its syscalls, 7 the flags of the watched
 * parents or'ed (0: none), 8 environment on exec, 9 stdin/stdout/stderr on exec */
#define SW_ENV 8
#define SW_STDIO 9
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} switches SEC(".maps");

/* thread groups whose events are dropped in the kernel (the sensor itself) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} ignored SEC(".maps");

/* ---- interest filter (stockade.rules.interest) ----------------------------------------------
 * A path is related to the loaded rules when it is not absolute, not canonical or too long, when
 * it has a byte pair or a hashed 4-byte window of pf_bits, or when pf_fwd (exact names with their
 * NUL, prefixes) or pf_rev (suffixes, reversed) holds a prefix of it whose value has the call's
 * class bit. User space gives each trie entry the classes of every shorter entry that is a prefix
 * of it, so the longest match says all. */
#define PF_MAX 256 /* path bytes compared, NUL included */
#define PF_NO_FLAGS 0xff
#define PF_HOW 0xfe /* openat2: the flags are the first u64 of the struct open_how at args[2] */
#define PF_READ_EXCLUDED (03 | 0100 | 01000 | 02000 | 020000000) /* access mode, CREAT, TRUNC, APPEND, TMPFILE */
#define PF_QUAD_MUL 2654435761u

struct pf_key {
	__u32 prefixlen;
	__u8 data[PF_MAX];
};

struct pf_bits {
	__u8 pairs[8192]; /* bit (first << 8 | second) */
	__u8 quads[8192]; /* bit (window * PF_QUAD_MUL) >> 16, window = 4 bytes, first lowest */
};

struct pf_scratch {
	struct pf_key fwd;
	struct pf_key rev;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_key);
	__type(value, __u32);
} pf_fwd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct pf_key);
	__type(value, __u32);
} pf_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_bits);
} pf_bits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pf_scratch);
} pf_scratch SEC(".maps");

/* ---- learning: watched cgroups ----------------------------------------------------------------
 * `watched`: cgroup id (the cgroup2 directory's inode, bpf_get_current_cgroup_id) -> flags and an
 * epoch (bumped to forget what the cgroup was seen to do). `seen`: the learning keys seen, LRU: when
 * full the least recently seen key goes, and its next occurrence is new again (delivered, never
 * lost). `sc_used`: a 512-bit set of the syscall numbers each cgroup watched for it made. */
#define WATCH_LEARN 1
#define WATCH_SYSCALLS 2
/* learning keys (struct sc_spec.lk) */
#define LK_NONE 0  /* none: the call is not learned */
#define LK_OP 1    /* the operation class alone (a privileged syscall) */
#define LK_PATH 2  /* the path at pf_path (and its directory when relative); lk_aux 1: an open's access */
#define LK_SADDR 3 /* the sockaddr at lk_slot (length at lk_aux; none: the socket's peer), protocol */
#define LK_LOCAL 4 /* the socket fd arg 0's local address and port, protocol (listen) */
#define LK_PEER 5  /* the returned socket's peer address and local port, protocol (accept) */
#define LK_ARGS 6  /* arguments 0, 1 (low 4 bits) and 2 (socket: domain, type, protocol) */
#define OP_EXEC 2  /* the operation class of an exec (stockade.sensor.ebpf.syscalls.OP_EXEC) */
#define LEARN_MAX 512 /* path bytes hashed, NUL included: a longer path has no key (always new) */
#define CLS_FAILED 0x8000
#define LEARN_UNWATCHED 0
#define LEARN_SEEN 1
#define LEARN_NEW 2
#define SW_LEARNING 5
#define SW_SYSCALLS 6 /* some cgroup is watched for its syscalls (sys_enter marks them) */
#define SW_PARENTS 7  /* the flags of the watched parents, or'ed */
#define PARENT_LEVELS 6 /* the ancestor levels looked at (1: the root's children) */
/* learn_stats: 0 keys new, 1 repeats dropped, 2 repeats kept (a rule wants them), 3 calls without
 * a key (kept, flagged new) */
#define LS_NEW 0
#define LS_DROPPED 1
#define LS_KEPT 2
#define LS_UNKEYED 3

struct watch {
	__u32 flags;
	__u32 epoch;
};

struct seen_key {
	__u64 cgroup;
	__u64 hash;
	__u32 epoch;
	__u16 op;
	__u16 cls;
};

struct sc_bits {
	__u64 w[8];
};

struct learn_scratch {
	__u8 buf[LEARN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct watch);
} watched SEC(".maps");

/* the watched parents: cgroup id -> flags and epoch, given to the cgroups below them */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, struct watch);
} watch_parents SEC(".maps");

/* the cgroups watched through a parent so far (the parent's watch when first seen): their
 * counters below were made by the program; user space keeps the epoch when it lists one */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct watch);
} inherited SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct seen_key);
	__type(value, __u32);
} seen SEC(".maps");

/* LRU (as learn_repeats): the entries the program makes for the cgroups of a watched parent go
 * when they are the least recently used of a full map (containers gone) */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct sc_bits);
} sc_used SEC(".maps");

/* per watched cgroup (created and deleted with its watch): its calls whose key was seen, dropped
 * or (a rule wanting them) delivered flagged HF_SEEN: the repeats a learner skips */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} learn_repeats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct learn_scratch);
} learn_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} learn_stats SEC(".maps");

/* one 64 KiB scratch record per CPU (a per-CPU array value cannot exceed 32 KiB); user space
 * sets max_entries to the number of possible CPUs. Tracepoint programs do not migrate. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline void count_drop(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &idx);
	if (v)
		*v += 1;
}

static __always_inline void count_filtered(__u32 nr)
{
	__u64 *v = bpf_map_lookup_elem(&filtered, &nr);
	if (v)
		*v += 1;
}

static __always_inline int enabled(__u32 idx)
{
	__u32 *v = bpf_map_lookup_elem(&switches, &idx);
	return v && *v;
}

static __always_inline int is_ignored(__u32 tgid)
{
	return bpf_map_lookup_elem(&ignored, &tgid) != NULL;
}

static __always_inline void fill_hdr(struct ev_hdr *h, struct task_struct *t, __u16 kind, __u16 nr)
{
	h->kind = kind;
	h->nr = nr;
	h->ts = bpf_ktime_get_boot_ns();
	h->pid = BPF_CORE_READ(t, tgid);
	h->tid = BPF_CORE_READ(t, pid);
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->uid = BPF_CORE_READ(t, cred, euid.val);
	h->gid = BPF_CORE_READ(t, cred, egid.val);
	h->loginuid = BPF_CORE_READ(t, loginuid.val);
	unsigned int level = BPF_CORE_READ(t, thread_pid, level);
	h->vpid = BPF_CORE_READ(t, group_leader, thread_pid, numbers[level & 31].nr);
	h->pidns = BPF_CORE_READ(t, thread_pid, numbers[level & 31].ns, ns.inum);
	h->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	h->cgroup_id = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	h->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	h->tty = 0;
	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	if (tty) {
		int major = BPF_CORE_READ(tty, driver, major);
		int minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
		h->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
	}
	h->ret = 0;
	BPF_CORE_READ_STR_INTO(&h->comm, t, comm);
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch_map, &cpu);
}

static __always_inline __u32 align4(__u32 off)
{
	return (off + 3) & ~3u;
}

/*
 * The helpers below are global functions (not static): the verifier checks each once, on its
 * own, instead of once per call site and loop iteration. They take plain scalars (kernel and user
 * addresses are read with bpf_probe_read_*), find the per-CPU scratch buffer themselves, and
 * return the new write offset (unchanged when there was nothing to write).
 */
#define GLOBAL __attribute__((noinline))
/* x & mask, kept by the compiler even when it can prove it useless (the verifier cannot) */
#define BOUND(x, mask)                                                                          \
	({                                                                                      \
		__u32 __v = (x);                                                                \
		asm volatile("%0 &= " #mask : "+r"(__v));                                        \
		__v;                                                                            \
	})

static __always_inline __u32 put_hdr(struct scratch *s, __u32 off, __u16 tag, __u32 len)
{
	*(__u16 *)&s->buf[BOUND(off, 0x3fff)] = tag;
	*(__u16 *)&s->buf[BOUND(off + 2, 0x3fff)] = len;
	return align4((off & OFF_MASK) + 4 + len);
}

/* Append blob `tag`: the names from dentry up to the root, leaf first, each NUL-terminated.
 * Mount points are crossed upwards through struct mount, as d_path does. */
GLOBAL __u32 put_path(__u32 off, __u16 tag, __u64 dentry, __u64 vfsmnt)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s || !dentry || !vfsmnt)
		return off;
	off &= OFF_MASK;
	struct dentry *d = (struct dentry *)dentry;
	struct mount *mnt = container_of((struct vfsmount *)vfsmnt, struct mount, mnt);
	/* as d_path: relative to the current task's root (a container's, a chroot's), else up to its
	 * mount namespace's root */
	struct task_struct *t = bpf_get_current_task_btf();
	struct path root;
	BPF_CORE_READ_INTO(&root, t, fs, root);
	__u32 start = off + 4;
	__u32 pos = start;
	for (int i = 0; i < MAX_COMPONENTS; i++) {
		if (d == root.dentry && (struct vfsmount *)&mnt->mnt == root.mnt)
			break;
		struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
		if (d == mnt_root) {
			struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
			if (!parent || parent == mnt)
				break;
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = parent;
			continue;
		}
		struct dentry *up = BPF_CORE_READ(d, d_parent);
		if (!up || up == d)
			break;
		if (pos - start > MAX_STR - 256)
			break;
		const unsigned char *name = BPF_CORE_READ(d, d_name.name);
		long n = bpf_probe_read_kernel_str(&s->buf[BOUND(pos, 0x7fff)], 256, name);
		if (n <= 0)
			break;
		pos += n;
		d = up;
	}
	__u32 len = pos - start;
	if (len > MAX_STR)
		return off;
	return put_hdr(s, off, tag, len);
}

/* kernfs_node's parent was renamed __parent in 6.15 */
struct kernfs_node___old {
	struct kernfs_node___old *parent;
};

static __always_inline __u64 kn_parent(__u64 kn)
{
	if (bpf_core_field_exists(struct kernfs_node, __parent))
		return (__u64)BPF_CORE_READ((struct kernfs_node *)kn, __parent);
	return (__u64)BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
}

/* The current task's cgroup path in the pids hierarchy (else memory, else the unified one), leaf first:
 * what /proc/<pid>/cgroup shows, for container attribution of processes gone before /proc is read. */
GLOBAL __u32 put_cgroup(__u32 off)
{
	struct scratch *s = get_scratch();
	if (!s || off > OFF_MASK)
		return off;
	off &= OFF_MASK;
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 kn = 0;
	int ids[2] = {bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id),
		      bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id)};
	for (int k = 0; k < 2 && !kn; k++) {
		int id = ids[k];
		if (id < 0 || id >= CGROUP_SUBSYS_COUNT)
			continue;
		struct cgroup_subsys_state *css = BPF_CORE_READ(t, cgroups, subsys[id & 15]);
		if (css)
			kn = (__u64)BPF_CORE_READ(css, cgroup, kn);
	}
	if (!kn)
		kn = (__u64)BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	__u32 start = off + 4;
	__u32 pos = start;
	for (int i = 0; i < MAX_COMPONENTS && kn; i++) {
		__u64 up = kn_parent(kn);
		if (!up)
			break; /* the hierarchy's root has no name in /proc/<pid>/cgroup */
		if (pos - start > MAX_STR - 256)
			break;
		const char *name = BPF_CORE_READ((struct kernfs_node *)kn, name);
		long n = bpf_probe_read_kernel_str(&s->buf[BOUND(pos, 0x7fff)], 256, name);
		if (n <= 0)
			break;
		pos += n;
		kn = up;
	}
	__u32 len = pos - start;
	if (len > MAX_STR)
		return off;
	return put_hdr(s, off, T_CGROUP, len);
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	if (fd < 0)
		return NULL;
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt)
		return NULL;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max)
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* The directory a relative path starts from: the working directory or the directory fd. */
GLOBAL __u32 put_dir(__u32 off, __u16 tag, long dirfd)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct task_struct *t = bpf_get_current_task_btf();
	if ((int)dirfd == AT_FDCWD) {
		struct path p;
		BPF_CORE_READ_INTO(&p, t, fs, pwd);
		return put_path(off, tag, (__u64)p.dentry, (__u64)p.mnt);
	}
	struct file *f = fd_file(t, (int)dirfd);
	if (!f)
		return off;
	struct path p;
	BPF_CORE_READ_INTO(&p, f, f_path);
	return put_path(off, tag, (__u64)p.dentry, (__u64)p.mnt);
}

/* ---- sockets --------------------------------------------------------------------------------- */

/* struct sock_info of socket fd `fd` (family, type, protocol, local and remote address). */
GLOBAL __u32 put_sock(__u32 off, __u16 tag, long fd)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s)
		return off;
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, fd);
	if (!f)
		return off;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return off;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return off;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return off;
	off &= OFF_MASK;
	struct sock_info si = {};
	si.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	si.type = BPF_CORE_READ(sk, sk_type);
	si.proto = BPF_CORE_READ(sk, sk_protocol);
	si.lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	si.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (si.family == 2) {
		__be32 la = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 ra = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(si.laddr, &la, 4);
		__builtin_memcpy(si.raddr, &ra, 4);
	} else if (si.family == 10) {
		BPF_CORE_READ_INTO(&si.laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&si.raddr, sk, __sk_common.skc_v6_daddr);
	}
	__builtin_memcpy(&s->buf[BOUND(off + 4, 0x3fff)], &si, sizeof(si));
	return put_hdr(s, off, tag, sizeof(si));
}

/* ---- user memory ----------------------------------------------------------------------------- */

GLOBAL __u32 put_user_str(__u32 off, __u16 tag, __u64 p)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s || !p)
		return off;
	off &= OFF_MASK;
	long n = bpf_probe_read_user_str(&s->buf[BOUND(off + 4, 0x3fff)], MAX_STR, (const void *)p);
	if (n <= 0)
		return off;
	return put_hdr(s, off, tag, n - 1); /* without the NUL */
}

GLOBAL __u32 put_user_mem(__u32 off, __u16 tag, __u64 p, __u32 len)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s || !p || len == 0)
		return off;
	off &= OFF_MASK;
	if (len > 127)
		len = 127;
	asm volatile("" : "+r"(len));
	len &= 0x7f;
	if (len == 0 || bpf_probe_read_user(&s->buf[BOUND(off + 4, 0x3fff)], len, (const void *)p) < 0)
		return off;
	return put_hdr(s, off, tag, len);
}

/* char *argv[] from user memory: the strings, NUL-separated, 4 KiB at most */
GLOBAL __u32 put_user_argv(__u32 off, __u64 argv)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s || !argv)
		return off;
	off &= OFF_MASK;
	__u32 start = off + 4;
	__u32 pos = start;
	for (int i = 0; i < MAX_ARGV; i++) {
		const char *arg = NULL;
		if (bpf_probe_read_user(&arg, sizeof(arg), (const void *)(argv + i * 8)) < 0 || !arg)
			break;
		__u32 used = pos - start;
		if (used >= MAX_STR - 256)
			break;
		long n = bpf_probe_read_user_str(&s->buf[BOUND(pos, 0x7fff)], 256, arg);
		if (n <= 0)
			break;
		pos += n;
	}
	__u32 len = pos - start;
	if (len == 0 || len > MAX_STR)
		return off;
	return put_hdr(s, off, T_ARGV, len);
}

/* The path of the current task's fd `fd` (blob `tag`, as put_path); nothing for a bad fd. */
GLOBAL __u32 put_fd_path(__u32 off, __u16 tag, long fd)
{
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, (int)fd);
	if (!f)
		return off;
	struct path p;
	BPF_CORE_READ_INTO(&p, f, f_path);
	return put_path(off, tag, (__u64)p.dentry, (__u64)p.mnt);
}

/* What the current task's fd `fd` (0-2) is: T_STDIO + fd (mode, fs magic, inode number), then its
 * path (T_STDIO_PATH + fd: not for pipes, sockets and anonymous inodes of their own file systems,
 * whose names user space makes) or its socket's ends (T_STDIO_SOCK + fd). Nothing when it is closed. */
GLOBAL __u32 put_stdio(__u32 off, __u32 fd)
{
	if (off > OFF_MASK || fd > 2)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s)
		return off;
	struct task_struct *t = bpf_get_current_task_btf();
	struct file *f = fd_file(t, fd);
	if (!f)
		return off;
	off &= OFF_MASK;
	struct stdio_info si = {};
	struct inode *ino = BPF_CORE_READ(f, f_inode);
	si.mode = BPF_CORE_READ(ino, i_mode);
	si.magic = BPF_CORE_READ(ino, i_sb, s_magic);
	si.ino = BPF_CORE_READ(ino, i_ino);
	__builtin_memcpy(&s->buf[BOUND(off + 4, 0x3fff)], &si, sizeof(si));
	off = put_hdr(s, off, T_STDIO + fd, sizeof(si));
	if ((si.mode & S_IFMT) == S_IFSOCK)
		return put_sock(off, T_STDIO_SOCK + fd, fd);
	if (si.magic == 0x50495045 /* PIPEFS_MAGIC */)
		return off;
	struct path p;
	BPF_CORE_READ_INTO(&p, f, f_path);
	return put_path(off, T_STDIO_PATH + fd, (__u64)p.dentry, (__u64)p.mnt);
}

/* The exec'd program's environment (mm->env_start..env_end of the current task): its first
 * MAX_STR - 1 bytes (T_ENV), and when it is longer its last ENV_TAIL bytes (T_ENV_TAIL), so that a
 * variable exported last is seen. The whole length goes to *whole. */
GLOBAL __u32 put_env(__u32 off, __u64 *whole)
{
	if (off > OFF_MASK || !whole)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s)
		return off;
	struct task_struct *t = bpf_get_current_task_btf();
	unsigned long es = BPF_CORE_READ(t, mm, env_start);
	unsigned long ee = BPF_CORE_READ(t, mm, env_end);
	__u64 total = ee > es ? ee - es : 0;
	*whole = total;
	if (!total)
		return off;
	off &= OFF_MASK;
	__u32 len = total > MAX_STR - 1 ? MAX_STR - 1 : total;
	if (bpf_probe_read_user(&s->buf[BOUND(off + 4, 0x3fff)], len & (MAX_STR - 1), (void *)es) < 0)
		return off;
	off = put_hdr(s, off, T_ENV, len);
	if (total <= MAX_STR - 1 || off > OFF_MASK)
		return off;
	__u64 rest = total - (MAX_STR - 1);
	__u32 tl = rest > ENV_TAIL ? ENV_TAIL : rest;
	off &= OFF_MASK;
	if (bpf_probe_read_user(&s->buf[BOUND(off + 4, 0x3fff)], tl & (ENV_TAIL * 2 - 1), (void *)(ee - tl)) < 0)
		return off;
	return put_hdr(s, off, T_ENV_TAIL, tl);
}

static __always_inline void submit(struct scratch *s, __u32 off)
{
	struct ev_hdr *h = (struct ev_hdr *)s->buf;
	if (off > BUF_SZ)
		return;
	h->len = off;
	/* switch 4: wake the reader only once this many bytes wait (0: on every record the reader
	 * has caught up with, libbpf's default); the reader also polls on a short timer */
	__u64 flags = 0;
	__u32 idx = 4;
	__u32 *thr = bpf_map_lookup_elem(&switches, &idx);
	if (thr && *thr) {
		/* wake once, when this record makes the backlog cross the threshold */
		__u64 before = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = (before < *thr && before + off + 8 >= *thr) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, s->buf, off & (BUF_SZ - 1), flags) < 0)
		count_drop(0);
}

/* ---- interest filter ------------------------------------------------------------------------- */

static __always_inline __u64 pick(struct inflight *in, __u8 aux)
{
	switch (aux) {
	case 0: return in->args[0];
	case 1: return in->args[1];
	case 2: return in->args[2];
	case 3: return in->args[3];
	case 4: return in->args[4];
	case 5: return in->args[5];
	}
	return 0;
}


static __always_inline int pf_bit(__u8 *map, __u32 bit)
{
	return map[(bit >> 3) & 8191] & (1 << (bit & 7));
}

/* Whether the user path at `upath` may matter to a rule in class `cls` (1), or to none (0). */
GLOBAL int pf_related(__u64 upath, __u32 cls)
{
	__u32 zero = 0;
	struct pf_scratch *sc = bpf_map_lookup_elem(&pf_scratch, &zero);
	struct pf_bits *bits = bpf_map_lookup_elem(&pf_bits, &zero);
	if (!sc || !bits || !upath)
		return 1;
	long n = bpf_probe_read_user_str(sc->fwd.data, PF_MAX, (const void *)upath);
	/* n counts the NUL; PF_MAX may be a longer path cut short */
	if (n <= 1 || n >= PF_MAX || sc->fwd.data[0] != '/')
		return 1;
	__u32 len = n - 1;
	__u32 w = 0;
	__u8 prev = 0;
	for (__u32 i = 0; i < PF_MAX; i++) {
		if (i > len)
			break;
		__u8 c = sc->fwd.data[i & (PF_MAX - 1)];
		if (i > 0 && pf_bit(bits->pairs, ((__u32)prev << 8) | c))
			return 1;
		if (i < len) {
			w = (w >> 8) | ((__u32)c << 24);
			if (i >= 3 && pf_bit(bits->quads, (w * PF_QUAD_MUL) >> 16))
				return 1;
			sc->rev.data[(len - 1 - i) & (PF_MAX - 1)] = c;
		}
		prev = c;
	}
	__u32 bit = 1u << (cls & 3);
	sc->fwd.prefixlen = (len + 1) * 8;
	__u32 *m = bpf_map_lookup_elem(&pf_fwd, &sc->fwd);
	if (m && (*m & bit))
		return 1;
	sc->rev.prefixlen = len * 8;
	m = bpf_map_lookup_elem(&pf_rev, &sc->rev);
	return m && (*m & bit);
}

/* The call's class for the interest filter: failed (2) or not (0), plus 1 unless it is an open
 * whose flags only read. */
static __always_inline __u32 pf_class(struct sc_spec *sp, struct inflight *in, long ret)
{
	__u32 cls = ret < 0 ? 2 : 0;
	__u64 flags = 0;
	__u8 src = sp->pf_flags;
	if (src == PF_HOW) {
		if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)in->args[2]) < 0)
			return cls + 1;
	} else if (src < 6) {
		flags = pick(in, src);
	} else {
		return cls + 1;
	}
	return cls + ((flags & PF_READ_EXCLUDED) ? 1 : 0);
}

/* ---- learning -------------------------------------------------------------------------------- */

static __always_inline void count_learn(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&learn_stats, &idx);
	if (v)
		*v += 1;
}

/* one 64-bit lane of MurmurHash3's x64 body, and its finalizer */
static __always_inline __u64 mix(__u64 h, __u64 v)
{
	v *= 0x87c37b91114253d5ULL;
	v = (v << 31) | (v >> 33);
	v *= 0x4cf5ad432745937fULL;
	h ^= v;
	h = (h << 27) | (h >> 37);
	return h * 5 + 0x52dce729;
}

static __always_inline __u64 fmix(__u64 h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h ? h : 1; /* 0 means "no key" */
}

/* The hash of `len` bytes at buf[start], 8 at a time (at most `words`), the offsets masked by
 * `mask` (the buffer's size - 8, or less) for the verifier. */
static __always_inline __u64 hash_words(__u8 *buf, __u32 start, __u32 len, __u32 words, __u32 mask, __u64 h)
{
	for (__u32 i = 0; i < words; i++) {
		__u32 o = i * 8;
		if (o >= len)
			break;
		__u64 w = *(__u64 *)&buf[(start + o) & mask];
		__u32 rest = len - o;
		if (rest < 8)
			w &= (1ULL << (rest * 8)) - 1;
		h = mix(h, w);
	}
	return fmix(h ^ len);
}

/* The hash of the blob at `at` of this CPU's record (its bytes: a path's components, argv). */
GLOBAL __u64 hash_blob(__u32 at, __u64 h)
{
	struct scratch *s = get_scratch();
	if (!s || at > OFF_MASK)
		return h;
	__u32 len = *(__u16 *)&s->buf[BOUND(at + 2, 0x3fff)];
	return hash_words(s->buf, at + 4, len, MAX_STR / 8, 0x7fff, h);
}

/* The key hash of a user path: its bytes, and for a relative one the directory it starts from
 * (the working directory or `dirfd`'s, by identity). 0: no key (unreadable, too long). */
GLOBAL __u64 hash_path(__u64 upath, long dirfd)
{
	__u32 zero = 0;
	struct learn_scratch *sc = bpf_map_lookup_elem(&learn_scratch, &zero);
	if (!sc || !upath)
		return 0;
	long n = bpf_probe_read_user_str(sc->buf, LEARN_MAX, (const void *)upath);
	if (n <= 0 || n >= LEARN_MAX)
		return 0;
	__u64 h = hash_words(sc->buf, 0, n, LEARN_MAX / 8, LEARN_MAX - 8, 0x9e3779b97f4a7c15ULL);
	if (sc->buf[0] == '/')
		return h;
	struct task_struct *t = bpf_get_current_task_btf();
	struct path p;
	if ((int)dirfd == AT_FDCWD) {
		BPF_CORE_READ_INTO(&p, t, fs, pwd);
	} else {
		struct file *f = fd_file(t, (int)dirfd);
		if (!f)
			return 0;
		BPF_CORE_READ_INTO(&p, f, f_path);
	}
	/* the directory's dentry and mount, and its inode: a dentry freed and reused for another
	 * directory is another key (unless that has the same inode number) */
	__u64 ino = BPF_CORE_READ(p.dentry, d_inode, i_ino);
	return fmix(mix(mix(mix(h, (__u64)p.dentry), (__u64)p.mnt), ino));
}

static __always_inline struct sock *sock_of(long fd)
{
	struct file *f = fd_file(bpf_get_current_task_btf(), fd);
	if (!f)
		return NULL;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return sock ? BPF_CORE_READ(sock, sk) : NULL;
}

/* An endpoint's key: family, port (host order) and protocol, then the address. */
static __always_inline __u64 net_hash(__u64 family, __u64 port, __u64 proto, __u64 lo, __u64 hi)
{
	return fmix(mix(mix(mix(0x2545f4914f6cdd1dULL, family | (port << 16) | (proto << 32)), lo), hi));
}

static __always_inline __u64 sock_proto(struct sock *sk)
{
	return sk ? ((__u64)BPF_CORE_READ(sk, sk_type) << 16) | BPF_CORE_READ(sk, sk_protocol) : 0xffffffff;
}

/* The key hash of socket fd `fd`'s endpoint: `peer` 0 its local address and port (listen), 1 its
 * peer's address and port (a connected socket), 2 its peer's address and its local port (accept). */
GLOBAL __u64 hash_sock(long fd, __u32 peer)
{
	struct sock *sk = sock_of(fd);
	if (!sk)
		return 0;
	__u64 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	__u64 proto = sock_proto(sk);
	__u64 port = peer == 1 ? bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport))
			       : BPF_CORE_READ(sk, __sk_common.skc_num);
	__u64 lo = 0, hi = 0;
	if (fam == 2) {
		lo = peer ? BPF_CORE_READ(sk, __sk_common.skc_daddr) : BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	} else if (fam == 10) {
		struct in6_addr a;
		if (peer)
			BPF_CORE_READ_INTO(&a, sk, __sk_common.skc_v6_daddr);
		else
			BPF_CORE_READ_INTO(&a, sk, __sk_common.skc_v6_rcv_saddr);
		__builtin_memcpy(&lo, &a.in6_u.u6_addr8[0], 8);
		__builtin_memcpy(&hi, &a.in6_u.u6_addr8[8], 8);
	}
	return net_hash(fam, port, proto, lo, hi);
}

/* The key hash of a user sockaddr (`len` bytes) used on socket fd `fd`: family, port, address
 * (a unix socket's path), the socket's protocol. No address: the connected socket's peer. */
GLOBAL __u64 hash_saddr(__u64 uaddr, __u64 len, long fd)
{
	if (!uaddr)
		return hash_sock(fd, 1);
	__u32 zero = 0;
	struct learn_scratch *sc = bpf_map_lookup_elem(&learn_scratch, &zero);
	if (!sc)
		return 0;
	if (len > 128)
		len = 128;
	asm volatile("" : "+r"(len));
	len &= 0xff;
	if (len < 2 || len > 128 || bpf_probe_read_user(sc->buf, len, (const void *)uaddr) < 0)
		return 0;
	__u64 proto = sock_proto(sock_of(fd));
	__u64 fam = *(__u16 *)&sc->buf[0];
	__u64 port = ((__u64)sc->buf[2] << 8) | sc->buf[3];
	if (fam == 2 && len >= 8)
		return net_hash(fam, port, proto, *(__u32 *)&sc->buf[4], 0);
	if (fam == 10 && len >= 24)
		return net_hash(fam, port, proto, *(__u64 *)&sc->buf[8], *(__u64 *)&sc->buf[16]);
	if (fam == 1) /* the path (an abstract name's too) */
		return fmix(mix(hash_words(sc->buf, 0, len, LEARN_MAX / 8, LEARN_MAX - 8, 0x27d4eb2f165667c5ULL), proto));
	return net_hash(fam, 0, proto, 0, 0);
}

/* Whether the key (cgroup, epoch, class, hash) is new: inserted then (LEARN_NEW), else LEARN_SEEN.
 * `op_cls`: the operation class (low 16 bits) and the call's class (high 16). */
GLOBAL __u32 learn_key(__u64 cgroup, __u64 hash, __u32 epoch, __u32 op_cls)
{
	struct seen_key k = {};
	k.cgroup = cgroup;
	k.hash = hash;
	k.epoch = epoch;
	k.op = op_cls & 0xffff;
	k.cls = op_cls >> 16;
	__u32 one = 1;
	/* an LRU update with BPF_NOEXIST takes a free node first: looked up before, as repeats are
	 * the common case. EEXIST: another CPU inserted it meanwhile */
	if (!bpf_map_lookup_elem(&seen, &k) && bpf_map_update_elem(&seen, &k, &one, BPF_NOEXIST) != -17) {
		count_learn(LS_NEW);
		return LEARN_NEW;
	}
	__u64 *n = bpf_map_lookup_elem(&learn_repeats, &cgroup);
	if (n)
		*n += 1;
	return LEARN_SEEN;
}

/* The first call of `cgroup` watched through a parent's watch (`flags`, `epoch`): recorded in
 * `inherited`, with its counters made (as user space makes a listed cgroup's); 1 if it was. */
GLOBAL __u32 adopt(__u64 cgroup, __u32 flags, __u32 epoch)
{
	if (bpf_map_lookup_elem(&inherited, &cgroup) || bpf_map_lookup_elem(&watched, &cgroup))
		return 0; /* made, or listed (user space made its counters) */
	struct watch w = {.flags = flags, .epoch = epoch};
	if (bpf_map_update_elem(&inherited, &cgroup, &w, BPF_NOEXIST))
		return 0; /* another CPU did */
	__u64 zero = 0;
	bpf_map_update_elem(&learn_repeats, &cgroup, &zero, BPF_NOEXIST);
	if (flags & WATCH_SYSCALLS) {
		struct sc_bits b = {};
		bpf_map_update_elem(&sc_used, &cgroup, &b, BPF_NOEXIST);
	}
	return 1;
}

/* The watch (for `want`) the current task's cgroup, not listed itself, gets from its nearest-to-
 * the-root watched ancestor; NULL: none (or no parent is watched for `want`: one array lookup). */
static __always_inline int parents_watched(__u32 want)
{
	__u32 idx = SW_PARENTS;
	__u32 *sw = bpf_map_lookup_elem(&switches, &idx);
	return sw && (*sw & want);
}

static __always_inline struct watch *parent_watch(__u64 cgroup, __u32 want)
{
	if (!parents_watched(want))
		return NULL;
	for (int level = 1; level <= PARENT_LEVELS; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);
		if (!anc || anc == cgroup)
			return NULL; /* the task's own cgroup: no ancestor further down */
		struct watch *w = bpf_map_lookup_elem(&watch_parents, &anc);
		if (w && (w->flags & want)) {
			adopt(cgroup, w->flags, w->epoch);
			return w;
		}
	}
	return NULL;
}

/* The watch of the current task's cgroup for learning (NULL: not watched for it): its own, else
 * a watched ancestor's. */
static __always_inline struct watch *learning_watch(__u64 *cgroup)
{
	if (!enabled(SW_LEARNING))
		return NULL;
	*cgroup = bpf_get_current_cgroup_id();
	struct watch *w = bpf_map_lookup_elem(&watched, cgroup);
	if (!w)
		return parent_watch(*cgroup, WATCH_LEARN);
	return w->flags & WATCH_LEARN ? w : NULL;
}

/* An open's access class in a learning key: O_ACCMODE, and 4 for __FMODE_EXEC */
static __always_inline __u32 open_access(struct sc_spec *sp, struct inflight *in)
{
	__u64 flags = 1; /* creat: write */
	__u8 src = sp->pf_flags;
	if (src == PF_HOW) {
		if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)in->args[2]) < 0)
			flags = 3;
	} else if (src < 6) {
		flags = pick(in, src);
	}
	return (flags & 3) | ((flags & 040) ? 4 : 0);
}

/* The call's key hash (0: none, so always new). */
static __always_inline __u64 call_hash(struct sc_spec *sp, struct inflight *in, long ret)
{
	switch (sp->lk) {
	case LK_OP:
		return 1;
	case LK_PATH: {
		__u8 slot = sp->pf_path;
		__u8 dir = slot < 6 ? sp->aux[slot] : 0xff;
		return hash_path(pick(in, slot), dir < 6 ? (long)pick(in, dir) : AT_FDCWD);
	}
	case LK_SADDR:
		return hash_saddr(pick(in, sp->lk_slot), pick(in, sp->lk_aux), (long)(int)in->args[0]);
	case LK_LOCAL:
		return hash_sock((long)(int)in->args[0], 0);
	case LK_PEER:
		return ret >= 0 ? hash_sock(ret, 2) : 1;
	case LK_ARGS:
		return fmix(mix(mix(mix(0x165667b19e3779f9ULL, in->args[0]), in->args[1] & 0xf), in->args[2]));
	}
	return 0;
}

/* Learning for a call: LEARN_UNWATCHED (no learning: the cgroup is not watched, or the syscall has
 * no key), LEARN_SEEN (its key was seen) or LEARN_NEW (its key is new, or it has none to tell). */
static __always_inline __u32 learn_call(struct sc_spec *sp, struct inflight *in, long ret)
{
	if (sp->lk == LK_NONE)
		return LEARN_UNWATCHED;
	__u64 cgroup = 0;
	struct watch *w = learning_watch(&cgroup);
	if (!w)
		return LEARN_UNWATCHED;
	__u32 epoch = w->epoch;
	__u32 cls = ret < 0 ? CLS_FAILED : 0;
	if (sp->lk == LK_PATH && sp->lk_aux == 1)
		cls |= open_access(sp, in);
	__u64 h = call_hash(sp, in, ret);
	if (!h) {
		count_learn(LS_UNKEYED);
		return LEARN_NEW;
	}
	return learn_key(cgroup, h, epoch, sp->lk_op | (cls << 16));
}

/* Learning for an exec (of the current task) whose executable's key hash is `key`: the key also
 * holds the arguments (the blob at `argv_at`, 0xffffffff: none) and the parent's executable. */
GLOBAL __u32 learn_exec(__u64 key, __u32 argv_at)
{
	__u64 cgroup = 0;
	struct watch *w = learning_watch(&cgroup);
	if (!w)
		return LEARN_UNWATCHED;
	struct task_struct *p = bpf_get_current_task_btf();
	__u32 epoch = w->epoch;
	if (argv_at != 0xffffffff)
		key = hash_blob(argv_at, key);
	struct inode *pexe = BPF_CORE_READ(p, real_parent, mm, exe_file, f_inode);
	if (pexe)
		key = fmix(mix(mix(key, BPF_CORE_READ(pexe, i_ino)), BPF_CORE_READ(pexe, i_sb, s_dev)));
	return learn_key(cgroup, key, epoch, OP_EXEC);
}

/* ---- the syscalls a watched cgroup makes ------------------------------------------------------ */

/* Syscall `nr` of the current task: its bit in its cgroup's bitmap, if it has one (in sys_enter,
 * while SW_SYSCALLS says some cgroup is watched for its syscalls: the others pay this one lookup) */
static __always_inline void mark_syscall(__u32 nr)
{
	__u64 cgroup = bpf_get_current_cgroup_id();
	struct sc_bits *b = bpf_map_lookup_elem(&sc_used, &cgroup);
	if (!b) { /* under a parent watched for its syscalls (and not listed): its bitmap is made */
		if (!parent_watch(cgroup, WATCH_SYSCALLS))
			return;
		b = bpf_map_lookup_elem(&sc_used, &cgroup);
	}
	if (!b || nr >= 512)
		return;
	__u64 bit = 1ULL << (nr & 63);
	__u64 *word = &b->w[BOUND(nr >> 6, 7)];
	if (!(*word & bit)) /* read-only once set: no cache line bouncing between CPUs */
		__sync_fetch_and_or(word, bit);
}

/* ---- syscalls -------------------------------------------------------------------------------- */

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u32 nr = id;
	if (enabled(SW_SYSCALLS))
		mark_syscall(nr);
	struct sc_spec *sp = bpf_map_lookup_elem(&specs, &nr);
	if (!sp || !(sp->flags & SPEC_ON))
		return 0;
	if (sp->flags & SPEC_LEARN_ONLY) {
		/* followed for learning only: for the cgroups watched for it */
		__u64 cgroup = 0;
		if (!learning_watch(&cgroup))
			return 0;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (is_ignored(pid_tgid >> 32))
		return 0;
	struct inflight in = {};
	in.nr = nr;
	in.args[0] = BPF_CORE_READ(regs, di);
	in.args[1] = BPF_CORE_READ(regs, si);
	in.args[2] = BPF_CORE_READ(regs, dx);
	in.args[3] = BPF_CORE_READ(regs, r10);
	in.args[4] = BPF_CORE_READ(regs, r8);
	in.args[5] = BPF_CORE_READ(regs, r9);
	__u32 tid = (__u32)pid_tgid;
	if (bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY) < 0)
		count_drop(1);
	return 0;
}

/* One argument of a syscall into the record, as its kind says. */
/* ctl: write offset (bits 0-15), argument slot (16-19), kind (20-23), aux (24-31) */
GLOBAL __u32 put_arg(__u32 ctl, __u64 v, __u64 auxv, long ret)
{
	__u32 off = ctl & 0xffff;
	__u32 i = (ctl >> 16) & 0xf;
	__u32 kind = (ctl >> 20) & 0xf;
	__u32 aux = ctl >> 24;
	if (off > OFF_MASK)
		return off; /* the record is full */
	struct scratch *s = get_scratch();
	if (!s)
		return off;
	__u16 si = i & 0xf;
	switch (kind) {
	case K_STR:
		return put_user_str(off, T_STR + si, v);
	case K_PATH: {
		__u32 o2 = put_user_str(off, T_STR + si, v);
		if (o2 == off)
			return off;
		char c = s->buf[BOUND(off + 4, 0x3fff)];
		if (c == '/')
			return o2;
		return put_dir(o2, T_DIR + si, aux < 6 ? (long)auxv : AT_FDCWD);
	}
	case K_SOCKADDR:
		if (aux < 6)
			return put_user_mem(off, T_SADDR + si, v, (__u32)auxv);
		return off;
	case K_SOCKADDR_OUT: {
		int len = 0;
		if (ret < 0 || aux >= 6 || !auxv || bpf_probe_read_user(&len, sizeof(len), (const void *)auxv) < 0)
			return off;
		return put_user_mem(off, T_SADDR + si, v, (__u32)len);
	}
	case K_SOCKFD:
		return put_sock(off, T_SOCK + si, (long)(int)v);
	case K_ARGV:
		return put_user_argv(off, v);
	case K_RETSOCK:
		if (ret >= 0)
			return put_sock(off, T_SOCK + 0xf, ret);
		return off;
	case K_FDPATH:
		if (aux < 6 && auxv)
			return off; /* a path is given: the fd is only its directory */
		return put_fd_path(off, T_DIR + si, (long)(int)v);
	case K_MEM:
		return put_user_mem(off, T_SADDR + si, v, aux);
	}
	return off;
}

#define PUT_ARG(i)                                                                                  \
	off = put_arg((off & 0xffff) | (i << 16) | ((sp->kind[i] & 0xf) << 20) | ((__u32)sp->aux[i] << 24), \
		      copy.args[i], pick(&copy, sp->aux[i]), ret)

/* Why the kernel drops a call (the index of its `filtered` counter), 0 to keep it, DROP_SILENT for
 * a call followed for learning only of a cgroup not watched (as if the syscall were off). */
#define DROP_SILENT 0xffffffff
static __always_inline __u32 drop_cause(struct sc_spec *sp, struct inflight *in, long ret, __u32 nr)
{
	if ((sp->flags & SPEC_DROP_FAILED) && ret < 0)
		return nr & 511;
	if (sp->pf_classes) {
		__u32 cls = pf_class(sp, in, ret);
		if (((sp->pf_classes >> cls) & 1) && !pf_related(pick(in, sp->pf_path), cls))
			return 512 + (nr & 511);
	}
	if (sp->flags & SPEC_LEARN_ONLY)
		return DROP_SILENT;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	if (!in)
		return 0;
	struct inflight copy = *in;
	bpf_map_delete_elem(&inflight, &tid);
	__u32 nr = copy.nr;
	struct sc_spec *sp = bpf_map_lookup_elem(&specs, &nr);
	if (!sp || !(sp->flags & SPEC_ON))
		return 0;
	if ((sp->flags & SPEC_FAIL_ONLY) && ret >= 0)
		return 0;
	__u32 learned = learn_call(sp, &copy, ret);
	if (learned != LEARN_NEW) {
		/* not new to a watched cgroup: the filters decide; what they drop of a repeat of a
		 * watched cgroup is counted as a learned repeat */
		__u32 why = drop_cause(sp, &copy, ret, nr);
		if (why == DROP_SILENT && learned != LEARN_SEEN)
			return 0;
		if (why) {
			count_filtered(learned == LEARN_SEEN ? LEARNED_BASE + (nr & 511) : why);
			if (learned == LEARN_SEEN)
				count_learn(LS_DROPPED);
			return 0;
		}
		if (learned == LEARN_SEEN)
			count_learn(LS_KEPT);
	}
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct ev_hdr *h = (struct ev_hdr *)s->buf;
	fill_hdr(h, t, EV_SYSCALL | (learned == LEARN_NEW ? HF_NOVEL : learned == LEARN_SEEN ? HF_SEEN : 0), nr);
	h->ret = ret;
	for (int i = 0; i < 6; i++)
		h->args[i] = copy.args[i];
	__u32 off = sizeof(*h);
	PUT_ARG(0);
	PUT_ARG(1);
	PUT_ARG(2);
	PUT_ARG(3);
	PUT_ARG(4);
	s = get_scratch();
	if (!s)
		return 0;
	submit(s, off & (BUF_SZ - 1));
	return 0;
}

/* ---- processes ------------------------------------------------------------------------------- */

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 old = old_pid;
	struct inflight *in = bpf_map_lookup_elem(&inflight, &old);
	__u16 nr = 0;
	if (in) {
		nr = in->nr;
		bpf_map_delete_elem(&inflight, &old);
	}
	if (!enabled(0))
		return 0;
	if (is_ignored(BPF_CORE_READ(p, tgid)))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct ev_hdr *h = (struct ev_hdr *)s->buf;
	fill_hdr(h, p, EV_EXEC, nr);
	h->args[0] = old_pid;
	h->args[2] = 0;
	h->args[3] = 0;
	__u32 off = sizeof(*h);
	/* filename as given to execve */
	const char *fn = BPF_CORE_READ(bprm, filename);
	long n = bpf_probe_read_kernel_str(&s->buf[BOUND(off + 4, 0x3fff)], MAX_STR, fn);
	if (n > 0) /* the blob's length without the NUL, and the next blob aligned after it */
		off = put_hdr(s, off, T_FILENAME, n - 1);
	/* the executable's path */
	struct path fp;
	BPF_CORE_READ_INTO(&fp, bprm, file, f_path);
	__u32 exe_at = off;
	off = put_path(off, T_EXE, (__u64)fp.dentry, (__u64)fp.mnt);
	__u64 key = off != exe_at ? hash_blob(exe_at, 0x51ed270b27e3f8a1ULL) : 0;
	/* argv from the new mm */
	unsigned long as = BPF_CORE_READ(p, mm, arg_start);
	unsigned long ae = BPF_CORE_READ(p, mm, arg_end);
	__u32 len = ae > as ? ae - as : 0;
	/* the whole argument area's length: user space knows a longer one was cut (args[1]), and
	 * one the kernel could not read (args[2] = 1) */
	h->args[1] = len;
	if (len > MAX_STR - 1)
		len = MAX_STR - 1;
	off &= OFF_MASK;
	__u32 argv_at = off;
	if (len && bpf_probe_read_user(&s->buf[BOUND(off + 4, 0x3fff)], len & (MAX_STR - 1), (void *)as) == 0) {
		*(__u16 *)&s->buf[BOUND(off, 0x3fff)] = T_ARGV;
		*(__u16 *)&s->buf[BOUND(off + 2, 0x3fff)] = len;
		off = align4(off + 4 + len);
	} else if (len) {
		h->args[2] = 1;
	}
	__u32 learned = key ? learn_exec(key, off != argv_at ? argv_at : 0xffffffff) : LEARN_UNWATCHED;
	h->kind |= learned == LEARN_NEW ? HF_NOVEL : learned == LEARN_SEEN ? HF_SEEN : 0;
	off = put_cgroup(off); /* current is the task that exec'd */
	if (enabled(3)) {
		struct path cwd;
		BPF_CORE_READ_INTO(&cwd, p, fs, pwd);
		off = put_path(off, T_CWD, (__u64)cwd.dentry, (__u64)cwd.mnt);
	}
	if (enabled(SW_STDIO)) {
		off = put_stdio(off, 0);
		off = put_stdio(off, 1);
		off = put_stdio(off, 2);
	}
	if (enabled(SW_ENV)) {
		__u64 whole = 0;
		off = put_env(off, &whole);
		s = get_scratch();
		if (!s)
			return 0;
		h = (struct ev_hdr *)s->buf;
		h->args[3] = whole; /* the environment's whole length: user space knows a cut one */
	}
	submit(s, off);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptid = BPF_CORE_READ(parent, pid);
	struct inflight *in = bpf_map_lookup_elem(&inflight, &ptid);
	__u16 nr = 0;
	__u64 flags = 0;
	if (in) {
		nr = in->nr;
		flags = in->args[0];
	}
	if (!enabled(1))
		return 0;
	/* new processes only, not threads */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;
	if (is_ignored(BPF_CORE_READ(parent, tgid)))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct ev_hdr *h = (struct ev_hdr *)s->buf;
	fill_hdr(h, child, EV_FORK, nr);
	h->ppid = BPF_CORE_READ(parent, tgid);
	h->args[0] = flags;
	h->args[1] = BPF_CORE_READ(parent, tgid);
	/* the parent's start: user space tells it from an earlier process with its pid */
	h->args[2] = BPF_CORE_READ(parent, group_leader, start_boottime);
	h->start_ns = BPF_CORE_READ(child, start_boottime);
	submit(s, sizeof(*h));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_exit, struct task_struct *p)
{
	__u32 tid = BPF_CORE_READ(p, pid);
	bpf_map_delete_elem(&inflight, &tid);
	if (!enabled(2))
		return 0;
	if (tid != BPF_CORE_READ(p, tgid))
		return 0;
	if (is_ignored(tid))
		return 0;
	struct scratch *s = get_scratch();
	if (!s)
		return 0;
	struct ev_hdr *h = (struct ev_hdr *)s->buf;
	fill_hdr(h, p, EV_EXIT, 0);
	h->args[0] = BPF_CORE_READ(p, exit_code);
	submit(s, sizeof(*h));
	return 0;
}
