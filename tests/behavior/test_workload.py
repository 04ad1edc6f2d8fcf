"""Workload ids: one per unit of policy, shared by replicas."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.behavior.workload import (
    HOST,
    WorkloadRef,
    is_workload_id,
    owner_of_pod,
    parse_workload_id,
    workload_of_event,
)

#: Kubernetes' alphabet for generated name suffixes (k8s.io/apimachinery/pkg/util/rand)
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@pytest.mark.parametrize(
    ("pod", "labels", "want"),
    [
        ("web-7d9c8b6f5-x2k4p", {"pod-template-hash": "7d9c8b6f5"}, ("deployment", "web")),
        ("my-api-v2-6b7f9c4d8d-q9zxw", {"pod-template-hash": "6b7f9c4d8d"}, ("deployment", "my-api-v2")),
        (
            "db-0",
            {"controller-revision-hash": "db-5d4f", "statefulset.kubernetes.io/pod-name": "db-0"},
            ("statefulset", "db"),
        ),
        (
            "agent-x2k4p",
            {"controller-revision-hash": "6c8d", "pod-template-generation": "1"},
            ("daemonset", "agent"),
        ),
        ("migrate-x2k4p", {"batch.kubernetes.io/job-name": "migrate"}, ("job", "migrate")),
        ("backup-28934520-x2k4p", {"job-name": "backup-28934520"}, ("cronjob", "backup")),
        # no labels: the shape of the generated name
        ("web-7d9c8b6f5-x2k4p", None, ("deployment", "web")),
        ("backup-28934520-x2k4p", None, ("cronjob", "backup")),
        ("db-12", None, ("statefulset", "db")),
        ("agent-x2k4p", None, ("daemonset", "agent")),
        ("debug", None, ("pod", "debug")),
        ("nginx-debug", None, ("pod", "nginx-debug")),  # "debug" uses letters k8s never generates
    ],
)
def test_owner_of_pod(pod: str, labels: dict[str, str] | None, want: tuple[str, str]) -> None:
    assert owner_of_pod(pod, labels) == want


def k8s(pod: str, ns: str = "shop", **more: Any) -> dict[str, Any]:
    return {"container.id": "3ad7b26ded6d", "k8s.ns.name": ns, "k8s.pod.name": pod, **more}


@pytest.mark.parametrize(
    ("data", "want"),
    [
        ({}, WorkloadRef(HOST, "host")),
        ({"container.id": "host"}, WorkloadRef(HOST, "host")),
        ({"container.id": ""}, WorkloadRef(HOST, "host")),
        (
            k8s("web-7d9c8b6f5-x2k4p"),
            WorkloadRef("k8s/shop/deployment/web", "k8s", "shop", "deployment", "web"),
        ),
        (
            k8s(
                "db-0",
                container__labels={
                    "controller-revision-hash": "x",
                    "statefulset.kubernetes.io/pod-name": "db-0",
                },
            ),
            WorkloadRef("k8s/shop/statefulset/db", "k8s", "shop", "statefulset", "db"),
        ),
        (
            {"container.id": "c1", "container.image.repository": "localhost/web", "container.name": "web-2"},
            WorkloadRef("container/localhost/web/web", "container", image_repository="localhost/web"),
        ),
        (
            {"container.id": "c1", "container.image.repository": "redis", "container.name": "proj_cache_1"},
            WorkloadRef("container/redis/proj_cache", "container", image_repository="redis"),
        ),
        (
            {
                "container.id": "c1",
                "container.image": "docker.io/library/nginx:1.27",
                "container.name": "whatever",
                "container.labels": {
                    "com.docker.compose.project": "shop",
                    "com.docker.compose.service": "front",
                },
            },
            WorkloadRef(
                "container/docker.io/library/nginx:1.27/shop-front",
                "container",
                image_repository="docker.io/library/nginx:1.27",
            ),
        ),
        (
            {"container.id": "c1", "container.image.repository": "alpine"},
            WorkloadRef("container/alpine", "container", image_repository="alpine"),
        ),
        ({"container.id": "c1"}, WorkloadRef("container/unknown", "container", image_repository="unknown")),
    ],
)
def test_workload_of_event(data: dict[str, Any], want: WorkloadRef) -> None:
    got = workload_of_event(data)
    assert got == want
    assert is_workload_id(got.id)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("host", True),
        ("k8s/shop/deployment/web", True),
        ("container/alpine", True),
        ("container/docker.io/library/nginx/web", True),
        ("k8s/shop/web", False),
        ("container/", False),
        ("container//web", False),
        ("hosts", False),
        ("vm/x/y", False),
        ("", False),
    ],
)
def test_is_workload_id(text: str, want: bool) -> None:
    assert is_workload_id(text) is want


_name = st.from_regex(r"[a-z][a-z0-9]{0,8}(-[a-z][a-z0-9]{0,6}){0,2}", fullmatch=True)
_rand = st.text(K8S_ALPHABET, min_size=5, max_size=5)


@given(_name, st.text(K8S_ALPHABET, min_size=6, max_size=10), st.lists(_rand, min_size=2, max_size=4))
def test_replicas_of_a_deployment_share_one_workload(name: str, rs_hash: str, suffixes: list[str]) -> None:
    ids = {workload_of_event(k8s(f"{name}-{rs_hash}-{s}")).id for s in suffixes}
    with_labels = {
        workload_of_event(k8s(f"{name}-{rs_hash}-{s}", container__labels={"pod-template-hash": rs_hash})).id
        for s in suffixes
    }
    assert ids == with_labels == {f"k8s/shop/deployment/{name}"}


@given(_name, st.lists(st.integers(0, 99), min_size=2, max_size=4), st.sampled_from(["-", "_", "."]))
def test_replicas_of_a_plain_container_share_one_workload(name: str, numbers: list[int], sep: str) -> None:
    ids = {
        workload_of_event(
            {
                "container.id": f"c{n}",
                "container.image.repository": "localhost/app",
                "container.name": f"{name}{sep}{n}",
            }
        ).id
        for n in numbers
    }
    assert ids == {f"container/localhost/app/{name}"}


def test_parse_workload_id_gives_the_parts() -> None:
    assert parse_workload_id("k8s/shop/deployment/web") == WorkloadRef(
        "k8s/shop/deployment/web", "k8s", "shop", "deployment", "web"
    )
    assert parse_workload_id("container/docker.io/library/nginx/web") == WorkloadRef(
        "container/docker.io/library/nginx/web",
        "container",
        image_repository="docker.io/library/nginx",
        name="web",
    )
    assert parse_workload_id("container/alpine") == WorkloadRef(
        "container/alpine", "container", image_repository="alpine"
    )
    assert parse_workload_id(HOST) == WorkloadRef(HOST, "host")
    # an owner kind Kubernetes has not, or a part too many: not a workload id
    assert parse_workload_id("k8s/shop/replicaset/web") is None
    assert parse_workload_id("k8s/shop/deployment/web/x") is None
