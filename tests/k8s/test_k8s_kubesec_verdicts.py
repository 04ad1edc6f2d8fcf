"""The labelled manifests of kubesec (../shared/data/k8s/kubesec-assets) and what our checks must
say of each: which checks fail and which hardening checks pass. ``score-N`` in a name is kubesec's
score (0: a critical problem or no hardening; N > 0: that many hardening points), so a score-0
file fails the check for its problem and a score-N file passes the checks for its hardening.

Every file of the directory has a verdict (a new file without one fails the test). Files that are
not Kubernetes objects (empty, a form prefix before the YAML, no apiVersion) are NOT_K8S: the
loader reports them (helper B's part); here they must at least not be mistaken for objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import SHARED_DATA, need_file
from stockade.k8s.catalogue import Context, all_checks, evaluate
from stockade.k8s.objects import K8sObject

ASSETS = SHARED_DATA / "k8s" / "kubesec-assets"


@dataclass(frozen=True)
class Verdict:
    """The checks that must fail on the file, and those that must pass on every object of it
    (``passes=ALL``: no check may fail)."""

    fails: frozenset[str]
    passes: frozenset[str]


ALL = frozenset({"*"})
NOT_K8S = Verdict(frozenset(), frozenset())


def v(fails: Iterable[str] = (), passes: Iterable[str] = ()) -> Verdict:
    """A verdict from two lists of check ids."""
    return Verdict(frozenset(fails), frozenset(passes))


NO_HARDENING = (
    "run-as-non-root",
    "allow-privilege-escalation",
    "capabilities-drop-all",
    "seccomp-profile-missing",
)
SOCKSHOP_APP = v(
    fails=("capabilities-drop-all", "allow-privilege-escalation", "seccomp-profile-missing"),
    passes=(
        "run-as-non-root", "run-as-user-root", "run-as-high-uid", "read-only-root-filesystem",
        "cap-net-raw", "capabilities-restricted", "capabilities-baseline", "cpu-limits",
        "memory-limits", "liveness-probe", "readiness-probe", "privileged-container",
        "default-namespace",
    ),
)  # fmt: skip
SOCKSHOP_DB = v(
    fails=("capabilities-restricted", "run-as-non-root"),
    passes=("capabilities-baseline", "cap-net-raw", "read-only-root-filesystem", "cap-sys-admin"),
)
APPARMOR_UNCONFINED = v(fails=("apparmor-profile",), passes=("privileged-container",))
SECCOMP_UNCONFINED = v(fails=("seccomp-unconfined", "seccomp-profile-missing"), passes=("apparmor-profile",))
DOCKER_SOCKET = v(
    fails=(
        "runtime-socket-mount",
        "host-path-volume",
        "writable-host-path",
        "sensitive-host-path",
        "volume-types",
    ),
    passes=("privileged-container", "host-network", "host-pid"),
)

VERDICTS: dict[str, Verdict] = {
    "allowPrivilegeEscalation.yaml": v(
        fails=("allow-privilege-escalation", "host-path-volume", "writable-host-path", "volume-types"),
        passes=(
            "privileged-container",
            "default-namespace",
            "default-service-account",
            "sensitive-host-path",
            "runtime-socket-mount",
            "secrets-in-env",
            "image-tag-latest",
        ),
    ),
    "bug-dump-2.json": v(
        fails=("default-namespace", "default-service-account", "run-as-non-root"),
        passes=("privileged-container", "host-network", "host-path-volume", "cap-sys-admin"),
    ),
    "critical-double-multiple.yml": v(
        fails=("privileged-container", "allow-privilege-escalation"),
        passes=("host-network", "image-tag-latest"),
    ),
    "critical-double.yml": v(
        fails=("privileged-container", "allow-privilege-escalation"),
        passes=("host-network", "image-tag-latest"),
    ),
    "empty-file": NOT_K8S,
    "empty-json-file": NOT_K8S,
    "form-prefix-file.json": NOT_K8S,
    "form-prefix-file.yml": NOT_K8S,
    "form-prefix-not-file.json": NOT_K8S,
    "form-prefix-not-file.yml": NOT_K8S,
    "invalid-input-pod-dump.json": NOT_K8S,  # api_version, not apiVersion
    # schema-invalid (hostNetwork: "1"): not true, so not host networking; drop ALL is honoured
    "invalid-schema.yml": v(
        fails=("run-as-non-root",), passes=("host-network", "capabilities-drop-all", "cap-net-raw")
    ),
    "invalid-type.yml": v(passes=ALL),  # kind Deployment2: no check applies
    "multi.yml": v(
        fails=(
            "host-network",
            "host-pid",
            "host-path-volume",
            "writable-host-path",
            "sensitive-host-path",
            "volume-types",
            "memory-limits",
        ),
        passes=("privileged-container", "runtime-socket-mount", "psp-permissive", "host-ipc"),
    ),
    "score-0-cap-chown.yml": v(
        fails=("capabilities-restricted",),
        passes=("capabilities-baseline", "cap-sys-admin", "capabilities-dangerous"),
    ),
    "score-0-cap-sys-admin-and-cap-chown.yml": v(
        fails=("cap-sys-admin", "capabilities-baseline", "capabilities-restricted"),
        passes=("privileged-container",),
    ),
    "score-0-cap-sys-admin.yml": v(
        fails=("cap-sys-admin", "capabilities-baseline", "capabilities-restricted"),
        passes=("privileged-container",),
    ),
    "score-0-daemonset-host-network.yml": v(fails=("host-network",), passes=("host-pid", "host-ipc")),
    "score-0-daemonset-host-pid.yml": v(fails=("host-pid",), passes=("host-network", "host-ipc")),
    "score-0-daemonset-mount-docker-socket.yml": DOCKER_SOCKET,
    "score-0-daemonset-securitycontext-privileged.yml": v(
        fails=(
            "privileged-container",
            "host-network",
            "host-pid",
            "runtime-socket-mount",
            "sensitive-host-path",
            "writable-host-path",
            "secrets-in-env",
        ),
        passes=(
            "cpu-limits",
            "memory-limits",
            "cpu-requests",
            "memory-requests",
            "image-pull-policy",
            "default-service-account",
        ),
    ),
    "score-0-daemonset-volume-host-docker-socket.yml": DOCKER_SOCKET,
    # no AppArmor setting is allowed by the baseline; kubesec's 0 is the missing hardening
    "score-0-dep-apparmor-empty-securitycontext.yml": v(fails=NO_HARDENING, passes=("apparmor-profile",)),
    "score-0-dep-apparmor-unconfined-container.yml": APPARMOR_UNCONFINED,
    "score-0-dep-apparmor-unconfined-ephemeralcontainer.yml": APPARMOR_UNCONFINED,
    "score-0-dep-apparmor-unconfined-initcontainer.yml": APPARMOR_UNCONFINED,
    "score-0-dep-apparmor-unconfined-spec-securitycontext.yml": APPARMOR_UNCONFINED,
    "score-0-dep-seccomp-empty-securitycontext.yml": v(
        fails=("seccomp-profile-missing",), passes=("seccomp-unconfined",)
    ),
    "score-0-dep-seccomp-unconfined-container.yml": SECCOMP_UNCONFINED,
    "score-0-dep-seccomp-unconfined-ephemeralcontainer.yml": SECCOMP_UNCONFINED,
    "score-0-dep-seccomp-unconfined-initcontainer.yml": SECCOMP_UNCONFINED,
    "score-0-dep-seccomp-unconfined-spec-securitycontext.yml": SECCOMP_UNCONFINED,
    "score-0-podsecuritypolicy-permissive.yml": v(fails=("psp-permissive",)),
    "score-0-statefulset-no-sec.yml": v(
        fails=(*NO_HARDENING, "read-only-root-filesystem"),
        passes=("privileged-container", "host-path-volume"),
    ),
    "score-1-cap-drop-all.yml": v(
        fails=("run-as-non-root",), passes=("capabilities-drop-all", "cap-net-raw", "capabilities-restricted")
    ),
    "score-1-daemonset-default.yml": v(
        fails=("host-path-volume", "writable-host-path"),
        passes=(
            "memory-limits",
            "memory-requests",
            "cpu-requests",
            "runtime-socket-mount",
            "privileged-container",
        ),
    ),
    "score-1-dep-apparmor-nonunconfined-container.yml": v(fails=NO_HARDENING, passes=("apparmor-profile",)),
    "score-1-dep-apparmor-nonunconfined-ephemeralcontainer.yml": v(passes=("apparmor-profile",)),
    "score-1-dep-apparmor-nonunconfined-initcontainer.yml": v(passes=("apparmor-profile",)),
    "score-1-dep-apparmor-nonunconfined-spec-securitycontext.yml": v(passes=("apparmor-profile",)),
    "score-1-dep-default.yml": v(fails=("seccomp-profile-missing",), passes=("run-as-non-root",)),
    "score-1-dep-empty-security-context.yml": v(fails=NO_HARDENING, passes=("privileged-container",)),
    "score-1-dep-invalid-security-context.yml": v(fails=NO_HARDENING, passes=("privileged-container",)),
    "score-1-dep-podseccon-run-as-group-1.yml": v(passes=("run-as-group-root",)),
    "score-1-dep-podseccon-run-as-group-10001.yml": v(passes=("run-as-group-root",)),
    "score-1-dep-podseccon-run-as-non-root.yml": v(passes=("run-as-non-root",)),
    "score-1-dep-podseccon-run-as-user-1.yml": v(fails=("run-as-high-uid",), passes=("run-as-user-root",)),
    "score-1-dep-podseccon-run-as-user-10001.yml": v(passes=("run-as-high-uid", "run-as-user-root")),
    "score-1-dep-resource-limit-cpu.yml": v(fails=("memory-limits",), passes=("cpu-limits", "cpu-requests")),
    "score-1-dep-resource-limit-memory.yml": v(
        fails=("cpu-limits",), passes=("memory-limits", "memory-requests")
    ),
    "score-1-dep-ro-root-fs.yml": v(fails=("run-as-non-root",), passes=("read-only-root-filesystem",)),
    "score-1-dep-seccomp-nonunconfined-container.yml": v(
        passes=("seccomp-unconfined", "seccomp-profile-missing")
    ),
    # the profile is on the ephemeral or init container only: the main container still lacks one
    "score-1-dep-seccomp-nonunconfined-ephemeralcontainer.yml": v(
        fails=("seccomp-profile-missing",), passes=("seccomp-unconfined",)
    ),
    "score-1-dep-seccomp-nonunconfined-initcontainer.yml": v(
        fails=("seccomp-profile-missing",), passes=("seccomp-unconfined",)
    ),
    "score-1-dep-seccomp-nonunconfined-spec-securitycontext.yml": v(
        passes=("seccomp-unconfined", "seccomp-profile-missing")
    ),
    "score-1-dep-seccon-run-as-group-1.yml": v(passes=("run-as-group-root",)),
    "score-1-dep-seccon-run-as-group-10001.yml": v(passes=("run-as-group-root",)),
    "score-1-dep-seccon-run-as-non-root.yml": v(passes=("run-as-non-root",)),
    "score-1-dep-seccon-run-as-user-1.yml": v(fails=("run-as-high-uid",), passes=("run-as-user-root",)),
    "score-1-dep-seccon-run-as-user-10001.yml": v(passes=("run-as-high-uid", "run-as-user-root")),
    "score-1-pod-automount-sa-set-to-false.yml": v(passes=("automount-service-account-token",)),
    "score-1-pod-automountservicetoken.yml": v(
        passes=("automount-service-account-token", "default-service-account")
    ),
    "score-1-pod-default.yml": v(fails=("run-as-non-root",), passes=("read-only-root-filesystem",)),
    # a user-namespaced pod: runAsNonRoot and runAsUser are relaxed (PSS v1.35), its UIDs mapped
    "score-1-pod-hostUsers-set-to-false.yml": v(
        fails=("seccomp-profile-missing",), passes=("run-as-non-root", "run-as-user-root", "run-as-high-uid")
    ),
    "score-1-prod-dump.yaml": v(
        fails=("privileged-container", "capabilities-dangerous", "capabilities-baseline"),
        passes=("host-network", "host-path-volume", "run-as-user-root"),
    ),
    "score-1-statefulset-default.yml": v(fails=("run-as-non-root",), passes=("read-only-root-filesystem",)),
    "score-1-statefulset-novolumeclaimtemplate.yml": v(
        fails=NO_HARDENING, passes=("host-path-volume", "volume-types")
    ),
    "score-1-statefulset-volumeclaimtemplate.yml": v(
        fails=NO_HARDENING, passes=("host-path-volume", "volume-types")
    ),
    "score-2-dep-serviceaccount.yml": v(
        fails=("automount-service-account-token",), passes=("default-service-account",)
    ),
    "score-2-pod-serviceaccount.yml": v(
        passes=("default-service-account", "automount-service-account-token")
    ),
    "score-5-pod-serviceaccount.yml": v(
        passes=(
            "default-service-account",
            "automount-service-account-token",
            "run-as-non-root",
            "read-only-root-filesystem",
        )
    ),
    "sockshop/carts-db-dep.yaml": SOCKSHOP_DB,
    "sockshop/carts-dep.yaml": SOCKSHOP_APP,
    "sockshop/catalogue-db-dep.yaml": v(
        fails=("secrets-in-env", "run-as-non-root"), passes=("privileged-container",)
    ),
    "sockshop/catalogue-dep.yaml": SOCKSHOP_APP,
    "sockshop/front-end-dep.yaml": SOCKSHOP_APP,
    "sockshop/loadtest-dep.yaml": v(fails=("run-as-non-root",), passes=("default-namespace",)),
    "sockshop/orders-db-dep.yaml": SOCKSHOP_DB,
    "sockshop/orders-dep.yaml": SOCKSHOP_APP,
    "sockshop/payment-dep.yaml": SOCKSHOP_APP,
    "sockshop/queue-master-dep.yaml": v(
        fails=("run-as-non-root", "read-only-root-filesystem"), passes=("cpu-limits", "liveness-probe")
    ),
    "sockshop/rabbitmq-dep.yaml": SOCKSHOP_DB,
    "sockshop/session-db-dep.yaml": SOCKSHOP_DB,
    "sockshop/shipping-dep.yaml": SOCKSHOP_APP,
    "sockshop/user-db-dep.yaml": SOCKSHOP_DB,
    "sockshop/user-dep.yaml": SOCKSHOP_APP,
    # an istio-injected pod dump: the core-dump init container is privileged, istio-init adds NET_ADMIN
    "very-long-file": v(
        fails=("privileged-container", "capabilities-dangerous", "capabilities-baseline"),
        passes=("host-network", "host-path-volume", "run-as-user-root"),
    ),
    # named for DaemonSet/StatefulSet but Deployments without hardening
    "versioned/score-0-daemonset-v1.11.yml": v(fails=NO_HARDENING, passes=("privileged-container",)),
    "versioned/score-0-statefulset-v1.11.yml": v(fails=NO_HARDENING, passes=("privileged-container",)),
}


def _files() -> list[str]:
    need_file(ASSETS)
    return sorted(str(p.relative_to(ASSETS)) for p in ASSETS.rglob("*") if p.is_file())


def _objects(path: Path) -> list[K8sObject] | None:
    """The Kubernetes objects of a file; None when it is not Kubernetes YAML (broken, empty, or a
    document without apiVersion and kind)."""
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError:
        return None
    if not docs or not all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs):
        return None
    return [K8sObject(d, file=str(path)) for d in docs]


def test_every_file_has_a_verdict() -> None:
    files = _files()
    assert set(files) == set(VERDICTS), (set(files) - set(VERDICTS), set(VERDICTS) - set(files))
    known = {c.id for c in all_checks()}
    for name, verdict in VERDICTS.items():
        assert (verdict.fails | verdict.passes) - ALL <= known, name


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_kubesec_verdict(name: str) -> None:
    need_file(ASSETS)
    verdict = VERDICTS[name]
    objects = _objects(ASSETS / name)
    if verdict is NOT_K8S:
        assert objects is None, name
        return
    assert objects is not None, name
    ctx = Context(objects)
    failed = {f.check for f in evaluate(objects, context=ctx)}
    assert not ctx.errors, ctx.errors
    assert verdict.fails <= failed, (name, verdict.fails - failed)
    if verdict.passes == ALL:
        assert failed == set(), (name, failed)
    else:
        assert not (verdict.passes & failed), (name, verdict.passes & failed)
