"""POST /api/v1/ingest/*: events and alerts pushed to the manager over HTTP.

* ``/ingest/falco``: what Falco's ``http_output`` and falcosidekick's webhook send (one alert JSON
  object; arrays and JSON Lines too). Each alert becomes an event (its output fields) carrying the
  alert in ``meta["falco_alert"]``; the runtime forwards the alert as it is (store + sinks) and
  evaluates the event with Stockade's rules.
* ``/ingest/k8s-audit``: the Kubernetes API server's audit webhook (an ``EventList``).
* ``/ingest/events``: syscall events (flat objects keyed by Falco field names) from an agent, as JSON
  Lines or a JSON array. Bad records are counted and reported; the good ones are kept.

Bodies are read with a size cap (413), checked for a JSON content type (415), and decoded with the
error location (400). The runtime's blocking work runs in the thread pool, off the event loop.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from stockade.api.body import (
    MAX_REPORTED_ERRORS,
    LineResult,
    Undecodable,
    decode_records,
    read_body,
    require_json_type,
)
from stockade.api.deps import MaxBodyDep, RuntimeDep
from stockade.api.problem import Problem, problem_responses
from stockade.model import apipaths as paths
from stockade.model.alert import Alert
from stockade.model.event import EVENT_ID_KEY, Event
from stockade.model.timeutil import now_ns, parse_time_ns
from stockade.sources.falco_json import alert_to_event, parse_falco_http_body
from stockade.sources.interface import SourceStats
from stockade.sources.k8s_audit import parse_audit_webhook_body

#: every ingestion endpoint may refuse a body: not JSON (400), too large (413), not a JSON type (415)
router = APIRouter(tags=["ingest"], responses=problem_responses(400, 413, 415))


class IngestResult(BaseModel):
    """What an ingestion accepted and rejected (with the first reasons), and the alerts it raised."""

    accepted: int
    rejected: int = 0
    #: the first few problems, "line N: why"
    errors: list[str] = []
    #: alerts Stockade's engine produced from the accepted events
    alerts: int = 0


def _body_doc(description: str, *media: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                m: {"schema": schema if m.rsplit("/", 1)[-1] == "json" else {"type": "string"}} for m in media
            },
        }
    }


def _reject_all(res: LineResult, accepted: int = 0) -> Problem:
    detail = "no valid record in the body" + (f": {res.errors[0]}" if res.errors else " (it is empty)")
    return Problem(
        400,
        detail,
        kind="invalid-input",
        title="Nothing accepted",
        accepted=accepted,
        rejected=res.rejected,
        errors=res.errors,
    )


def time_in_range(ns: int | None) -> bool:
    """Whether `ns` fits the signed 64-bit nanoseconds storage uses (None: no time, fine)."""
    return ns is None or -(2**63) <= ns < 2**63


# --- Falco alerts -------------------------------------------------------------------------------


@router.post(
    paths.INGEST_FALCO,
    response_model=IngestResult,
    summary="Ingest Falco alerts (Falco http_output, falcosidekick webhook)",
    openapi_extra=_body_doc(
        "One Falco JSON alert (as http_output and falcosidekick send it), a JSON array of alerts, or JSON Lines",
        "application/json",
        "application/x-ndjson",
    ),
)
async def ingest_falco(request: Request, runtime: RuntimeDep, max_body: MaxBodyDep) -> dict[str, Any]:
    """Each alert is stored and sent to the sinks as it is, and its event evaluated by Stockade's rules."""
    require_json_type(request)
    body = await read_body(request, max_body)
    # raises SourceError (a 400 problem) naming the first item or line that is not an alert
    dicts = await run_in_threadpool(parse_falco_http_body, body, request.headers.get("content-type"))
    res = LineResult()
    alerts: list[Alert] = []
    events: list[Event] = []
    for i, d in enumerate(dicts, start=1):
        try:
            alert = Alert.from_falco_json(d)
        except (TypeError, ValueError, AttributeError) as e:
            res.bad(f"alert {i}", f"invalid alert: {e}")
            continue
        event = alert_to_event(d, "http:falco")
        if not (time_in_range(alert.time_ns) and time_in_range(event.time_ns)):
            res.bad(f"alert {i}", "time out of range")
            continue
        st = d.get("stockade")
        if isinstance(d.get("uuid"), str) and d["uuid"] and not (isinstance(st, dict) and st.get("id")):
            # falcosidekick's alert id becomes ours: a retried POST replaces instead of duplicating
            d["stockade"] = {**(st if isinstance(st, dict) else {}), "id": d["uuid"]}
        alerts.append(alert)
        events.append(event)
    if not alerts:
        raise _reject_all(res)
    # each event carries its alert in meta["falco_alert"]: the runtime forwards it (store + sinks),
    # linked to the event, and evaluates the event with Stockade's rules
    produced = await run_in_threadpool(runtime.ingest, events)
    return {"accepted": len(alerts), "rejected": res.rejected, "errors": res.errors, "alerts": produced}


# --- Kubernetes audit -----------------------------------------------------------------------------


