"""A policy's decisions as the enforcers receive them: verdicts, file deciders, network rules.

The policy code (:mod:`stockade.policy.compile`) produces these; the enforcers
(:mod:`stockade.enforce`) consume them and know nothing else of policies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Action", "FileDecider", "FileKind", "NetKind", "NetRule", "NetRules", "Verdict"]

#: what a policy rule does with a matching operation
Action = Literal["allow", "audit", "block"]
#: the file operations fanotify decides on
FileKind = Literal["exec", "open"]
#: the network operations the cgroup programs decide on
NetKind = Literal["connect", "sendmsg", "bind", "socket"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A policy's decision on one operation: the action and the policy rule that decided it.

    `rule` is the matching rule's name, or ``"default"`` (the policy's action for what no rule
    names). An allow has ``action == "allow"``."""

    action: Action
    policy: str
    rule: str

    @property
    def allowed(self) -> bool:
        """Whether the operation may go ahead (allow, or audit: alert and let it)."""
        return self.action != "block"


#: decides an exec or open of `path` (as the container sees it) for one container
FileDecider = Callable[[FileKind, str], Verdict]


@dataclass(frozen=True, slots=True)
class NetRule:
    """One allowed (or audited, or blocked) network operation.

    `network`: the peer's address range (egress) or the local one (bind; 0.0.0.0/0 and ::/0 for
    any); `ports`: inclusive range (0-65535 for any); `protocol`: ``tcp``, ``udp`` or ``any``."""

    name: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    ports: tuple[int, int] = (0, 65535)
    protocol: Literal["tcp", "udp", "any"] = "any"
    action: Action = "allow"


@dataclass(frozen=True, slots=True)
class NetRules:
    """What one container may do on the network; everything else gets `default_action`.

    `egress`: connect and sendmsg destinations; `bind`: local ports it may bind (listen on);
    `raw_sockets`: the action for SOCK_RAW / SOCK_PACKET sockets (the ``raw_socket`` privileged
    operation). Block rules are checked before allow rules."""

    policy: str
    egress: tuple[NetRule, ...] = ()
    bind: tuple[NetRule, ...] = ()
    default_action: Action = "block"
    raw_sockets: Action = "block"
    #: the rule name reported for raw sockets
    raw_rule: str = "default"
    extra: dict[str, str] = field(default_factory=dict)
