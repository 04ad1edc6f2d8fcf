"""Every node item over a node's filesystem, in CIS order: control plane (1.x), etcd (2.x),
kubelet (4.x), then the container runtimes."""

from __future__ import annotations

from collections import Counter

from stockade.k8s.node.controlplane import check_control_plane
from stockade.k8s.node.kubelet import check_kubelet, find_kubelet
from stockade.k8s.node.reader import Flags, NodeFS
from stockade.k8s.node.result import NodeResult, cis_key
from stockade.k8s.node.runtimes import check_runtimes

__all__ = ["check_node", "summary"]


def check_node(fs: NodeFS, kubelet_flags: Flags | None = None) -> list[NodeResult]:
    """The verdict on every item for the node under `fs` (`kubelet_flags`: the kubelet's flags
    as given, instead of those found); unreadable files are in `fs.problems`."""
    results = (
        check_control_plane(fs) + check_kubelet(fs, find_kubelet(fs, kubelet_flags)) + check_runtimes(fs)
    )
    return sorted(results, key=lambda r: (cis_key(r.cis), r.id))


def summary(results: list[NodeResult]) -> dict[str, int]:
    """How many items have each status."""
    c = Counter(r.status for r in results)
    return {s: c.get(s, 0) for s in ("fail", "warn", "pass", "not-applicable")}
