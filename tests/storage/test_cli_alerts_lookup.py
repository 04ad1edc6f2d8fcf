"""Finding alerts the way the table shows them: --container by name, id, prefix or workload, --rule in
any case; and `events list` saying which events are stored."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from helpers import in_parallel
from stockade.model.alert import Alert
from stockade.storage.filters import AlertFilter
from stockade.storage.store import Store

STOCKADE = str(Path(sys.executable).parent / "stockade")
WEB_ID = "3ad7b26ded6d0123456789abcdef0123456789abcdef0123456789abcdef0123"
DB_ID = "9f8e7d6c5b4a0123456789abcdef0123456789abcdef0123456789abcdef0123"


def alerts(make_alert: Any) -> dict[str, Alert]:
    web = make_alert(rule="Terminal shell in container", container=WEB_ID, workload="container:web")
    web.output_fields["container.name"] = "web"
    pod = make_alert(rule="Read sensitive file untrusted", container=DB_ID, workload="prod/db-0")
    pod.output_fields["container.name"] = "postgres"
    host = make_alert(rule="Terminal shell in container", container="host", workload="host")
    return {"web": web, "pod": pod, "host": host}


@pytest.fixture
def stored(db_url: str, make_alert: Any) -> tuple[str, dict[str, Alert]]:
    made = alerts(make_alert)
    with Store(db_url) as s:
        s.add_alerts(list(made.values()))
    return db_url, made


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ("web", {"web"}),  # the name, as the table shows it (container:web)
        ("container:web", {"web"}),  # the table's cell itself
        (WEB_ID[:12], {"web"}),  # the short id
        (WEB_ID, {"web"}),
        ("3ad7", {"web"}),  # an id prefix
        ("postgres", {"pod"}),  # a Kubernetes container by its name
        ("prod/db-0", {"pod"}),  # ... or the pod as the table shows it
        ("host", {"host"}),
        ("nope", set()),
    ],
)
def test_container_by_name_id_prefix_or_workload(
    stored: tuple[str, dict[str, Alert]], container: str, expected: set[str]
) -> None:
    url, made = stored
    with Store(url, read_only=True) as s:
        got = {a.id for a in s.list_alerts(AlertFilter(container_id=container))}
    assert got == {made[k].id for k in expected}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("Terminal shell in container", {"web", "host"}),
        ("terminal SHELL in container", {"web", "host"}),
        ("Terminal shell", set()),  # a name, not a part of one (--grep finds parts)
    ],
)
def test_rule_in_any_case(stored: tuple[str, dict[str, Alert]], rule: str, expected: set[str]) -> None:
    url, made = stored
    with Store(url, read_only=True) as s:
        assert {a.id for a in s.list_alerts(rule=rule)} == {made[k].id for k in expected}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def test_the_cli_finds_what_its_table_shows(tmp_path: Path, make_alert: Any) -> None:
    url = f"sqlite:///{tmp_path / 'stockade.db'}"
    made = alerts(make_alert)
    with Store(url) as s:
        s.add_alerts(list(made.values()))
    containers = ("web", "container:web", WEB_ID[:12])
    rule = "TERMINAL shell IN container"
    r, *found = in_parallel(
        [
            partial(run, "alerts", "list", "--db", url),
            *(
                partial(run, "alerts", "list", "--db", url, "--container", c, "--rule", rule)
                for c in containers
            ),
        ]
    )
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if made["web"].id[:12] in line)
    assert "container:web" in row
    for container, r in zip(containers, found, strict=True):
        assert r.returncode == 0, r.stderr
        ids = [line.split()[-1] for line in r.stdout.splitlines()[1:]]
        assert ids == [made["web"].id[:12]], (container, r.stdout)


@pytest.mark.parametrize(
    ("record", "note"),
    [
        (None, "only events that raised an alert are stored (storage.record_events: alerts)"),
        ("none", "no events are stored (storage.record_events: none)"),
        ("all", None),
    ],
)
def test_events_list_says_which_events_are_stored(
    tmp_path: Path, make_event: Any, record: str | None, note: str | None
) -> None:
    cfg = tmp_path / "stockade.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n" + (f"storage:\n  record_events: {record}\n" if record else ""))
    with Store(f"sqlite:///{tmp_path / 'stockade.db'}") as s:
        s.add_events([make_event(**{"evt.type": "execve", "proc.name": "bash"})])
    r, js = in_parallel(
        [
            partial(run, "-c", str(cfg), "events", "list"),
            partial(run, "-c", str(cfg), "-o", "json", "events", "list"),
        ]
    )
    assert r.returncode == 0, r.stderr
    assert "bash" in r.stdout
    if note is None:
        assert r.stderr == ""
    else:
        assert r.stderr.startswith(f"note: {note}")
        assert "set storage.record_events: all" in r.stderr
    assert js.returncode == 0 and js.stderr == ""  # JSON output is for programs: no note
