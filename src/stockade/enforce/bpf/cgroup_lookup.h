// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
/*
 * What the enforcers' programs share: finding the current task's entry in a map keyed by cgroup
 * id: its own cgroup's, else its nearest ancestor's that has one (a task in a sub-cgroup of a
 * protected container is decided as the container).
 */
#ifndef STOCKADE_CGROUP_LOOKUP_H
#define STOCKADE_CGROUP_LOOKUP_H

#define MAX_CGROUP_LEVELS 16

/* the entry of `map` (a hash keyed by __u64 cgroup id) for the current task; its key in *cgid */
static __always_inline void *lookup_by_cgroup(void *map, __u64 *cgid)
{
	__u64 id = bpf_get_current_cgroup_id();
	void *v = bpf_map_lookup_elem(map, &id);
	if (v) {
		*cgid = id;
		return v;
	}
	void *found = 0;
	for (int level = 0; level < MAX_CGROUP_LEVELS; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);
		if (!anc)
			break;
		void *a = bpf_map_lookup_elem(map, &anc);
		if (a) {
			found = a;
			*cgid = anc;
		}
	}
	return found;
}

#endif
