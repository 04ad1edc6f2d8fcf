"""Query parameter parsing shared by the read endpoints: times, priorities, field filters.

A value that cannot be parsed is a 422 problem naming the parameter, never a 500.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, Request

from stockade.api.problem import Problem
from stockade.model.alert import PRIORITIES, normalize_priority
from stockade.model.timeutil import now_ns, parse_duration_s, parse_time_ns

#: times are signed 64-bit nanoseconds in storage
_MIN_NS, _MAX_NS = -(2**63), 2**63 - 1
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h|d|w)$")
#: a Falco field name with an optional [argument]
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])?$")
#: the same, then ':' or '=' and the value
_WHERE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*(?:\[[^\]]*\])?)\s*[:=](.*)$", re.S)


def bad_param(name: str, value: str, why: str) -> Problem:
    """The 422 problem for the query parameter `name` whose `value` is wrong, and why."""
    return Problem(
        422,
        f"query parameter '{name}': {why} (got {value[:80]!r})",
        kind="invalid-parameter",
        title="Invalid request parameter",
        errors=[{"where": f"query parameter '{name}'", "message": why}],
    )


def parse_time_param(name: str, value: str | None, *, now: int | None = None) -> int | None:
    """'1h'/'15m'/'7d' (that long ago), an RFC 3339 time, or an integer (s, ms, us or ns since epoch)."""
    if value is None or value.strip() == "":
        return None
    v = value.strip()
    t: int | None
    if _DURATION.match(v.lower()):
        t = (now if now is not None else now_ns()) - int(parse_duration_s(v) * 1e9)
    elif v.isdigit() and len(v) <= 20:
        t = int(v)
        # scale by magnitude: seconds (10 digits today), ms, us, ns
        for bound, mult in ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3)):
            if t < bound:
                t *= mult
                break
    else:
        t = parse_time_ns(v)
        if t is None:
            raise bad_param(
                name, value, "expected a duration like 15m/1h/7d, an RFC 3339 time, or epoch seconds"
            )
    if not _MIN_NS <= t <= _MAX_NS:
        raise bad_param(name, value, "time out of range")
    return t


def parse_priority_param(value: str | None) -> str | None:
    """A minimum priority in any case ('warning') -> Falco's name ('Warning'); None when not given."""
    if value is None or value.strip() == "":
        return None
    p = normalize_priority(value)
    if p is None:
        raise bad_param("priority", value, "expected one of " + ", ".join(PRIORITIES))
    return p


def parse_where(values: list[str], extra: list[tuple[str, str]]) -> dict[str, str] | None:
    """`where=field:value` (or field=value) items plus dotted query params -> {field: value}."""
    out: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for v in values:
        m = _WHERE.match(v)
        if not m:
            raise bad_param("where", v, "expected field:value, e.g. proc.name:bash")
        pairs.append((m.group(1), m.group(2)))
    pairs.extend(extra)
    for f, val in pairs:
        if f in out and out[f] != val:
            raise bad_param("where", f"{f}:{val}", f"field '{f}' filtered twice with different values")
        out[f] = val
    return out or None


def reject_unknown_params(
    request: Request, known: frozenset[str], *, allow_dotted: bool = False
) -> list[tuple[str, str]]:
    """422 for a query parameter the endpoint does not know (a typo would otherwise filter nothing).

    With `allow_dotted`, parameters that look like field names (`proc.name`, `proc.aname[2]`) are
    returned as (field, value) filters instead.
    """
    extra: list[tuple[str, str]] = []
    for k, v in request.query_params.multi_items():
        if k in known:
            continue
        if allow_dotted and "." in k and _FIELD.match(k):
            extra.append((k, v))
            continue
        raise bad_param(k, v, "unknown query parameter; known: " + ", ".join(sorted(known)))
    return extra


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route (a FastAPI dependant) and its dependencies declare."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _declared(request: Request) -> frozenset[str]:
    """The query parameters of the route `request` matched: its signature is the one list of them."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    return frozenset(_query_names(dependant)) if dependant is not None else frozenset()


def _reject_undeclared(request: Request) -> None:
    reject_unknown_params(request, _declared(request))


def _field_filters(request: Request) -> list[tuple[str, str]]:
    return reject_unknown_params(request, _declared(request), allow_dotted=True)


#: a route dependency: 422 for a query parameter the route does not declare
STRICT_QUERY = Depends(_reject_undeclared)
#: a route parameter: the (field, value) filters given as dotted query parameters (`proc.name=bash`);
#: 422 for any other parameter the route does not declare
FieldFilters = Annotated[list[tuple[str, str]], Depends(_field_filters)]
