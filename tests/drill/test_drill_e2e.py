"""`stockade drill run` as a user runs it: `stockade up` with the eBPF sensor, then the drill as a
process. Every scenario is reported; its `detected`, `rules` and `alerts` agree with what
`stockade alerts list` shows for its container, its `incident` is one `stockade incidents list`
lists with that container; its container is gone afterwards."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from containers import _run
from stockade.drill.scenarios import SCENARIOS

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


#: contains the reverse shell (isolated, then frozen); the drill's clean-up lifts both
PLAYBOOK = """\
apiVersion: stockade.dev/v1alpha1
kind: ResponsePlaybook
metadata: {name: contain-reverse-shell}
spec:
  trigger:
    rules: ["Reverse Shell Command in Container", "Netcat Remote Code Execution in Container"]
  actions:
    - action: isolate
    - action: freeze
"""
CONTAINED = {"reverse-shell"}


def test_drill_reports_what_alerts_and_incidents_show(
    stockade_up: Callable[..., Any], tmp_path: Path
) -> None:
    (tmp_path / "playbook.yaml").write_text(PLAYBOOK)
    # a short aggregation window: the drill waits for the windows its alerts opened to close
    up = stockade_up(
        {"engine": {"aggregate_window_s": 2}, "response": {"playbooks": [str(tmp_path / "playbook.yaml")]}}
    )
    t0 = time.monotonic()
    up.start()
    started = time.monotonic() - t0
    status = up.api("/status")
    assert status["runtime"]["sensor"]["backend"].startswith("ebpf"), status["runtime"]["sensor"]

    t0 = time.monotonic()
    r = up.cli("drill", "run", "--output", "json", "--timeout", "30", timeout=240)
    print(f"stockade up: {started:.1f} s, drill run: {time.monotonic() - t0:.1f} s")
    assert r.returncode == 0, f"{r.stderr}\n--- stockade up:\n{up.log()[-3000:]}"
    results = _lines(r.stdout)
    assert [d["scenario"] for d in results] == [s.name for s in SCENARIOS]
    for d in results:
        assert {"scenario", "detected", "blocked", "incident", "contained", "container"} <= d.keys()

    a = up.cli("alerts", "list", "--output", "json", "--limit", "10000")
    assert a.returncode == 0, a.stderr
    by_container: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in _lines(a.stdout):
        by_container[str(alert["output_fields"].get("container.id"))].append(alert)
    i = up.cli("incidents", "list", "--output", "json", "--limit", "10000")
    assert i.returncode == 0, i.stderr
    incidents = {inc["id"]: inc for inc in _lines(i.stdout)}

    report = "\n".join(
        json.dumps({k: d[k] for k in ("scenario", "detected", "rules", "detail")}) for d in results
    )
    for d in results:
        mine = by_container.get(d["container"], [])
        assert d["detected"] == bool(mine), report
        assert set(d["alerts"]) == {x["stockade"]["id"] for x in mine}, report
        assert set(d["rules"]) == {x["rule"] for x in mine}, report
        if d["detected"]:
            inc = incidents[d["incident"]]
            assert d["container"] in inc["containers"], (d, inc)
            assert set(d["alerts"]) <= set(inc["alerts"]), (d, inc)
        else:
            assert d["incident"] is None
        # no policy in Protect here: nothing is blocked; the playbook contains the reverse shell
        assert not d["blocked"], d
        assert d["contained"] == (d["scenario"] in CONTAINED), d
        if d["contained"]:
            inc = incidents[d["incident"]]
            assert inc["status"] == "contained", inc
            shown = json.loads(up.cli("incidents", "show", inc["id"], "--output", "json").stdout)
            acts = [
                (e["data"].get("action"), e["data"].get("ok"))
                for e in shown["timeline"]
                if e["kind"] == "action"
            ]
            # the playbook's actions, then the drill's clean-up lifting them
            assert acts[:2] == [("isolate", True), ("freeze", True)], acts
            assert {a for a, _ in acts[2:]} == {"thaw", "unisolate"}, acts
    # what this machine's rules see today (docs/drills.md): every scenario
    assert all(d["detected"] and d["expected_fired"] for d in results), report

    left = _run(["podman", "ps", "-a", "--format", "{{.Names}}", "--filter", "label=stockade.drill"])
    assert left.returncode == 0 and left.stdout.split() == [], left.stdout
