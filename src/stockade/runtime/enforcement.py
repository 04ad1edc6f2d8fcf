"""Protect mode's enforcement: one place that puts a workload's policy into the kernel for each of
its containers, with the mechanisms this node really has, and says what it could not do.

* exec and open: :class:`stockade.enforce.fileguard.FileGuard` (fanotify permission events);
* exec where fanotify permission events are unavailable (or ``zero_trust.enforcement.exec_enforcer``
  is ``kill``): :class:`stockade.enforce.kill.ExecKiller`, SIGKILL at exec of any file not on the
  container's allow-list (:func:`stockade.enforce.execlist.allowed_executables`): the program never
  runs, but execve() succeeds; opens are then only audited;
* connect, sendmsg, bind and raw sockets: :class:`stockade.enforce.netguard.NetGuard` (cgroup BPF
  programs on the container's cgroup2 directory);
* what neither covers (privileged syscalls, ingress peers) is only audited: the sensor sees it
  and the runtime raises a deviation alert.

The node's real support for each kind of operation comes from
:func:`stockade.enforce.capabilities.probe` at start; a mechanism that is configured off or
unavailable makes that kind "audit" (seen by the sensor, not denied), never silently "block".
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from stockade.config import EnforcementConfig
from stockade.enforce.interface import DenialSink, EnforceError, Support
from stockade.policy.compile import CompiledPolicy
from stockade.sensor.containers.discover import RunningContainer

__all__ = ["OPERATION_KINDS", "Enforcement"]

log = logging.getLogger("stockade.enforcement")

#: the kinds of operation a node reports its support for
OPERATION_KINDS = ("exec", "open", "connect", "bind", "raw_socket", "privileged", "ingress")


@dataclass(slots=True)
class _Applied:
    exec: bool = False
    open: bool = False
    network: bool = False
    audit_only: bool = False

    @property
    def files(self) -> bool:
        """Both exec and open are decided in the kernel."""
        return self.exec and self.open

    def decides(self, kind: str) -> bool:
        """Whether an enforcer decides operations of `kind` (exec, open, connect, bind, ...)."""
        return self.exec if kind == "exec" else (self.open if kind == "open" else self.network)


@dataclass(slots=True)
class Enforcement:
    """The enforcers of this node (module docstring)."""

    cfg: EnforcementConfig
    on_denial: DenialSink
    support: dict[str, dict[str, str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    _files: Any = None
    _killer: Any = None
    _net: Any = None
    _applied: dict[str, _Applied] = field(default_factory=dict)

    def start(self) -> list[str]:
        """Probe the node, start the enabled enforcers; the containers whose network enforcement
        survived a restart (pinned programs found again)."""
        from stockade.enforce.capabilities import probe

        caps = probe().to_dict()
        restored: list[str] = []
        self.support = {k: dict(v) for k, v in caps["ops"].items()}
        if not self.cfg.files:
            self._downgrade(("exec", "open"), "zero_trust.enforcement.files is false")
        elif self._wants_killer():
            self._start_killer(caps["mechanisms"].get("bpf_send_signal", {}))
        elif self._can("exec"):
            from stockade.enforce.fileguard import FileGuard

            self._files = self._start(FileGuard(self.on_denial), "files")
        if self.cfg.network and self._can("connect"):
            from stockade.enforce.netguard import NetGuard

            net = NetGuard(
                self.on_denial,
                pin_dir=f"{self.cfg.pin_dir}/netguard",
                fail_closed=self.cfg.network_fail_closed,
            )
            self._net = self._start(net, "network")
            if self._net is not None:
                restored = list(self._net.restore())
        elif not self.cfg.network:
            self._downgrade(("connect", "bind", "raw_socket"), "zero_trust.enforcement.network is false")
        for k in ("privileged", "ingress"):
            self.support.setdefault(k, {"support": "audit", "reason": "no enforcer: the sensor sees it"})
        return restored

    def _wants_killer(self) -> bool:
        """Whether exec is denied by the exec killer: asked for, or fanotify cannot."""
        mech = self.cfg.exec_enforcer
        return mech == "kill" or (
            mech == "auto" and self.support.get("exec", {}).get("mechanism") == "bpf_send_signal"
        )

    def _start_killer(self, send_signal: dict[str, Any]) -> None:
        if not send_signal.get("available"):
            self._downgrade(
                ("exec",), f"exec killer: bpf_send_signal unavailable: {send_signal.get('reason', '')}"
            )
            return
        from stockade.enforce.kill import ExecKiller

        self._killer = self._start(ExecKiller(self.on_denial), "exec")
        if self._killer is None:
            return
        self.support["exec"] = {
            "support": "block",
            "mechanism": "bpf_send_signal",
            "reason": "SIGKILL at exec of a file not on the allow-list: the program never runs, but "
            "execve() succeeds (no EPERM)",
        }
        if self.support.get("open", {}).get("support") == "block":
            self._downgrade(("open",), "zero_trust.enforcement.exec_enforcer is kill: opens are audited")

    def _can(self, kind: str) -> bool:
        return self.support.get(kind, {}).get("support") == "block"

    def _start(self, enforcer: Any, what: str) -> Any:
        try:
            enforcer.start()
        except EnforceError as e:
            kinds = {"files": ("exec", "open"), "exec": ("exec",)}.get(
                what, ("connect", "bind", "raw_socket")
            )
            self._downgrade(kinds, f"{what} enforcer failed to start: {e}")
            self.problems.append(f"{what}: {e}")
            return None
        return enforcer

    def _downgrade(self, kinds: tuple[str, ...], reason: str) -> None:
        for k in kinds:
            self.support[k] = {"support": "audit", "reason": reason}

    def kind_support(self, kind: str) -> Support:
        """What this node does with a denied operation of `kind`: block, audit or none."""
        s = self.support.get(kind, {}).get("support", "none")
        return "block" if s == "block" else ("audit" if s == "audit" else "none")

    def enforced(self, container: str) -> _Applied | None:
        """What is applied to a container now (None: nothing)."""
        return self._applied.get(container)

    def apply(self, c: RunningContainer, policy: CompiledPolicy, *, audit_only: bool = False) -> list[str]:
        """Enforce `policy` on a running container; the problems (an empty list: all applied)."""
        done = _Applied(audit_only=audit_only)
        problems: list[str] = []
        if self._files is not None:
            try:
                self._files.protect(c.full_id, c.pid, policy.decide_file, audit_only=audit_only)
                done.exec = done.open = True
            except EnforceError as e:
                problems.append(f"files: {e}")
        if self._killer is not None:
            done.exec = self._arm(c, policy, audit_only, problems)
        if self._net is not None:
            try:
                self._net.protect(c.full_id, c.cgroup_dir, policy.net_rules(), audit_only=audit_only)
                done.network = True
            except EnforceError as e:
                problems.append(f"network: {e}")
        self._applied[c.full_id] = done
        for p in problems:
            log.warning("enforcement of %s: %s", c.full_id[:12], p)
        return problems

    def _arm(
        self, c: RunningContainer, policy: CompiledPolicy, audit_only: bool, problems: list[str]
    ) -> bool:
        """Arm the exec killer for a container; whether it is armed (problems added to `problems`)."""
        from stockade.enforce.execlist import allowed_executables

        root = f"/proc/{c.pid}/root"
        listed = allowed_executables(root, policy)
        problems += listed.problems
        try:
            self._killer.arm(
                c.full_id, c.cgroup_dir, root, listed.paths, policy=policy.name, audit_only=audit_only
            )
        except EnforceError as e:
            problems.append(f"exec: {e}")
            return False
        return True

    def release(self, container: str) -> None:
        """Stop enforcing on a container (mode changed, container gone)."""
        self._applied.pop(container, None)
        if self._killer is not None:
            self._killer.disarm(container)
        for enforcer in (self._files, self._net):
            if enforcer is not None:
                try:
                    enforcer.release(container)
                except EnforceError as e:
                    self.problems.append(f"release {container[:12]}: {e}")

    def status(self) -> dict[str, Any]:
        """Per kind of operation what this node can do, what is applied, the enforcers' counters."""
        return {
            "support": self.support,
            "containers": {
                cid: {
                    "files": a.files,
                    "exec": a.exec,
                    "open": a.open,
                    "network": a.network,
                    "audit_only": a.audit_only,
                }
                for cid, a in self._applied.items()
            },
            "files": _stats(self._files),
            "exec_killer": {"armed": len(self._killer.armed())} if self._killer is not None else None,
            "network": _stats(self._net),
            "problems": list(self.problems[-10:]),
        }

    def close(self) -> None:
        """Stop the enforcers; the network programs of protected containers stay pinned when
        configured to fail closed."""
        if self._files is not None:
            self._files.stop()
        if self._killer is not None:
            self._killer.stop()
        if self._net is not None:
            # programs stay pinned for the containers they protect; with none, nothing is left behind
            keep = self.cfg.network_fail_closed and bool(self._net.protected())
            self._net.stop(keep=keep)
            if not keep:
                with contextlib.suppress(OSError):  # ours, and empty: nothing was left pinned
                    os.rmdir(self.cfg.pin_dir)


def _stats(enforcer: Any) -> dict[str, Any] | None:
    """An enforcer's counters as a dict (its stats: a dataclass, or one with ``as_dict``)."""
    if enforcer is None:
        return None
    st = enforcer.stats
    as_dict = getattr(st, "as_dict", None)
    if callable(as_dict):
        return dict(as_dict())
    return dataclasses.asdict(st) if dataclasses.is_dataclass(st) and not isinstance(st, type) else {}
