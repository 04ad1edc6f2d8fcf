"""`stockade k8s scan` beside Checkov and `trivy config` on the same corpus, in one run.

The corpus is ../shared/data/k8s/kubesec-assets (with sockshop/) and the golden set
tests/k8s/peer_corpus, one flaw per resource beside a hardened reference. Each tool runs once as a
whole command, offline, one after the other (tests/k8s/peer_runs.py): Stockade must take at most a
tenth of Checkov's wall time, and on every check Stockade shares with a peer (tests/k8s/peer_map.py)
the two must fail the same resources, or the difference must be one peer_map.EXPLAINED lists
(docs/k8s-peers.md carries the same table); an explanation no difference needs any more fails too.
"""

from __future__ import annotations

import shutil
from fnmatch import fnmatchcase

import pytest
from peer_map import CHECKOV, EXPLAINED, PEERS, TRIVY
from peer_runs import (
    GOLDEN,
    Run,
    checkov_command,
    corpus,
    resources,
    run_checkov,
    run_stockade,
    run_trivy,
    shared_checks,
    unexplained,
)

import trees
from helpers import REPO, SHARED_DATA, need, need_file, trivy_binary
from stockade.k8s.catalogue import all_checks

KUBESEC = SHARED_DATA / "k8s" / "kubesec-assets"
#: the golden set's controllers: each carries a privileged container, every tool must say so
CONTROLLERS = (
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The three runs on one corpus, timed in this one run, Stockade first."""
    need(shutil.which("unshare"), "unshare (util-linux) runs the tools without a network")
    kubesec = need_file(KUBESEC)
    trivy = trivy_binary()
    checkov = checkov_command(trees.checkov_venv())
    tmp = tmp_path_factory.mktemp("peers")
    root = corpus(tmp / "corpus", kubesec)
    (tmp / "trivy-cache").mkdir()
    ours = run_stockade(root)
    return {
        "stockade": ours,
        "checkov": run_checkov(checkov, root),
        "trivy": run_trivy(trivy, root, tmp / "trivy-cache"),
    }


def test_stockade_is_ten_times_faster_than_checkov(runs: dict[str, Run]) -> None:
    ours = runs["stockade"]
    figures = ", ".join(
        f"{r.tool} {r.seconds:.2f} s wall ({r.seconds / ours.seconds:.1f}x), {r.cpu:.2f} s CPU"
        for r in runs.values()
    )
    print(figures)
    assert runs["checkov"].seconds >= 10 * ours.seconds, figures


def test_every_tool_reports_and_places_its_findings(runs: dict[str, Run]) -> None:
    for tool, run in runs.items():
        assert not run.unplaced, (tool, run.unplaced)
        # the control: each tool finds the privileged container of every controller kind
        privileged = {(f.kind, f.name) for f in run.failures if f.check == "privileged-container"}
        for kind in CONTROLLERS:
            assert (kind, f"privileged-{kind.lower()}") in privileged, (tool, kind)
        # and nothing on the hardened reference
        hardened = [f for f in run.failures if f.key == "golden/hardened.yaml::Deployment/hardened"]
        shared = shared_checks(tool, _catalogue()) if tool in PEERS else _catalogue()
        assert not [f for f in hardened if f.check in shared], (tool, hardened)


def _catalogue() -> set[str]:
    return {c.id for c in all_checks()}


def test_every_mapped_check_is_in_the_catalogue() -> None:
    missing = sorted((set(CHECKOV.values()) | set(TRIVY.values())) - _catalogue())
    assert not missing, f"peer_map names checks the catalogue lacks: {missing}"


@pytest.mark.parametrize("tool", sorted(PEERS))
def test_shared_failures_are_the_same_or_explained(runs: dict[str, Run], tool: str) -> None:
    ours, peer = runs["stockade"], runs[tool]
    left, stale = unexplained(ours, peer, shared_checks(tool, _catalogue()), EXPLAINED)
    agreed = peer.failures & ours.failures
    assert len(agreed) >= 500, f"{tool} and stockade agree on only {len(agreed)} failures"
    assert not left, f"{len(left)} differences with {tool} not in peer_map.EXPLAINED:\n" + "\n".join(left)
    assert not stale, f"peer_map.EXPLAINED entries no difference with {tool} needs: {stale}"


def test_docs_list_every_explained_difference() -> None:
    docs = " ".join((REPO / "docs" / "k8s-peers.md").read_text().split())
    for e in EXPLAINED:
        assert " ".join(e.why.split()) in docs, e


#: the golden resources that pass every check: the hardened reference file, a read-only role, and
#: a container with limits and no requests (Kubernetes sets the requests to the limits; Trivy's
#: KSV015/KSV016 fail it: a difference explained)
GOLDEN_CLEAN = (
    "golden/hardened.yaml::*",
    "golden/rbac.yaml::Role/pod-reader",
    "golden/images.yaml::Deployment/no-requests",
)


def test_stockade_fails_each_golden_flaw_and_passes_the_references(runs: dict[str, Run]) -> None:
    flagged = {f.key for f in runs["stockade"].failures}
    files = sorted(GOLDEN.glob("*.yaml"))
    assert len(files) >= 8
    for path in files:
        placed = resources(path)
        assert placed and all(p.kind and p.name for p in placed), path
        for p in placed:
            key = f"golden/{path.name}::{p.kind}/{p.name}"
            clean = any(fnmatchcase(key, c) for c in GOLDEN_CLEAN)
            assert (key in flagged) != clean, (
                f"{key}: {'a reference, failed' if clean else 'a flaw, not found'}"
            )
