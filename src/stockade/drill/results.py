"""What the running instance made of each scenario, from its API's answers (alerts, incidents and
their timelines): detected, blocked, grouped into an incident, contained. Pure functions of those
answers, so they are tested on recorded ones.

* detected: an alert of the scenario's container (raised in its time window: the container lives
  for the scenario only); ``rules`` names them, ``expected_fired`` says whether every rule the
  scenario should trigger did;
* blocked: an attack step failed the way a denial fails (EPERM/EACCES, killed) and the instance
  recorded it (an alert with ``stockade.blocked`` true, or a successful kill on the incident);
  a step refused by the container runtime's own defaults (no CAP_SYS_ADMIN for mount) is not
  Stockade blocking it;
* incident: the incident holding the scenario's alerts (else the one listing its container);
* contained: the incident's timeline holds a successful isolate, freeze or kill of the container,
  or the incident is ``contained`` and holds no other container (several scenarios' containers
  may share an incident: one of them contained is not all of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.drill.podman import StepResult
from stockade.drill.scenarios import Scenario

__all__ = [
    "CONTAINING_ACTIONS",
    "DrillResult",
    "action_entries",
    "find_incident",
    "held",
    "is_contained",
    "result_of",
    "same_container",
]

#: the response actions that contain a container
CONTAINING_ACTIONS = frozenset({"isolate", "freeze", "kill"})


@dataclass(slots=True)
class DrillResult:
    """One scenario's line of the report (``to_dict``: what ``drill run --output json`` prints)."""

    scenario: str
    container: str
    detected: bool = False
    blocked: bool = False
    incident: str | None = None
    contained: bool = False
    #: every expected rule raised an alert
    expected_fired: bool = False
    #: the rules that raised alerts for the container, and the alert ids
    rules: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    #: the expected rules that did not fire
    missing: list[str] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    detail: str = ""
    #: the scenario could not run (its container did not start): why
    error: str | None = None
    container_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The line of ``drill run --output json``."""
        return {
            "scenario": self.scenario,
            "detected": self.detected,
            "blocked": self.blocked,
            "incident": self.incident,
            "contained": self.contained,
            "container": self.container,
            "container_name": self.container_name,
            "expected_fired": self.expected_fired,
            "rules": self.rules,
            "alerts": self.alerts,
            "missing": self.missing,
            "steps": [s.to_dict() for s in self.steps],
            "detail": self.detail,
            "error": self.error,
        }


def same_container(a: str | None, b: str | None) -> bool:
    """Two ways of naming a container agree: equal, or one a prefix (6+ characters) of the other
    (alerts carry 12 characters of the id, podman 64)."""
    if not a or not b:
        return False
    short, long_ = sorted((a, b), key=len)
    return short == long_ or (len(short) >= 6 and long_.startswith(short))


def _alert_id(a: Mapping[str, Any]) -> str:
    return str((a.get("stockade") or {}).get("id") or "")


def _container_of(a: Mapping[str, Any]) -> str | None:
    cid = (a.get("output_fields") or {}).get("container.id")
    return str(cid) if cid else None


def find_incident(
    container: str, alert_ids: Iterable[str], incidents: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The incident holding any of the alerts (the first listed: worst first); else the first one
    listing the container; None when there is none."""
    wanted = set(alert_ids)
    for inc in incidents:
        if wanted & set(inc.get("alerts") or ()):
            return inc
    for inc in incidents:
        if any(same_container(container, c) for c in inc.get("containers") or ()):
            return inc
    return None


