"""Alerts grouped into incidents: per workload, container and process tree, within a window;
scored so an advancing attack chain outranks a flood of one noisy rule."""

from __future__ import annotations

from typing import Any

from stockade.incidents.correlate import Correlator, alert_pids, key_of
from stockade.incidents.score import rank_key
from stockade.model.alert import Alert
from stockade.model.attack import tactics_of

S = 1_000_000_000
T0 = 1_800_000_000 * S


def alert(
    rule: str,
    t_s: float,
    *,
    workload: str | None = "image:web",
    container: str | None = "c1",
    priority: str = "Warning",
    tags: list[str] | None = None,
    fields: dict[str, Any] | None = None,
    host: str = "node1",
) -> Alert:
    of: dict[str, Any] = {"container.id": container or "host"}
    of.update(fields or {})
    return Alert(
        time_ns=T0 + int(t_s * S),
        rule=rule,
        priority=priority,
        output=f"{rule} happened",
        output_fields=of,
        source="syscall",
        tags=tags or [],
        hostname=host,
        workload=workload,
    )


def test_tactics_from_falco_tags_and_technique_ids_in_kill_chain_order() -> None:
    assert tactics_of(["T1071", "mitre_execution", "container", "T1552.001", "TA0004"]) == [
        "execution",
        "privilege_escalation",
        "credential_access",
        "command_and_control",
    ]
    assert tactics_of(["shell", "mitre_", "T9999"]) == []


def test_an_attack_chain_in_one_workload_is_one_incident_with_a_timeline() -> None:
    c = Correlator(window_s=600)
    chain = [
        alert("Terminal shell in container", 0, tags=["mitre_execution", "T1059"]),
        alert("Tool downloaded", 5, tags=["mitre_command_and_control", "T1105"], container="c2"),
        alert("Read sensitive file", 9, tags=["mitre_credential_access", "T1552.001"], priority="Error"),
        alert("Outbound connection", 12, tags=["mitre_command_and_control", "T1071"]),
    ]
    results = [c.observe(a) for a in chain]
    assert all(r is not None for r in results)
    first = results[0]
    assert first is not None and first.created
    inc = first.incident
    assert {r.incident.id for r in results if r is not None} == {inc.id}
    assert inc.alert_ids == [a.id for a in chain]
    assert inc.containers == ["c1", "c2"]
    assert inc.tactics == ["execution", "command_and_control", "credential_access"]
    assert inc.priority == "Error"
    assert inc.workload == "image:web" and inc.key == "workload:image:web"
    kinds = [e.kind for r in results if r is not None for e in r.entries]
    assert kinds == ["state", "alert", "alert", "alert", "alert"]


def test_other_workloads_and_quiet_gaps_open_new_incidents() -> None:
    c = Correlator(window_s=600)
    a = c.observe(alert("Shell", 0))
    b = c.observe(alert("Shell", 1, workload="image:db", container="c9"))
    # a Debug alert alone is not an incident, but joins one that is open
    assert c.observe(alert("Noise", 2, workload="image:x", container="cx", priority="Debug")) is None
    joined = c.observe(alert("Noise", 3, priority="Debug"))
    later = c.observe(alert("Shell", 3 + 601))
    assert a and b and joined and later
    assert joined.incident.id == a.incident.id
    assert len({a.incident.id, b.incident.id, later.incident.id}) == 3


def test_a_host_process_of_the_same_tree_joins_the_container_incident() -> None:
    c = Correlator(window_s=600)
    first = c.observe(alert("Shell", 0, fields={"proc.pid": 4242, "proc.ppid": 4200}))
    host = alert("Host shell", 3, workload=None, container=None, fields={"proc.ppid": 4242, "proc.pid": 5000})
    assert key_of(host) == "host:node1"
    assert alert_pids(host) == [4242, 5000]
    second = c.observe(host)
    assert first and second and second.incident.id == first.incident.id
    # the same pid on another host is another process
    other = c.observe(
        alert("Host shell", 4, workload=None, container=None, host="node2", fields={"proc.ppid": 4242})
    )
    assert other is not None and other.incident.id != first.incident.id


def test_a_resolved_incident_takes_no_more_alerts() -> None:
    c = Correlator(window_s=600)
    first = c.observe(alert("Shell", 0))
    assert first is not None
    first.incident.status = "resolved"
    c.replace(first.incident)
    again = c.observe(alert("Shell", 1))
    assert again is not None and again.created and again.incident.id != first.incident.id


def test_an_advancing_chain_outranks_a_flood_of_one_rule() -> None:
    c = Correlator(window_s=600)
    flood = None
    for i in range(500):
        flood = c.observe(alert("Noisy write below etc", i * 0.1, workload="image:noisy", container="n1"))
    chain = None
    for i, tags in enumerate(
        [["mitre_execution"], ["mitre_credential_access"], ["mitre_command_and_control"]]
    ):
        chain = c.observe(alert(f"step {i}", i, tags=tags))
    assert flood is not None and chain is not None
    assert chain.incident.score > flood.incident.score
    ranked = sorted([flood.incident, chain.incident], key=rank_key)
    assert ranked[0] is chain.incident
    chain.incident.status = "resolved"
    assert sorted([flood.incident, chain.incident], key=rank_key)[0] is flood.incident


def test_notification_clock() -> None:
    c = Correlator(window_s=600, notify_within_s=72 * 3600)
    r = c.observe(alert("Shell", 0))
    assert r is not None and r.incident.notify_by_ns == T0 + 72 * 3600 * S
    assert r.incident.summary(now_ns=T0 + 3600 * S)["notify_in_s"] == 71 * 3600


def test_quiet_incidents_leave_memory_but_not_the_store(tmp_path: Any) -> None:
    from stockade.config import IncidentsConfig
    from stockade.runtime.incidents import IncidentService
    from stockade.storage.incidents import IncidentStore
    from stockade.storage.store import Store

    now = [T0]
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        svc = IncidentService(IncidentsConfig(window_s=600), IncidentStore(store), clock=lambda: now[0])
        svc.emit(alert("Shell", 0))
        assert svc.drain() and len(svc.correlator.active) == 1
        now[0] = T0 + 700 * S  # quiet for longer than the window
        svc.emit(alert("Shell", 700, workload="image:db", container="c9"))
        assert svc.drain()
        assert [i.workload for i in svc.correlator.active.values()] == ["image:db"]
        assert len(IncidentStore(store).ranked()) == 2  # the quiet one is still an open incident
