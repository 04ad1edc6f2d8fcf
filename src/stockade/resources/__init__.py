"""Resource behaviour: per-container CPU, memory, pids, open files and network, sampled from
cgroups and /proc (:mod:`~stockade.resources.sampler`), a learned baseline per workload
(:mod:`~stockade.resources.baseline`), sustained deviations (:mod:`~stockade.resources.detector`)
and their alerts (:mod:`~stockade.resources.alerts`), held together by
:mod:`~stockade.resources.watch`. The runtime drives it (:mod:`stockade.runtime.resources`);
docs/resources.md says what users see.
"""