def action_entries(timeline: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The timeline's action entries, oldest first as given."""
    return [e for e in timeline if e.get("kind") == "action"]


def _action_for(entry: Mapping[str, Any], container: str, name: str, only_one: bool) -> bool:
    """The action entry concerns the container (named in its data; an entry naming none concerns the
    incident's containers: only this one when `only_one`)."""
    data = entry.get("data") or {}
    target = data.get("container") or data.get("container_id")
    if target:
        return same_container(container, str(target)) or str(target) == name
    return only_one


def is_contained(
    container: str,
    incident: Mapping[str, Any] | None,
    timeline: Sequence[Mapping[str, Any]],
    name: str = "",
) -> bool:
    """Module docstring, *contained*."""
    if incident is None:
        return False
    others = [c for c in incident.get("containers") or () if not same_container(container, c)]
    only_one = not others
    for e in action_entries(timeline):
        data = e.get("data") or {}
        ok = data.get("action") in CONTAINING_ACTIONS and data.get("ok") is True
        if ok and _action_for(e, container, name, only_one):
            return True
    return incident.get("status") == "contained" and only_one


def held(container: str, timeline: Iterable[Mapping[str, Any]], name: str = "") -> tuple[bool, bool]:
    """Whether the timeline leaves the container (isolated, frozen): its last successful isolate or
    unisolate, freeze or thaw (an action naming no container is not counted: the drill releases
    what it knows it holds)."""
    isolated = frozen = False
    for e in action_entries(timeline):
        data = e.get("data") or {}
        if data.get("ok") is not True or not _action_for(e, container, name, False):
            continue
        match data.get("action"):
            case "isolate" | "unisolate" as a:
                isolated = a == "isolate"
            case "freeze" | "thaw" as a:
                frozen = a == "freeze"
    return isolated, frozen


def _killed(container: str, timeline: Sequence[Mapping[str, Any]], name: str, only_one: bool) -> bool:
    return any(
        (e.get("data") or {}).get("action") == "kill"
        and (e.get("data") or {}).get("ok") is True
        and _action_for(e, container, name, only_one)
        for e in action_entries(timeline)
    )


def result_of(
    scenario: Scenario,
    container: str,
    steps: Sequence[StepResult],
    alerts: Sequence[Mapping[str, Any]],
    incidents: Sequence[Mapping[str, Any]],
    timelines: Mapping[str, Sequence[Mapping[str, Any]]],
    name: str = "",
) -> DrillResult:
    """The scenario's result from the alerts of its container, the incidents and their timelines
    (by incident id). Alerts of other containers are ignored."""
    mine = [a for a in alerts if same_container(container, _container_of(a))]
    mine.sort(key=lambda a: str(a.get("time") or ""))
    rules = list(dict.fromkeys(str(a.get("rule")) for a in mine))
    ids = [i for i in (_alert_id(a) for a in mine) if i]
    missing = scenario.missing(rules)
    inc = find_incident(container, ids, incidents)
    timeline = timelines.get(str(inc["id"]), ()) if inc is not None else ()
    only_one = inc is not None and all(same_container(container, c) for c in inc.get("containers") or ())
    recorded = any((a.get("output_fields") or {}).get("stockade.blocked") is True for a in mine)
    denied = any(s.denied for s in steps)
    blocked = denied and (recorded or _killed(container, timeline, name, only_one))
    r = DrillResult(
        scenario=scenario.name,
        container=container,
        container_name=name,
        detected=bool(mine),
        blocked=blocked,
        incident=str(inc["id"]) if inc is not None else None,
        contained=is_contained(container, inc, timeline, name),
        expected_fired=not missing,
        rules=rules,
        alerts=ids,
        missing=missing,
        steps=list(steps),
    )
    r.detail = _detail(r)
    return r


def _detail(r: DrillResult) -> str:
    parts: list[str] = []
    if not r.detected:
        parts.append("no alert")
    elif r.missing:
        parts.append("expected but not fired: " + ", ".join(r.missing))
    for s in r.steps:
        if s.returncode == 0:
            continue
        said = s.output.splitlines()[-1] if s.output else ""
        if s.denied:
            by = "by Stockade" if r.blocked else "not by Stockade"
            parts.append(f"{s.argv[0]} refused ({by}, exit {s.returncode})" + (f": {said}" if said else ""))
        else:
            parts.append(f"{s.argv[0]} exited {s.returncode}" + (f": {said}" if said else ""))
    return "; ".join(parts)
