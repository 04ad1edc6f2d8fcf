"""WorkloadPolicy -> KubeArmorPolicy (``security.kubearmor.com/v1``).

The workload: a Kubernetes workload is selected by its pods' labels (option `labels`; the id does
not carry them, the default is ``app: <owner>``) in its namespace; a plain container by
``kubearmor.io/container.name`` (KubeArmor's non-Kubernetes mode); ``host`` gives a
KubeArmorHostPolicy whose ``nodeSelector`` is `labels` (default every node:
``kubearmor.io/hostname: "*"``).

How ``spec.action`` maps (KubeArmor's own model: an ``Allow`` rule puts the workload's file,
network or capability operations into allow-list mode, where what no rule allows gets the
*default posture*, a KubeArmor setting outside the policy):

* ``block`` / ``audit``: the policy's allow rules become ``action: Allow`` items, its block and
  audit rules ``Block`` / ``Audit`` items; what no rule allows gets the default posture, which must
  be set to match: ``kubectl annotate ns <ns> kubearmor-file-posture=block
  kubearmor-network-posture=block`` (``audit`` for ``spec.action: audit``; plain containers:
  ``defaultFilePosture`` / ``defaultNetworkPosture`` in KubeArmor's configuration). A section with
  no allow rule at all gets an explicit catch-all item with ``spec.action`` instead (``dir: /``
  recursive for processes and files; ``tcp`` and ``udp`` for the network).
* ``allow``: only block and audit rules are exported (an allow rule would switch KubeArmor to
  allow-list mode and deny what the policy allows).

Rules map to matches: an exact path to ``matchPaths``, ``/dir/*`` to ``matchDirectories``,
``/dir/**`` to ``matchDirectories`` with ``recursive: true``; a wildcard inside a component
(``/tmp/tmp.*``) is widened to its directory (a warning says so). File access ``[read]`` is
``readOnly: true`` on an allow item; on a block or audit item ``readOnly: true`` blocks writes only
(KubeArmor's meaning), so ``[write]`` maps to it; ``exec`` access is a process item. A process
rule's `parent` is ``fromSource`` (an exact path only); its `args` cannot be expressed.
KubeArmor has no exceptions: an allow rule's ``except`` glob becomes an item with
``spec.action`` (``Block``, which wins over the rule's ``Allow`` in KubeArmor as it does in
AppArmor), with a warning; when that item cannot be exact (a wildcard inside a component, as in
``/**/*.key``) or would also deny what another allow rule allows, the exception is left out (the
rule allows those paths in KubeArmor) and the warning says so. A block or audit rule's exceptions
cannot be expressed: it blocks or audits them too (a warning).
Network rules are protocols only (``matchProtocols``): peers, ports and directions are dropped
(widened, with a warning); a block or audit rule towards a DNS name is a ``matchDNSQueries`` item.
Privileged operations map to capabilities, always as ``Block``/``Audit`` items for the
capabilities the policy does not allow (allow-listing capabilities would also deny the ones
Stockade does not govern, such as ``chown`` or ``net_bind_service``): setuid, setgid -> same;
mount, umount, unshare, setns, bpf -> ``sys_admin`` (KubeArmor's list has no ``bpf``); ptrace ->
``sys_ptrace``; module_load -> ``sys_module``; chroot -> ``sys_chroot``; raw_socket -> ``net_raw``
(and protocol ``raw``); memfd_create needs no capability and cannot be expressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stockade.behavior.model import FileAccess
from stockade.behavior.pathglob import intersects
from stockade.policy.decision import Action
from stockade.policy.export._common import (
    Target,
    comment_header,
    dump_yaml,
    exact,
    has_glob,
    named,
    path_shape,
    privileged_actions,
    target_of,
)
from stockade.policy.export.interface import ExportError, ExportResult
from stockade.policy.model import FileRule, NetworkRule, ProcessRule, WorkloadPolicy

__all__ = ["CAPABILITIES", "export"]

API_VERSION = "security.kubearmor.com/v1"
_ACTION = {"allow": "Allow", "audit": "Audit", "block": "Block"}
#: privileged operation -> KubeArmor capability (None: no capability guards it)
CAPABILITIES: dict[str, str | None] = {
    "setuid": "setuid",
    "setgid": "setgid",
    "mount": "sys_admin",
    "umount": "sys_admin",
    "unshare": "sys_admin",
    "setns": "sys_admin",
    "bpf": "sys_admin",
    "ptrace": "sys_ptrace",
    "module_load": "sys_module",
    "chroot": "sys_chroot",
    "raw_socket": "net_raw",
    "memfd_create": None,
}
#: how permissive an action is (the most permissive wins where several share one capability)
_OPENNESS = {"block": 0, "audit": 1, "allow": 2}
_MAX_PATH = 200  # the CRD's maxLength for paths


class _Builder:
    """Collects the policy's sections and what could not be expressed."""

    def __init__(self, policy: WorkloadPolicy) -> None:
        self.spec = policy.spec
        self.allow_list = policy.spec.action != "allow"
        self.sections: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.warnings: list[str] = []

    def add(self, section: str, match: str, item: dict[str, Any]) -> None:
        """Append `item` to ``<section>.<match>`` (once)."""
        items = self.sections.setdefault(section, {}).setdefault(match, [])
        if item not in items:
            items.append(item)

    def has_allow(self, section: str) -> bool:
        """Whether `section` has an Allow item."""
        return any(i["action"] == "Allow" for m in self.sections.get(section, {}).values() for i in m)

    def path_item(self, section: str, where: str, path: str, action: Action, extra: dict[str, Any]) -> None:
        """A path or glob as a ``matchPaths`` or ``matchDirectories`` item of `section`."""
        shape = path_shape(path)
        if not path.startswith("/") or len(shape.base) > _MAX_PATH:
            self.warnings.append(
                f"{where}: {path!r} is not an absolute path of at most 200 characters: left out"
            )
            return
        if shape.kind == "exact":
            self.add(section, "matchPaths", {"path": shape.base, **extra, "action": _ACTION[action]})
            return
        if shape.kind == "pattern":
            self.warnings.append(
                f"{where}: {path!r} has a wildcard inside a path component, which KubeArmor cannot "
                f"express: widened to {'everything below ' if shape.recursive else 'the entries of '}{shape.base}"
            )
        item: dict[str, Any] = {"dir": shape.base}
        if shape.recursive:
            item["recursive"] = True
        self.add(section, "matchDirectories", {**item, **extra, "action": _ACTION[action]})

    # -- the policy's sections ------------------------------------------------------------------
    def process(self, name: str, rule: ProcessRule) -> None:
        """A process rule."""
        if rule.action == "allow" and not self.allow_list:
            return
        where = f"process rule {name}"
        extra: dict[str, Any] = {}
        if rule.parent and has_glob(rule.parent):
            self.warnings.append(f"{where}: parent pattern {rule.parent!r} cannot be expressed: any parent")
        elif rule.parent:
            extra["fromSource"] = [{"path": exact(rule.parent)}]
        if rule.args:
            self.warnings.append(
                f"{where}: argument pattern {rule.args!r} cannot be expressed: any arguments"
            )
        self.path_item("process", where, rule.path, rule.action, extra)

    def file(self, name: str, rule: FileRule) -> None:
        """A file rule (its exec access is a process item)."""
        if rule.action == "allow" and not self.allow_list:
            return
        where = f"file rule {name}"
        access = set(rule.access)
        if "exec" in access:
            self.path_item("process", where, rule.path, rule.action, {})
        rw = access - {"exec"}
        if rw:
            self.path_item("file", where, rule.path, rule.action, self.read_only(where, rule.action, rw))
        self.exceptions(name, rule)

    def read_only(self, where: str, action: Action, rw: set[FileAccess]) -> dict[str, Any]:
        """``readOnly`` for a file item of reads or writes alone (module docstring)."""
        if action == "allow" and rw == {"read"}:
            return {"readOnly": True}
        if action == "allow" and rw == {"write"}:
            self.warnings.append(f"{where}: write-only access cannot be expressed: reads allowed too")
        elif action != "allow" and rw == {"write"}:
            return {"readOnly": True}  # a Block/Audit item with readOnly denies writes and lets reads
        elif action != "allow" and rw == {"read"}:
            self.warnings.append(f"{where}: {action} of reads alone cannot be expressed: writes too")
        return {}

    def exceptions(self, name: str, rule: FileRule) -> None:
        """A file rule's ``except`` globs (KubeArmor has none: module docstring)."""
        where = f"file rule {name}"
        for e in rule.except_ or ():
            if not intersects(rule.path, e):
                continue  # it leaves out nothing of the rule
            head = f"{where}: except {e!r}"
            if rule.action != "allow":
                self.warnings.append(
                    f"{head} cannot be expressed (KubeArmor has no exceptions): {rule.action}ed too"
                )
                continue
            why = self.cannot_deny(rule, e)
            if why is not None:
                self.warnings.append(
                    f"{head} cannot be expressed (KubeArmor has no exceptions; {why}): the rule allows it"
                )
                continue
            action = _ACTION[self.spec.action]
            self.warnings.append(f"{head}: KubeArmor has no exceptions: a {action} item for it")
            if "exec" in rule.access:
                self.path_item("process", where, e, self.spec.action, {})
            if set(rule.access) - {"exec"}:
                self.path_item("file", where, e, self.spec.action, {})

    def cannot_deny(self, rule: FileRule, pattern: str) -> str | None:
        """Why an item for exception `pattern` of `rule` would not deny exactly what it names, or
        None: a wildcard inside a component, or a path another allow rule allows."""
        if path_shape(pattern).kind == "pattern":
            return "a wildcard inside a path component"
        others: list[tuple[str, ProcessRule | FileRule]] = [
            *named(self.spec.process, "process"),
            *named(self.spec.file, "file"),
        ]
        for n, x in others:
            if x is rule or x.action != "allow" or pattern in (getattr(x, "except_", None) or ()):
                continue
            if intersects(x.path, pattern):
                return f"an item would also deny what rule {n} allows"
        return None

    def network(self, name: str, rule: NetworkRule) -> None:
        """A network rule: its protocols (peers, ports and direction cannot be expressed)."""
        if rule.action == "allow" and not self.allow_list:
            return
        where = f"network rule {name}"
        protocols = ("tcp", "udp") if rule.protocol == "any" else (rule.protocol,)
        narrowed = rule.peer is not None or rule.ports is not None
        if rule.action == "allow":
            if narrowed:
                self.warnings.append(
                    f"{where}: peers and ports cannot be expressed (KubeArmor matches protocols): "
                    f"every {'/'.join(protocols)} {rule.direction} allowed"
                )
            for p in protocols:
                self.add("network", "matchProtocols", {"protocol": p, "action": "Allow"})
        elif rule.peer is not None and rule.peer.dns and rule.direction == "egress" and not rule.ports:
            domain = rule.peer.dns.removeprefix("*.")
            self.add("network", "matchDNSQueries", {"domain": domain, "action": _ACTION[rule.action]})
        elif narrowed:
            self.warnings.append(
                f"{where}: a {rule.action} of some peers or ports cannot be expressed "
                "(KubeArmor matches protocols only): left out"
            )
        else:
            for p in protocols:
                self.add("network", "matchProtocols", {"protocol": p, "action": _ACTION[rule.action]})

    def catch_alls(self) -> None:
        """spec.action for a section that has no Allow item (no posture applies to it)."""
        if not self.allow_list:
            return
        default = _ACTION[self.spec.action]
        for section in ("process", "file"):
            if not self.has_allow(section):
                self.add(section, "matchDirectories", {"dir": "/", "recursive": True, "action": default})
        allowed = {
            i["protocol"]
            for i in self.sections.get("network", {}).get("matchProtocols", [])
            if i["action"] == "Allow"
        }
        for p in ("tcp", "udp"):
            if p not in allowed:
                self.add("network", "matchProtocols", {"protocol": p, "action": default})

    def capabilities(self) -> None:
        """Block/Audit items for the capabilities of the operations the policy does not allow."""
        actions = privileged_actions(self.spec)
        by_cap: dict[str, list[str]] = {}
        for op, cap in CAPABILITIES.items():
            action = actions[op][0]
            if cap is None:
                if action != "allow":
                    self.warnings.append(
                        f"privileged operation {op}: no capability guards it: not {action}ed"
                    )
                continue
            by_cap.setdefault(cap, []).append(op)
        for cap, ops in by_cap.items():
            chosen = max((actions[op][0] for op in ops), key=_OPENNESS.__getitem__)
            for op in ops:
                if actions[op][0] != chosen:
                    self.warnings.append(
                        f"privileged operation {op}: capability {cap} is shared with what the policy "
                        f"lets through ({chosen}): {actions[op][0]} cannot be expressed"
                    )
            if chosen != "allow":
                self.add("capabilities", "matchCapabilities", {"capability": cap, "action": _ACTION[chosen]})
        raw = actions["raw_socket"][0]
        if raw != "allow" or self.has_allow("network"):
            self.add("network", "matchProtocols", {"protocol": "raw", "action": _ACTION[raw]})


