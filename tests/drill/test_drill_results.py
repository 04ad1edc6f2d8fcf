"""The drill's reading of the instance's answers (stockade.drill.results), on answers recorded from
a running `stockade up` (trimmed to the keys the drill reads), and its command line's errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from helpers import free_port
from stockade.cli.main import main
from stockade.drill.podman import StepResult
from stockade.drill.results import find_incident, held, is_contained, result_of, same_container
from stockade.drill.runner import sensor_backend
from stockade.drill.scenarios import SCENARIOS, select
from stockade.errors import StockadeError, UsageError

CID = "ea2152fad861"
FULL = CID + "6f0c3a0b1e0e6c1d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d"
OTHER = "0a5dd568b3c7"
MOUNT = select(["escape-mount"])[0]
CRED = select(["credential-read"])[0]

#: GET /api/v1/alerts?container=ea2152fad861 (one item, trimmed)
ALERT: dict[str, Any] = {
    "time": "2026-12-06T23:41:52.211900864Z",
    "rule": "Mount Attempt in Container",
    "priority": "Critical",
    "output_fields": {
        "proc.name": "mount",
        "proc.cmdline": "mount -t tmpfs drill /mnt",
        "container.id": CID,
        "container.name": "stockade-drill-escape-mount-4fdcaf",
    },
    "source": "syscall",
    "stockade": {"id": "9d0f9ece9cd64fdd8968fb841e2fd25b", "count": 5},
}
#: GET /api/v1/incidents (one item, trimmed)
INCIDENT: dict[str, Any] = {
    "id": "inc-20261206-14e406d3",
    "status": "open",
    "score": 80.1,
    "workload": "container/localhost/stockade-drill/stockade-drill-escape-mount-4fdcaf",
    "containers": [CID],
    "alerts": ["9d0f9ece9cd64fdd8968fb841e2fd25b"],
    "pending_actions": [],
}
MOUNT_FAILED = StepResult(
    ("mount", "-t", "tmpfs", "drill", "/mnt"), 1, "mount: permission denied (are you root?)"
)


def _action(action: str, ok: bool, container: str | None = CID) -> dict[str, Any]:
    data: dict[str, Any] = {"action": action, "ok": ok}
    if container is not None:
        data["container"] = container
    return {"seq": 3, "kind": "action", "actor": "playbook", "summary": action, "data": data}


def test_detected_with_its_incident_and_the_expected_rule() -> None:
    r = result_of(MOUNT, CID, [MOUNT_FAILED], [ALERT], [INCIDENT], {})
    d = r.to_dict()
    assert (d["scenario"], d["detected"], d["blocked"], d["contained"]) == (
        "escape-mount",
        True,
        False,
        False,
    )
    assert d["incident"] == "inc-20261206-14e406d3"
    assert d["rules"] == ["Mount Attempt in Container"] and d["expected_fired"] and d["missing"] == []
    assert d["alerts"] == ["9d0f9ece9cd64fdd8968fb841e2fd25b"]
    # refused by the runtime's defaults, not by Stockade: said, and not counted as blocked
    assert d["detail"] == "mount refused (not by Stockade, exit 1): mount: permission denied (are you root?)"


def test_other_containers_alerts_are_not_the_scenarios() -> None:
    theirs = copy.deepcopy(ALERT)
    theirs["output_fields"]["container.id"] = OTHER
    r = result_of(MOUNT, CID, [MOUNT_FAILED], [theirs], [INCIDENT], {})
    assert not r.detected and r.rules == [] and r.alerts == []
    assert r.missing == ["Mount Attempt in Container"] and "no alert" in r.detail
    # its incident is still found by the container it lists
    assert r.incident == INCIDENT["id"]
    assert result_of(MOUNT, CID, [], [], [], {}).incident is None


def test_a_falco_rule_standing_in_for_the_packs_meets_the_expectation() -> None:
    falco = copy.deepcopy(ALERT) | {"rule": "Read sensitive file untrusted"}
    assert result_of(CRED, CID, [], [falco], [], {}).expected_fired
    other = copy.deepcopy(ALERT) | {"rule": "Write Below Etc in Container"}
    r = result_of(CRED, CID, [], [other], [], {})
    assert r.detected and not r.expected_fired
    assert r.missing == ["Password Database Read in Container"]


def test_the_incident_holding_its_alerts_wins_over_one_listing_its_container() -> None:
    by_container = INCIDENT | {"id": "inc-a", "alerts": ["elsewhere"]}
    by_alert = INCIDENT | {"id": "inc-b", "containers": [OTHER]}
    assert find_incident(CID, ["9d0f9ece9cd64fdd8968fb841e2fd25b"], [by_container, by_alert]) is by_alert
    assert find_incident(CID, [], [by_container, by_alert]) is by_container
    assert find_incident(CID, [], []) is None


@pytest.mark.parametrize(
    ("timeline", "status", "containers", "expected"),
    [
        ([_action("isolate", True)], "open", [CID], True),
        ([_action("freeze", True, FULL)], "open", [CID, OTHER], True),  # the full id names it too
        ([_action("kill", True, "stockade-drill-escape-mount-4fdcaf")], "open", [CID, OTHER], True),
        ([_action("isolate", False)], "open", [CID], False),  # failed
        ([_action("capture", True)], "open", [CID], False),  # evidence is not containment
        ([_action("notify", True)], "open", [CID], False),
        ([_action("isolate", True, OTHER)], "open", [CID, OTHER], False),  # the other container's
        ([_action("isolate", True, None)], "open", [CID], True),  # no container named: its only one
        ([_action("isolate", True, None)], "open", [CID, OTHER], False),
        ([], "contained", [CID], True),
        ([], "contained", [CID, OTHER], False),  # another container of the incident was contained
        ([], "resolved", [CID], False),
    ],
)
def test_contained(
    timeline: list[dict[str, Any]], status: str, containers: list[str], expected: bool
) -> None:
    inc = INCIDENT | {"status": status, "containers": containers}
    assert is_contained(CID, inc, timeline, "stockade-drill-escape-mount-4fdcaf") is expected
    r = result_of(MOUNT, CID, [], [ALERT], [inc], {inc["id"]: timeline}, "stockade-drill-escape-mount-4fdcaf")
    assert r.contained is expected
    assert not is_contained(CID, None, timeline)


def test_blocked_needs_a_refused_step_and_the_instances_record_of_it() -> None:
    denial = copy.deepcopy(ALERT) | {"rule": "Workload policy denial"}
    denial["output_fields"]["stockade.blocked"] = True
    assert result_of(MOUNT, CID, [MOUNT_FAILED], [ALERT, denial], [INCIDENT], {}).blocked
    ok = StepResult(MOUNT_FAILED.argv, 0, "")
    assert not result_of(MOUNT, CID, [ok], [ALERT, denial], [INCIDENT], {}).blocked
    # killed (128 + SIGKILL) and the incident records the kill
    killed = StepResult(("cat", "/etc/shadow"), 137, "")
    assert killed.denied
    tl = {INCIDENT["id"]: [_action("kill", True)]}
    assert result_of(MOUNT, CID, [killed], [ALERT], [INCIDENT], tl).blocked
    assert not result_of(MOUNT, CID, [killed], [ALERT], [INCIDENT], {}).blocked


def test_same_container() -> None:
    assert same_container(CID, FULL) and same_container(FULL, CID) and same_container(CID, CID)
    assert not same_container(CID, OTHER) and not same_container(CID, None) and not same_container("", CID)
    assert not same_container("ea21", FULL)  # too short to be an id prefix


def test_scenarios_are_distinct_and_selected_by_name() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names)) >= 10
    assert [s.name for s in select([])] == names
    assert [s.name for s in select(["drift", "shell", "drift"])] == ["drift", "shell"]
    with pytest.raises(UsageError, match="no drill scenario 'nope'"):
        select(["shell", "nope"])
    for s in SCENARIOS:
        assert s.steps and s.rules and all(s.rules)


def test_an_instance_without_a_sensor_cannot_run_a_drill() -> None:
    with pytest.raises(StockadeError, match="store only"):
        sensor_backend({"runtime": None, "store": {}})
    with pytest.raises(StockadeError, match="no sensor"):
        sensor_backend({"runtime": {"sensor": {"backend": "none"}}})
    assert sensor_backend({"runtime": {"sensor": {"backend": "ebpf"}}}) == "ebpf"


def test_cli_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "run", "nope"]) == 2
    assert "no drill scenario 'nope'" in capsys.readouterr().err
    port = free_port()
    assert main(["drill", "run", "shell", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"no Stockade running at http://127.0.0.1:{port}" in err and "Traceback" not in err


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["drill", "list", "--output", "json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["scenario"] for d in listed] == [s.name for s in SCENARIOS]
    assert listed[0]["rules"] == [["Shell Spawned in Container"]]


def test_held_follows_the_last_successful_action_for_the_container() -> None:
    tl = [_action("isolate", True), _action("freeze", True), _action("thaw", False)]
    assert held(CID, tl) == (True, True)
    tl += [_action("thaw", True, FULL), _action("unisolate", True, "stockade-drill-x")]
    assert held(CID, tl, "stockade-drill-x") == (False, False)
    assert held(CID, [_action("isolate", True, OTHER), _action("freeze", True, None)]) == (False, False)
