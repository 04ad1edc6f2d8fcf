"""An operation as one word of a workload's behaviour: the alphabet of the online anomaly models.

A token names what was done at the grain a profile learns it (:mod:`stockade.behavior.ops`), with
generated names generalised (:func:`stockade.behavior.generalise.generalise_path`: ``/tmp/tmp.*``,
``/proc/*/status``) so that two runs of the same work give the same words:

* ``exec EXE < PARENT``: a program started, and by what (a parent-child pair never seen is the
  shell a web server never ran);
* ``open ACCESS PATH``: a file opened for read, write or exec (``+``-joined);
* ``egress PEER PORT/PROTO``, ``ingress PEER PORT/PROTO``, ``listen PORT/PROTO``: a connection
  made, accepted, or a port bound; the peer as the workload at that address when one is known
  (`peer_of`), else the address;
* ``priv OPERATION``: a privileged operation (setuid, mount, ptrace, ...).

:func:`kind_of` gives a token's kind (``exec``, ``open``, ``egress``, ...), and :data:`ATTACK` the
MITRE ATT&CK techniques an unusual token of each kind suggests, for the alerts' tags.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from stockade.behavior.generalise import generalise_path
from stockade.behavior.ops import FileOp, NetOp, Operation, ProcessOp, operation_of

__all__ = ["ATTACK", "kind_of", "token_of", "token_of_op"]

#: the ATT&CK techniques an unusual token of each kind suggests
ATTACK: Final[dict[str, tuple[str, ...]]] = {
    "exec": ("T1059", "T1204"),  # command and scripting interpreter; user execution
    "open": ("T1005", "T1083"),  # data from local system; file and directory discovery
    "egress": (
        "T1046",
        "T1071",
        "T1021",
    ),  # network service discovery; application layer protocol; remote services
    "ingress": ("T1190",),  # exploit public-facing application
    "listen": ("T1571",),  # non-standard port
    "priv": ("T1068", "T1611"),  # exploitation for privilege escalation; escape to host
}


#: a path's generalisation, remembered (a workload's paths repeat)
_general = lru_cache(maxsize=65536)(generalise_path)


def kind_of(token: str) -> str:
    """A token's kind: its first word."""
    return token.split(" ", 1)[0]


def token_of(data: dict[str, Any], peer_of: Callable[[str], str | None] | None = None) -> str | None:
    """The token of an event (a flat dict of Falco fields); None when it is no operation."""
    op = operation_of(data)
    return None if op is None else token_of_op(op, peer_of)


def token_of_op(op: Operation, peer_of: Callable[[str], str | None] | None = None) -> str:
    """The token of an operation (:func:`stockade.behavior.ops.operation_of`'s)."""
    if isinstance(op, ProcessOp):
        return f"exec {op.exe} < {op.parent or '?'}"
    if isinstance(op, FileOp):
        return f"open {'+'.join(op.access)} {_general(op.path)}"
    if isinstance(op, NetOp):
        proto = op.protocol or "?"
        if op.direction == "listen":
            return f"listen {op.port}/{proto}"
        name = peer_of(op.ip) if peer_of is not None else None
        return f"{op.direction} {name or op.ip} {op.port}/{proto}"
    return f"priv {op.operation}"