def _selector(target: Target, labels: Mapping[str, str] | None) -> dict[str, str]:
    if labels is not None:
        return {str(k): str(v) for k, v in labels.items()}
    if target.kind == "k8s":
        return {"app": target.owner}
    if target.kind == "container":
        return {"kubearmor.io/container.name": target.name or target.repository.rsplit("/", 1)[-1]}
    return {"kubearmor.io/hostname": "*"}


def _notes(b: _Builder, target: Target) -> list[str]:
    if not b.allow_list:
        return ["spec.action allow: only the block and audit rules are exported."]
    posture = b.spec.action
    if target.kind == "k8s":
        how = (
            f"kubectl annotate ns {target.namespace} kubearmor-file-posture={posture} "
            f"kubearmor-network-posture={posture}"
        )
    elif target.kind == "container":
        how = (
            f"defaultFilePosture: {posture} and defaultNetworkPosture: {posture} in KubeArmor's configuration"
        )
    else:
        how = f"hostDefaultFilePosture: {posture} in KubeArmor's configuration"
    return [
        f"What no Allow item allows gets KubeArmor's default posture, which must be {posture}:",
        f"  {how}",
    ]


def export(policy: WorkloadPolicy, *, labels: Mapping[str, str] | None = None) -> ExportResult:
    """`policy` as a KubeArmorPolicy (module docstring); `labels`: the pods' (or nodes') labels."""
    target = target_of(policy.spec.workload)
    b = _Builder(policy)
    for name, p in named(policy.spec.process, "process"):
        b.process(name, p)
    for name, f in named(policy.spec.file, "file"):
        b.file(name, f)
    for name, n in named(policy.spec.network, "network"):
        b.network(name, n)
    b.catch_alls()
    b.capabilities()
    if target.kind == "container" and labels is None:
        b.warnings.append(
            "KubeArmor selects a plain container by its exact name: replicas named with a suffix "
            f"({target.name or 'name'}-1, ...) need a policy each (option labels)"
        )
    if target.kind == "host":
        for section in ("network", "capabilities"):
            if b.sections.pop(section, None):
                b.warnings.append(
                    f"a KubeArmorHostPolicy's {section} items need fromSource: {section} left out"
                )
    if not b.sections:
        raise ExportError(f"kubearmor: policy {policy.metadata.name} has nothing KubeArmor can express")
    spec: dict[str, Any] = {
        ("nodeSelector" if target.kind == "host" else "selector"): {"matchLabels": _selector(target, labels)}
    }
    for section in ("process", "file", "network", "capabilities"):
        if section in b.sections:
            spec[section] = b.sections[section]
    spec["action"] = "Allow" if b.allow_list else "Block"
    spec["message"] = f"Stockade WorkloadPolicy {policy.metadata.name}"
    metadata: dict[str, Any] = {"name": policy.metadata.name}
    if target.kind == "k8s":
        metadata["namespace"] = target.namespace
    doc = {
        "apiVersion": API_VERSION,
        "kind": "KubeArmorHostPolicy" if target.kind == "host" else "KubeArmorPolicy",
        "metadata": metadata,
        "spec": spec,
    }
    what = doc["kind"]
    header = comment_header(policy, str(what), _notes(b, target), b.warnings)
    notes = [] if not b.allow_list else [" ".join(n.strip() for n in _notes(b, target))]
    return ExportResult(header + dump_yaml(doc), tuple(notes + b.warnings))
