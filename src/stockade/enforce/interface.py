"""What every enforcer shares: verdicts, denials, the rules handed to the kernel, and the errors.

An enforcer (``fileguard``: fanotify permission events for exec and open; ``netguard``: cgroup
BPF programs for connect, sendmsg, bind and socket creation) is handed, per container, what the
workload's policy allows; it asks nothing of the policy code but these types. Each decision it
takes outside the allow-list is reported as a :class:`Denial` (``blocked`` says whether the
operation really failed or was only audited), which the runtime turns into an alert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from stockade.errors import StockadeError
from stockade.policy.decision import Action, FileDecider, FileKind, NetKind, NetRule, NetRules, Verdict

__all__ = [
    "Action",
    "Denial",
    "DenialSink",
    "EnforceError",
    "FileDecider",
    "FileKind",
    "NetKind",
    "NetRule",
    "NetRules",
    "Support",
    "Verdict",
]

#: how far a node can enforce one kind of operation: deny it, only see it, or not even that
Support = Literal["block", "audit", "none"]


class EnforceError(StockadeError):
    """An enforcement mechanism that cannot be set up (what, where, and why)."""

    title = "Enforcement error"


@dataclass(frozen=True, slots=True)
class Denial:
    """One operation outside the policy, as an enforcer saw it.

    `blocked`: the kernel refused it (EPERM); False: audited only (Monitor mode, audit rules, or a
    node that cannot block this kind)."""

    kind: FileKind | NetKind
    #: the container's full id ("" for a host process)
    container: str
    #: a path (exec, open) or ``ADDR:PORT/PROTO`` (network) or ``family/type`` (socket)
    target: str
    pid: int
    verdict: Verdict
    blocked: bool
    time_ns: int
    #: the process's command name and executable, when known
    comm: str | None = None
    exe: str | None = None


#: receives each denial (called from the enforcer's own thread: keep it short)
DenialSink = Callable[[Denial], None]
