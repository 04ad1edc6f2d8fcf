"""Mutes: a rule silenced for one workload (or everywhere), with a reason and an expiry.

A workload selector is one of:

* ``container:X``: the container whose name is X, or whose id is X or starts with X (6+ characters);
* ``image:X``: containers of image repository X (``docker.io/library/nginx``; also matched by its
  trailing components, ``library/nginx`` or ``nginx``), or ``image:X:TAG`` for one tag;
* ``k8s:NS``: the Kubernetes namespace NS; ``k8s:NS/NAME``: pods NAME or NAME-* in it (the pods of
  a deployment, statefulset or daemonset NAME), or the object NAME of an audit event;
* ``host``: processes outside any container;
* anything else: the alert's workload exactly as alerts show it (``stockade.workload``: a
  workload id such as ``k8s/default/deployment/nginx`` or ``container/docker.io/library/nginx/web``,
  or ``kube-system/secrets/token`` for an audit event).

The fields are read from the event the alert came from when there is one, else from the alert's
``output_fields``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stockade.errors import UsageError
from stockade.model.alert import Alert, new_id
from stockade.model.timeutil import format_time_ns, parse_duration_s, parse_time_ns

SELECTOR_KINDS = ("container", "image", "k8s")
#: shortest container id prefix a selector may give
MIN_ID_PREFIX = 6


def check_selector(selector: str) -> str:
    """`selector` stripped, or a UsageError saying what a selector may be."""
    s = selector.strip()
    if s.startswith(("container/", "k8s/")):
        return s  # a workload id (stockade.behavior.workload), which may hold a registry's port
    kind, sep, value = s.partition(":")
    if not s or (sep and (kind not in SELECTOR_KINDS or not value.strip())):
        raise UsageError(
            f"workload {selector!r}: expected container:NAME|ID, image:REPO[:TAG], k8s:NAMESPACE[/NAME], "
            "host, or a workload as alerts show it"
        )
    if kind == "k8s" and value.count("/") > 1:
        raise UsageError(f"workload {selector!r}: expected k8s:NAMESPACE or k8s:NAMESPACE/NAME")
    return s


Lookup = Callable[[str], Any]


def _lookup(alert: Alert, data: Mapping[str, Any] | None) -> Lookup:
    of = alert.output_fields

    def get(name: str) -> Any:
        if data is not None:
            v = data.get(name)
            if v is not None:
                return v
        return of.get(name)

    return get


def _audit_ref(data: Mapping[str, Any] | None, key: str) -> Any:
    ref = data.get("objectRef") if data is not None else None
    return ref.get(key) if isinstance(ref, dict) else None


def _container_matches(value: str, get: Lookup) -> bool:
    cid = str(get("container.id") or "")
    if not cid or cid == "host":
        return False
    if value == get("container.name") or value == cid:
        return True
    full = str(get("container.full_id") or cid)
    return len(value) >= MIN_ID_PREFIX and full.startswith(value)


def _image_matches(value: str, get: Lookup) -> bool:
    repo = str(get("container.image.repository") or "")
    if not repo:
        image = str(get("container.image") or "")
        repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if not repo:
        return False
    tag = str(get("container.image.tag") or "")
    for candidate in (repo, f"{repo}:{tag}" if tag else None):
        if candidate and (candidate == value or candidate.endswith("/" + value)):
            return True
    return False


def _k8s_matches(value: str, get: Lookup, data: Mapping[str, Any] | None) -> bool:
    ns_want, _, name = value.partition("/")
    ns = get("k8s.ns.name") or get("ka.target.namespace") or _audit_ref(data, "namespace")
    if ns != ns_want:
        return False
    if not name:
        return True
    pod = str(get("k8s.pod.name") or get("ka.target.name") or _audit_ref(data, "name") or "")
    return pod == name or pod.startswith(name + "-")


def selector_matches(selector: str | None, alert: Alert, data: Mapping[str, Any] | None = None) -> bool:
    """Whether `selector` (see the module docs; None: everywhere) selects the alert's workload."""
    if selector is None or selector == alert.workload:
        return True
    get = _lookup(alert, data)
    kind, _, value = selector.partition(":")
    if kind == "container":
        return _container_matches(value, get)
    if kind == "image":
        return _image_matches(value, get)
    if kind == "k8s":
        return _k8s_matches(value, get, data)
    return False


