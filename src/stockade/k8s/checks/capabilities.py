"""Linux capabilities: the PSS baseline and restricted rules, and the single capabilities that
matter most (SYS_ADMIN, NET_RAW and the other escalation paths)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import BASELINE_CAPABILITIES, added, dropped, pod_of, sc_path, windows
from stockade.k8s.objects import Container, K8sObject

_RESTRICTED = "pss:restricted:capabilities"

#: added capabilities that open a way out of the container (SYS_ADMIN and NET_RAW have own checks)
DANGEROUS: Final = frozenset(
    {"SYS_PTRACE", "SYS_MODULE", "NET_ADMIN", "BPF", "PERFMON", "DAC_READ_SEARCH", "SYS_RAWIO", "ALL"}
)


def _norm(cap: Any) -> str:
    """``cap_sys_admin`` -> ``SYS_ADMIN`` (for the non-PSS checks; PSS compares as written)."""
    s = str(cap).upper()
    return s[4:] if s.startswith("CAP_") else s


def _add_path(c: Container, i: int) -> tuple[str | int, ...]:
    return sc_path(c, "capabilities", "add", i)


@check(
    "capabilities-baseline",
    severity="HIGH",
    title="Capabilities added beyond the default set",
    description=(
        "Adding a capability outside the container runtime's default set (NET_RAW, SYS_ADMIN, "
        "SYS_PTRACE, ...) gives the container kernel powers that known escapes rely on."
    ),
    remediation=(
        "Add only AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, "
        "SETFCAP, SETGID, SETPCAP, SETUID or SYS_CHROOT, if any."
    ),
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n    add: [NET_BIND_SERVICE]\n",
    controls=("pss:baseline:capabilities",),
    nsa=True,
    cis=("5.2.9",),
)
def capabilities_baseline(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """capabilities.add entries outside the PSS baseline list, in every container list."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        for i, cap in enumerate(added(c)):
            if cap not in BASELINE_CAPABILITIES:
                yield Violation(f"container {c.name!r} adds capability {cap}", _add_path(c, i))


@check(
    "capabilities-drop-all",
    severity="MEDIUM",
    title="Container does not drop all capabilities",
    description=(
        "The runtime's default capability set (CHOWN, DAC_OVERRIDE, NET_RAW with some runtimes, "
        "...) is more than most programs need; the restricted profile drops ALL and adds back "
        "only NET_BIND_SERVICE."
    ),
    remediation='Set securityContext.capabilities.drop to ["ALL"] in every container.',
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n",
    controls=(_RESTRICTED,),
    nsa=True,
    cis=("5.2.10",),
)
def capabilities_drop_all(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers whose capabilities.drop lacks "ALL" (Windows pods are exempt)."""
    pod = pod_of(obj, ctx)
    if pod is None or windows(pod):
        return
    for c in pod.containers():
        if "ALL" not in dropped(c):
            where = sc_path(c, "capabilities", "drop") if "securityContext" in c.body else c.path
            yield Violation(f'container {c.name!r} must set capabilities.drop=["ALL"]', where)


@check(
    "capabilities-restricted",
    severity="MEDIUM",
    title="Container adds a capability other than NET_BIND_SERVICE",
    description=(
        "The restricted profile lets a container add back NET_BIND_SERVICE only (to bind ports "
        "below 1024); anything else widens what a compromised process can do to the kernel."
    ),
    remediation="Remove every capabilities.add entry but NET_BIND_SERVICE.",
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n    add: [NET_BIND_SERVICE]\n",
    controls=(_RESTRICTED,),
    nsa=True,
    cis=("5.2.9",),
)
def capabilities_restricted(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """capabilities.add entries other than NET_BIND_SERVICE (Windows pods are exempt)."""
    pod = pod_of(obj, ctx)
    if pod is None or windows(pod):
        return
    for c in pod.containers():
        for i, cap in enumerate(added(c)):
            if cap != "NET_BIND_SERVICE":
                yield Violation(f"container {c.name!r} adds capability {cap}", _add_path(c, i))


@check(
    "cap-sys-admin",
    severity="CRITICAL",
    title="Container adds CAP_SYS_ADMIN",
    description=(
        "SYS_ADMIN is nearly root: mount, cgroup release agents, namespaces, BPF on old kernels; "
        "most container escapes use it."
    ),
    remediation="Remove SYS_ADMIN from capabilities.add; grant the one narrow capability needed.",
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n",
    nsa=True,
    cis=("5.2.9",),
)
def cap_sys_admin(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """SYS_ADMIN (or CAP_SYS_ADMIN) in capabilities.add."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        for i, cap in enumerate(added(c)):
            if _norm(cap) == "SYS_ADMIN":
                yield Violation(f"container {c.name!r} adds SYS_ADMIN", _add_path(c, i))


@check(
    "cap-net-raw",
    severity="MEDIUM",
    title="Container keeps CAP_NET_RAW",
    description=(
        "NET_RAW, in the default set of several runtimes, lets a process forge packets: ARP and "
        "DNS spoofing of the pods on the same node."
    ),
    remediation='Drop NET_RAW (or "ALL") in capabilities.drop, and do not add it back.',
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n",
    nsa=True,
    cis=("5.2.8",),
)
def cap_net_raw(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers that add NET_RAW, or drop neither NET_RAW nor ALL."""
    pod = pod_of(obj, ctx)
    if pod is None or windows(pod):
        return
    for c in pod.containers():
        adds = [i for i, cap in enumerate(added(c)) if _norm(cap) in ("NET_RAW", "ALL")]
        if adds:
            yield Violation(f"container {c.name!r} adds NET_RAW", _add_path(c, adds[0]))
        elif not {"NET_RAW", "ALL"} & {_norm(cap) for cap in dropped(c)}:
            where = sc_path(c, "capabilities", "drop") if "securityContext" in c.body else c.path
            yield Violation(f"container {c.name!r} does not drop NET_RAW", where)


@check(
    "capabilities-dangerous",
    severity="HIGH",
    title="Container adds a dangerous capability",
    description=(
        "SYS_PTRACE, SYS_MODULE, NET_ADMIN, BPF, PERFMON, DAC_READ_SEARCH, SYS_RAWIO (or ALL) "
        "each give a known way to read other processes, load kernel code or leave the container."
    ),
    remediation="Remove the capability from capabilities.add.",
    fix="securityContext:\n  capabilities:\n    drop: [ALL]\n",
    nsa=True,
    cis=("5.2.9",),
)
def capabilities_dangerous(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """capabilities.add entries of the dangerous list."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        for i, cap in enumerate(added(c)):
            if _norm(cap) in DANGEROUS:
                yield Violation(f"container {c.name!r} adds {_norm(cap)}", _add_path(c, i))
