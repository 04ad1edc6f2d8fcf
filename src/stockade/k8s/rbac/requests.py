"""Audit events as the requests the authorizer decided on.

Events are read by :class:`stockade.sources.k8s_audit.K8sAuditSource` (JSON Lines, EventList,
``audit.k8s.io`` v1/v1beta1/v1alpha1). Each becomes the acting user and the authorizer attributes
of its request, as audit2rbac reads them:

* the user is ``impersonatedUser`` when present (the identity the request was authorized as), else
  ``user``; its groups are completed with those its authentication implies;
* an event with an ``objectRef`` is a resource request (apiGroup, resource, subresource, namespace,
  name); one without is a non-resource request on the path of ``requestURI`` (query dropped);
* the verb is the event's; a ``list`` or ``get`` whose query has ``watch=true`` (or ``1``) is a
  ``watch``, as the API server classifies it;
* the name is the one RBAC sees: none for ``create`` and ``deletecollection`` on a collection (the
  audit log fills ``objectRef.name`` of a create from the new object, but resourceNames cannot
  restrict such a create; a create on a subresource, ``pods/exec``, keeps its object's name),
  and for ``list``/``watch`` the ``metadata.name`` of a ``fieldSelector`` when the event names none;
* the decision is the response code: 403 is denied, 401 unauthenticated (no user: skipped); the
  stages of one request (one auditID) are one request.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from stockade.errors import SourceError
from stockade.k8s.rbac.model import Request, UserInfo
from stockade.sources.k8s_audit import K8sAuditSource

__all__ = ["AuditRequest", "AuditRequests", "event_request", "read_audit"]

UNNAMED_VERBS = frozenset({"create", "deletecollection"})


@dataclass(frozen=True, slots=True)
class AuditRequest:
    """One audited request: who made it, what it asked, whether it was denied, where it was read."""

    user: UserInfo
    request: Request
    denied: bool
    origin: str


@dataclass(slots=True)
class AuditRequests:
    """The requests of audit logs and the problems met reading them (``file:line: message``)."""

    items: list[AuditRequest] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def by_user(self) -> dict[str, list[AuditRequest]]:
        """The requests of each acting user, by user name (sorted)."""
        out: dict[str, list[AuditRequest]] = {}
        for r in self.items:
            out.setdefault(r.user.name, []).append(r)
        return dict(sorted(out.items()))


def _user(event: dict[str, Any]) -> UserInfo | None:
    u = event.get("impersonatedUser") or event.get("user")
    if not isinstance(u, dict) or not isinstance(u.get("username"), str) or not u["username"]:
        return None
    groups = u.get("groups")
    return _user_info(
        u["username"], tuple(g for g in groups if isinstance(g, str)) if isinstance(groups, list) else ()
    )


@functools.lru_cache(maxsize=4096)
def _user_info(name: str, groups: tuple[str, ...]) -> UserInfo:
    return UserInfo.authenticated(name, groups)  # one per user of a log, not one per event


def _field_selector_name(query: dict[str, list[str]]) -> str:
    for sel in query.get("fieldSelector", []):
        for term in sel.split(","):
            for op in ("==", "="):
                key, sep, value = term.partition(op)
                if sep and key.strip() == "metadata.name":
                    return value.strip()
    return ""


def event_request(event: dict[str, Any]) -> tuple[UserInfo, Request] | None:
    """The user and request of one audit event; None when it has no user or verb."""
    user = _user(event)
    verb = event.get("verb")
    if user is None or not isinstance(verb, str) or not verb:
        return None
    path, _, raw_query = str(event.get("requestURI") or "").partition("?")
    query = parse_qs(raw_query) if raw_query else {}
    ref = event.get("objectRef")
    if not isinstance(ref, dict):
        return user, Request(verb, path=path or "/")
    if verb in ("list", "get") and query.get("watch", [""])[-1] in ("true", "1"):
        verb = "watch"
    name = str(ref.get("name") or "")
    if verb in UNNAMED_VERBS and not ref.get("subresource"):
        name = ""
    elif not name and verb in ("list", "watch"):
        name = _field_selector_name(query)
    req = Request(
        verb,
        api_group=str(ref.get("apiGroup") or ""),
        resource=str(ref.get("resource") or ""),
        subresource=str(ref.get("subresource") or ""),
        namespace=str(ref.get("namespace") or ""),
        name=name,
    )
    return user, req


def _code(event: dict[str, Any]) -> int | None:
    status = event.get("responseStatus")
    code = status.get("code") if isinstance(status, dict) else None
    return code if isinstance(code, int) else None


def _events(paths: Iterable[str | Path], out: AuditRequests) -> Iterator[tuple[dict[str, Any], str]]:
    for p in paths:
        src = K8sAuditSource(str(p))
        try:
            for ev in src.events():
                yield ev.data, ev.origin or src.where
        except OSError as e:
            out.problems.append(f"{p}: {e.strerror or e}")
        except SourceError as e:
            out.problems.append(str(e))
        out.problems.extend(src.stats.errors)


def read_audit(paths: Iterable[str | Path]) -> AuditRequests:
    """The requests of the audit logs at `paths` (``-`` for standard input), one per auditID (its
    stages, RequestReceived to ResponseComplete, are one request: denied if any stage says 403)."""
    out = AuditRequests()
    seen: dict[str, int] = {}  # auditID -> index in out.items
    for event, origin in _events(paths, out):
        code = _code(event)
        audit_id = str(event.get("auditID"))
        if audit_id in seen:
            i = seen[audit_id]
            if code == 403 and not out.items[i].denied:
                out.items[i] = dataclasses.replace(out.items[i], denied=True)
            continue
        if code == 401:
            continue
        got = event_request(event)
        if got is None:
            out.problems.append(f"{origin}: no user or verb: skipped")
            continue
        user, req = got
        seen[audit_id] = len(out.items)
        out.items.append(AuditRequest(user, req, code == 403, origin))
    return out
