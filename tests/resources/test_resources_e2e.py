"""Resource behaviour end to end, with real podman containers and `stockade up` as users run it:
two idle containers learn their baselines; then, with every core busy, a CPU burner started in one
raises the resource alert within the configured window while the other stays quiet; the API and
`stockade top --once --output json` show both with their risk columns; and the alert muted for a
workload is counted, not stored, when that workload burns too."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from helpers import busy_cores, wait_until

RULE = "Container CPU above workload baseline"
WINDOW_S = 6.0
INTERVAL_S = 1.0
#: how late the alert may be beyond the window: a sampling interval before the burner shows, one
#: after, the pipeline's store batch (about a second) and the test's polling
SLACK_S = 2 * INTERVAL_S + 3.0
CONFIG: dict[str, Any] = {
    "resources": {
        "interval_s": INTERVAL_S,
        "window_s": WINDOW_S,
        "learn_s": 5,
        "min_samples": 5,
        # a burner on a node whose cores are busy gets about half a core: well above this floor
        "metrics": {"cpu": {"floor": 0.2}},
    },
}
BURN = ["sh", "-c", "while :; do :; done"]


def _rows(up: Any, *ids: str) -> dict[str, dict[str, Any]]:
    """The API's latest rows of these containers."""
    return {r["container_id"]: r for r in up.api("/resources")["items"] if r["container_id"] in ids}


def _resource_alerts(up: Any, cid: str) -> list[dict[str, Any]]:
    return [
        a
        for a in up.api("/alerts", limit=1000)["items"]
        if a["source"] == "resources" and a["output_fields"].get("container.full_id") == cid
    ]


def _ready(up: Any, *ids: str) -> bool:
    rows = _rows(up, *ids)
    return len(rows) == len(ids) and all(
        (r.get("baseline") or {}).get("state") == "ready" for r in rows.values()
    )


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.slow
def test_a_cpu_burner_raises_the_resource_alert_within_the_window(
    podman_container: Any, stockade_up: Any
) -> None:
    idle, burner = podman_container.many([{}, {}])
    up = stockade_up(CONFIG)
    up.start()
    assert wait_until(lambda: _ready(up, idle.id, burner.id), timeout=120, step=0.5), up.log()
    with busy_cores():
        started = time.monotonic()
        burner.exec(BURN, detach=True)
        found = wait_until(lambda: bool(_resource_alerts(up, burner.id)), timeout=WINDOW_S + 60, step=0.2)
        elapsed = time.monotonic() - started
        print(f"resource alert {elapsed:.2f} s after the burner started")
        assert found, f"no resource alert for the burner: {up.log()[-3000:]}"
        assert elapsed <= WINDOW_S + SLACK_S, f"the alert came {elapsed:.1f} s after the burner started"
        time.sleep(WINDOW_S)  # another whole window: the idle container must stay quiet
        rows = _rows(up, idle.id, burner.id)
    [alert] = _resource_alerts(up, burner.id)
    assert _resource_alerts(up, idle.id) == []
    b, i = rows[burner.id], rows[idle.id]
    assert alert["rule"] == RULE and "T1496" in alert["tags"] and alert["priority"] == "Warning"
    of = alert["output_fields"]
    assert of["stockade.workload"] == b["workload"] == alert["stockade"]["workload"]
    assert of["container.name"] == burner.name and of["stockade.metric"] == "cpu"
    assert of["stockade.baseline.limit"] >= 0.2 and of["stockade.value"] > of["stockade.baseline.limit"]
    assert len(of["stockade.evidence"]) >= 3 and of["stockade.evidence"][-1]["value"] > 0.2
    assert b["deviating"] == ["cpu"] and b["alerts"] == 1 and b["risk"]["cpu"] > 1
    assert i["deviating"] == [] and i["alerts"] == 0 and i["risk"]["cpu"] < 1
    assert b["workload"] != i["workload"] and i["baseline"]["state"] == "ready"

    hist = up.api(f"/resources/{burner.name}", since="10m")
    assert hist["container_id"] == burner.id and hist["total"] >= 10
    assert max(x["cpu_cores"] or 0 for x in hist["items"]) > 0.2

    top = up.cli("top", "--once", "--output", "json")
    assert top.returncode == 0, top.stderr
    lines = {o["container_id"]: o for o in map(json.loads, top.stdout.splitlines())}
    assert lines[burner.id]["alerts"] == 1 and lines[burner.id]["deviating"] == ["cpu"]
    assert lines[idle.id]["workload"] == i["workload"] and lines[idle.id]["pids"] == 1
    text = up.cli("top", "--once")
    assert text.returncode == 0 and text.stdout.split()[:4] == ["CONTAINER", "WORKLOAD", "CPU", "CPU"]
    [burner_line] = [ln for ln in text.stdout.splitlines() if ln.startswith(burner.name)]
    assert "%!" in burner_line and b["workload"] in burner_line

    # muted for the idle container's workload, its own burner is counted as muted, not stored
    stopped = burner.exec(["killall", "sh"])
    assert stopped.returncode == 0, stopped.stderr
    muted = up.cli("rules", "mute", RULE, "--workload", i["workload"], "--for", "1h", "--reason", "e2e")
    assert muted.returncode == 0, muted.stderr
    with busy_cores():
        r = idle.exec(BURN, detach=True)
        assert r.returncode == 0, r.stderr

        def muted_once() -> bool:
            return int(up.api("/status")["runtime"]["resources"]["counters"].get("muted", 0)) >= 1

        assert wait_until(muted_once, timeout=WINDOW_S + 60, step=0.5), (_rows(up, idle.id), up.log()[-3000:])
    assert _resource_alerts(up, idle.id) == []
    assert _rows(up, idle.id)[idle.id]["deviating"] == ["cpu"]
    assert up.api("/status")["runtime"]["mutes"]["muted"].get(RULE, 0) >= 1

    # a legitimate change: the workload learns again, and its row says so
    again = up.cli("resources", "relearn", i["workload"])
    assert again.returncode == 0 and "learning again" in again.stdout, again.stderr

    def learning() -> bool:
        return (_rows(up, idle.id)[idle.id]["baseline"] or {}).get("state") == "learning"

    assert wait_until(learning, timeout=10)