@router.post(
    paths.INGEST_K8S_AUDIT,
    response_model=IngestResult,
    summary="Kubernetes API server audit webhook (audit.k8s.io EventList)",
    openapi_extra=_body_doc("An audit.k8s.io/v1 EventList (or a single Event)", "application/json"),
)
async def ingest_k8s_audit(request: Request, runtime: RuntimeDep, max_body: MaxBodyDep) -> dict[str, Any]:
    """Each audit event is evaluated by the Kubernetes audit rules (and stored as the configuration says)."""
    require_json_type(request)
    body = await read_body(request, max_body)
    # items that are not audit Events are counted in `stats` (SourceError, a 400, if none is usable)
    stats = SourceStats()
    items = await run_in_threadpool(parse_audit_webhook_body, body, stats)
    res = LineResult(rejected=stats.malformed, errors=stats.errors[:MAX_REPORTED_ERRORS])
    events: list[Event] = []
    for i, item in enumerate(items, start=1):
        ev = Event("k8s_audit", item, origin="http:k8s-audit")
        if not time_in_range(ev.time_ns):
            res.bad(f"item {i}", "time out of range")
            continue
        events.append(ev)
    if res.rejected and not events:
        raise _reject_all(res)
    produced = await run_in_threadpool(runtime.ingest, events) if events else 0
    return {"accepted": len(events), "rejected": res.rejected, "errors": res.errors, "alerts": produced}


# --- syscall events from agents -------------------------------------------------------------------


def check_syscall_event(d: Any) -> str | None:
    """Why `d` is not a syscall event (None when it is); normalises an RFC 3339 evt.time in place."""
    if not isinstance(d, dict):
        return f"expected an event object, got {type(d).__name__}"
    et = d.get("evt.type")
    if not isinstance(et, str) or not et:
        return "missing 'evt.type'" if et is None else "'evt.type' must be a non-empty string"
    t = d.get("evt.time")
    if t is not None and not (isinstance(t, int) and not isinstance(t, bool)):
        parsed = parse_time_ns(t) if isinstance(t, str) else None
        if parsed is None:
            return "'evt.time' must be integer nanoseconds since the epoch or an RFC 3339 time"
        d["evt.time"] = t = parsed
    if t is not None and not time_in_range(t):
        return "'evt.time' out of range"
    return None


@router.post(
    paths.INGEST_EVENTS,
    response_model=IngestResult,
    summary="Ingest syscall events (JSON Lines or a JSON array of flat Falco-field objects)",
    description=(
        "Each record is a flat object keyed by Falco field names and must have `evt.type`. "
        "Bad records are counted and the first few reported; the answer is 200 when at least one "
        "record was accepted, else a 400 problem with the same counts. A record without `evt.time` "
        "gets the time it was received."
    ),
    openapi_extra=_body_doc(
        "Events as JSON Lines or a JSON array", "application/x-ndjson", "application/json"
    ),
)
async def ingest_events(
    request: Request,
    runtime: RuntimeDep,
    max_body: MaxBodyDep,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Syscall events evaluated by the rules (or, with evaluate=false, an agent's evidence, stored)."""
    kind = require_json_type(request)
    body = await read_body(request, max_body)
    records, label = decode_records(body, kind)
    res = LineResult()
    events: list[Event] = []
    received = now_ns()
    for pos, d in records:
        why = d.why if isinstance(d, Undecodable) else check_syscall_event(d)
        if why is not None:
            res.bad(f"{label} {pos}", why)
            continue
        d.setdefault("evt.time", received)
        eid = d.pop(EVENT_ID_KEY, None)  # an agent's own id, which its alerts refer to
        events.append(
            Event("syscall", d, origin=f"http:{label} {pos}", id=eid if isinstance(eid, str) else None)
        )
    if not events:
        raise _reject_all(res)
    if not evaluate:
        # an agent's evidence: its own engine evaluated these already, the manager keeps them
        await run_in_threadpool(runtime.record, events)
        return {"accepted": len(events), "rejected": res.rejected, "errors": res.errors, "alerts": 0}
    produced = await run_in_threadpool(runtime.ingest, events)
    return {"accepted": len(events), "rejected": res.rejected, "errors": res.errors, "alerts": produced}


# --- alerts from Stockade agents ------------------------------------------------------------------


@router.post(
    paths.INGEST_ALERTS,
    response_model=IngestResult,
    summary="Ingest alerts raised by a Stockade agent (Falco JSON with the `stockade` object)",
    description=(
        "Alerts an agent's engine raised, stored and sent to the manager's sinks as they are (no rule "
        "evaluation; an alert id already stored is replaced, so a retried POST does not duplicate)."
    ),
    openapi_extra=_body_doc(
        "A JSON array of alerts, one alert, or JSON Lines", "application/json", "application/x-ndjson"
    ),
)
async def ingest_alerts(request: Request, runtime: RuntimeDep, max_body: MaxBodyDep) -> dict[str, Any]:
    """An agent's alerts, stored and sent to the sinks."""
    kind = require_json_type(request)
    body = await read_body(request, max_body)
    records, label = decode_records(body, kind)
    res = LineResult()
    alerts: list[Alert] = []
    for pos, d in records:
        if isinstance(d, Undecodable):
            res.bad(f"{label} {pos}", d.why)
            continue
        if not isinstance(d, dict) or not isinstance(d.get("rule"), str) or "output" not in d:
            res.bad(f"{label} {pos}", "not an alert (needs rule and output)")
            continue
        try:
            alert = Alert.from_falco_json(d)
        except (TypeError, ValueError, AttributeError) as e:
            res.bad(f"{label} {pos}", f"invalid alert: {e}")
            continue
        if not time_in_range(alert.time_ns):
            res.bad(f"{label} {pos}", "time out of range")
            continue
        alerts.append(alert)
    if not alerts:
        raise _reject_all(res)
    n = await run_in_threadpool(runtime.ingest_alerts, alerts)
    return {"accepted": n, "rejected": res.rejected, "errors": res.errors, "alerts": 0}