@dataclass(slots=True)
class Mute:
    """A rule silenced for a workload (or everywhere) until `expires_ns`, with a reason."""

    rule: str
    reason: str
    expires_ns: int
    created_ns: int
    #: a workload selector (module docs); None mutes the rule everywhere
    workload: str | None = None
    created_by: str | None = None
    id: str = field(default_factory=new_id)
    #: alerts it silenced in this process (not stored)
    hits: int = 0

    def matches(self, alert: Alert, data: Mapping[str, Any] | None = None) -> bool:
        """Whether this mute silences `alert` (read with the event `data` it came from, if any)."""
        return alert.rule == self.rule and selector_matches(self.workload, alert, data)

    def active(self, now_ns: int) -> bool:
        """Whether the mute is in force at `now_ns`."""
        return now_ns < self.expires_ns

    def to_dict(self, now_ns: int | None = None) -> dict[str, Any]:
        """The mute as the API shows it (with `active` when `now_ns` is given)."""
        out: dict[str, Any] = {
            "id": self.id,
            "rule": self.rule,
            "workload": self.workload,
            "reason": self.reason,
            "created": format_time_ns(self.created_ns),
            "expires": format_time_ns(self.expires_ns),
            "created_by": self.created_by,
            "hits": self.hits,
        }
        if now_ns is not None:
            out["active"] = self.active(now_ns)
        return out


def expiry_ns(now_ns: int, for_: str | float | None, until: str | int | None) -> int:
    """A mute's expiry from a duration (`for_`: 2h, 30m, 7d or seconds) or a time (`until`:
    RFC 3339 or ns since the epoch); exactly one of them."""
    if (for_ is None) == (until is None):
        raise UsageError("a mute needs one expiry: a duration (for: 2h) or a time (until: RFC 3339)")
    if for_ is not None:
        try:
            secs = for_ if isinstance(for_, (int, float)) else parse_duration_s(str(for_))
        except ValueError:
            secs = -1.0
        if not secs > 0 or secs == float("inf"):
            raise UsageError(f"for: expected a positive duration (90s, 15m, 2h, 7d), not {for_!r}")
        return now_ns + int(secs * 1e9)
    t = until if isinstance(until, int) else parse_time_ns(str(until))
    if t is None:
        raise UsageError(f"until: expected an RFC 3339 time (2025-06-01T18:00:00Z), not {until!r}")
    if t <= now_ns:
        raise UsageError(f"until: {until} is in the past")
    return t


@dataclass(frozen=True, slots=True)
class MuteRequest:
    """What a user asks for when muting (the API's ``POST /mutes``, ``stockade rules mute``): the
    rule, a reason, a workload selector (None: everywhere) and one expiry, a duration (`for_`) or a
    time (`until`)."""

    rule: str
    reason: str
    workload: str | None = None
    for_: str | float | None = None
    until: str | int | None = None
    created_by: str | None = None

    def mute(self, now_ns: int) -> Mute:
        """The mute this asks for, made at `now_ns`; a UsageError naming what is wrong."""
        if not self.rule.strip():
            raise UsageError("rule: a mute needs the name of the rule it silences")
        if not self.reason.strip():
            raise UsageError("reason: a mute needs a reason (who asked, why, a ticket)")
        return Mute(
            rule=self.rule,
            reason=self.reason.strip(),
            workload=check_selector(self.workload) if self.workload is not None else None,
            created_ns=now_ns,
            expires_ns=expiry_ns(now_ns, self.for_, self.until),
            created_by=self.created_by,
        )
