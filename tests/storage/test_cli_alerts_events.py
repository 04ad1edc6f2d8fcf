"""`stockade alerts` and `stockade events`, through main() and once as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.cli import common
from stockade.cli.main import main
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.model.timeutil import now_ns
from stockade.storage.store import Store

REPO = Path(__file__).resolve().parents[2]
S = 1_000_000_000
AUDIT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "verb": "create",
    "user": {"username": "alice"},
    "objectRef": {"resource": "pods", "namespace": "prod", "name": "web-1", "subresource": "exec"},
    "stageTimestamp": "2023-11-14T22:13:20.000000Z",
}


@pytest.fixture(autouse=True)
def fresh_cli_state() -> Iterator[None]:
    common.STATE = common.CliState()
    yield
    common.STATE = common.CliState()


@pytest.fixture
def populated(tmp_path: Path, make_alert: Any, make_event: Any) -> dict[str, Any]:
    """A database with alerts 10 min, 2 h and 3 days old, and a few events."""
    url = f"sqlite:///{tmp_path / 'data' / 'stockade.db'}"
    now = now_ns()
    alerts = {
        "recent": make_alert(
            rule="Terminal shell in container",
            priority="Notice",
            time_ns=now - 600 * S,
            container="3ad7b26ded6d",
            output="A shell was spawned in a container (user=root shell=bash)",
            workload="k8s:prod/deployment/web",
        ),
        "hours": make_alert(
            rule="Read sensitive file untrusted",
            priority="Warning",
            time_ns=now - 7200 * S,
            container="9f8e7d6c5b4a",
            output="Sensitive file opened for reading (file=/etc/shadow)",
        ),
        "days": make_alert(
            rule="Attach to pod",
            priority="Critical",
            time_ns=now - 3 * 86400 * S,
            container=None,
            source="k8s_audit",
            output="Attach/Exec to pod (user=alice pod=web-1)",
        ),
    }
    events = {
        "cat": make_event(
            now - 60 * S, **{"evt.type": "openat", "proc.name": "cat", "fd.name": "/etc/shadow"}
        ),
        "bash": make_event(now - 30 * S, **{"evt.type": "execve", "proc.name": "bash", "proc.pid": 4242}),
        "audit": Event("k8s_audit", dict(AUDIT), origin="audit.log:1"),
    }
    with Store(url) as s:
        s.add_alerts(list(alerts.values()))
        s.add_events(list(events.values()))
    return {"url": url, "dir": str(tmp_path / "data"), "alerts": alerts, "events": events}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def test_alerts_list_text(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    code, out, err = run(capsys, "alerts", "list", "--db", populated["url"])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "PRIORITY", "RULE"]
    assert "Terminal shell in container" in lines[1] and "k8s:prod/deployment/web" in lines[1]
    assert "Read sensitive file untrusted" in lines[2] and "9f8e7d6c5b4a" in lines[2]
    assert "Attach to pod" in lines[3] and "Critical" in lines[3]
    assert populated["alerts"]["recent"].id[:12] in lines[1]


def test_alerts_list_json_global_and_local_output(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    a = populated["alerts"]
    code, out, _ = run(capsys, "--output", "json", "alerts", "list", "--db", populated["url"])
    assert code == 0
    got = json_lines(out)
    assert got == [a["recent"].to_falco_json(), a["hours"].to_falco_json(), a["days"].to_falco_json()]
    # the subcommand's -o overrides the global option, both ways
    code, out, _ = run(capsys, "-o", "json", "alerts", "list", "-o", "text", "--db", populated["url"])
    assert code == 0 and out.startswith("TIME")
    code, out, _ = run(capsys, "alerts", "list", "-o", "json", "--db", populated["url"])
    assert len(json_lines(out)) == 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--since", "1h"], ["recent"]),
        (["--since", "1d"], ["recent", "hours"]),
        (["--until", "1h"], ["hours", "days"]),
        (["--since", "1d", "--until", "1h"], ["hours"]),
        (["--priority", "Warning"], ["hours", "days"]),
        (["--priority", "critical"], ["days"]),
        (["--rule", "Attach to pod"], ["days"]),
        (["--source", "k8s_audit"], ["days"]),
        (["--source", "syscall"], ["recent", "hours"]),
        (["--container", "9f8e7d"], ["hours"]),
        (["--grep", "SHADOW"], ["hours"]),
        (["--limit", "1"], ["recent"]),
        (["--grep", "shell", "--priority", "Warning"], []),
    ],
)
def test_alerts_list_filters(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any], args: list[str], expected: list[str]
) -> None:
    code, out, err = run(capsys, "-o", "json", "alerts", "list", "--db", populated["url"], *args)
    assert code == 0, err
    ids = {v.id: k for k, v in populated["alerts"].items()}
    assert [ids[d["stockade"]["id"]] for d in json_lines(out)] == expected


def test_alerts_list_rfc3339_since(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    from stockade.model.timeutil import format_time_ns

    t = format_time_ns(populated["alerts"]["hours"].time_ns)
    _, out, _ = run(capsys, "-o", "json", "alerts", "list", "--db", populated["url"], "--since", t)
    assert [d["rule"] for d in json_lines(out)] == [
        "Terminal shell in container",
        "Read sensitive file untrusted",
    ]


def test_alerts_list_empty_and_limited(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    code, out, _ = run(capsys, "alerts", "list", "--db", populated["url"], "--rule", "no such rule")
    assert (code, out.strip()) == (0, "no alerts")
    code, out, _ = run(capsys, "alerts", "list", "--db", populated["url"], "--limit", "2")
    assert code == 0 and "2 of 3 alerts" in out


def test_alerts_show(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    a: Alert = populated["alerts"]["hours"]
    code, out, _ = run(capsys, "alerts", "show", a.id[:8], "--db", populated["url"])
    assert code == 0
    assert f"Alert {a.id}" in out
    assert "rule:      Read sensitive file untrusted" in out
    assert "container.id  9f8e7d6c5b4a" in out
    code, out, _ = run(capsys, "-o", "json", "alerts", "show", a.id, "--db", populated["url"])
    assert json_lines(out) == [a.to_falco_json()]


def test_alerts_data_dir_and_config(
    capsys: pytest.CaptureFixture[str],
    populated: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, _ = run(capsys, "-o", "json", "alerts", "list", "--data-dir", populated["dir"])
    assert code == 0 and len(json_lines(out)) == 3
    cfg = tmp_path / "stockade.yaml"
    cfg.write_text(f"data_dir: {populated['dir']}\n")
    code, out, _ = run(capsys, "-o", "json", "--config", str(cfg), "alerts", "list")
    assert code == 0 and len(json_lines(out)) == 3
    monkeypatch.setenv("STOCKADE_STORAGE__URL", populated["url"])
    common.STATE = common.CliState()
    code, out, _ = run(capsys, "-o", "json", "alerts", "list", "--grep", "shadow")
    assert code == 0 and len(json_lines(out)) == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["alerts", "show", "ffffffffffff"], 3, "stockade: error: no alert with id 'ffffffffffff'"),
        (["alerts", "list", "--since", "yesterday"], 2, "--since: expected a duration"),
        (["alerts", "list", "--priority", "Severe"], 2, "--priority: unknown priority 'Severe'"),
        (["alerts", "list", "--source", "ebpf"], 2, "--source must be one of syscall, k8s_audit"),
        (["alerts", "list", "-o", "yaml"], 2, "--output must be 'text' or 'json'"),
        (["events", "list", "--where", "proc.name"], 2, "--where: expected FIELD=VALUE"),
        (["events", "show", "000000"], 3, "no event with id '000000'"),
    ],
)
def test_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any], args: list[str], code: int, message: str
) -> None:
    got, _, err = run(capsys, *args, "--db", populated["url"])
    assert got == code
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_or_unreachable_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "alerts", "list", "--db", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert code == 1 and "no database at" in err
    assert not (tmp_path / "nothing.db").exists()
    code, _, err = run(capsys, "events", "list", "--db", "postgresql://u:hunter2@127.0.0.1:1/x")
    assert code == 1
    assert err.startswith("stockade: error: postgresql://u:***@127.0.0.1:1/x: cannot connect")
    assert "hunter2" not in err and len(err.strip().splitlines()) == 1


def test_events_list_and_where(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    ev = populated["events"]
    code, out, _ = run(capsys, "events", "list", "--db", populated["url"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "SOURCE", "TYPE"]
    assert "execve" in lines[1] and ev["bash"].id[:12] in lines[1]
    assert "openat" in lines[2] and "/etc/shadow" in lines[2]
    assert "alice create prod/pods/web-1/exec" in lines[3]

    def ids(*args: str) -> list[str]:
        code, out, err = run(capsys, "-o", "json", "events", "list", "--db", populated["url"], *args)
        assert code == 0, err
        return [d["id"] for d in json_lines(out)]

    assert ids("--where", "proc.name=cat") == [ev["cat"].id]
    assert ids("-w", "evt.type=execve", "-w", "proc.pid=4242") == [ev["bash"].id]
    assert ids("-w", "evt.type=execve", "-w", "proc.pid=1") == []
    assert ids("--source", "k8s_audit", "-w", "ka.verb=create") == [ev["audit"].id]
    assert ids("-w", "objectRef.name=web-1") == [ev["audit"].id]
    assert ids("--since", "45s") == [ev["bash"].id]
    assert ids("--until", "45s", "--source", "syscall") == [ev["cat"].id]
    code, out, _ = run(capsys, "events", "list", "--db", populated["url"], "-w", "proc.name=nope")
    assert (code, out.strip()) == (0, "no events")


def test_events_show(capsys: pytest.CaptureFixture[str], populated: dict[str, Any]) -> None:
    e: Event = populated["events"]["cat"]
    code, out, _ = run(capsys, "events", "show", e.id or "", "--db", populated["url"])
    assert code == 0
    assert f"Event {e.id}" in out and "origin:  rec.jsonl:1" in out
    assert "fd.name    /etc/shadow" in out
    code, out, _ = run(capsys, "events", "show", (e.id or "")[:10], "-o", "json", "--db", populated["url"])
    (d,) = json_lines(out)
    assert d["data"] == e.data and d["source"] == "syscall" and d["id"] == e.id
    a: Event = populated["events"]["audit"]
    code, out, _ = run(capsys, "events", "show", a.id or "", "--db", populated["url"])
    assert code == 0 and '"username": "alice"' in out


def test_real_process(populated: dict[str, Any], tmp_path: Path) -> None:
    exe = REPO / ".venv" / "bin" / "stockade"
    if not exe.exists():
        exe = Path(sys.executable).parent / "stockade"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    env["STOCKADE_CONFIG"] = str(tmp_path / "none.yaml")
    (tmp_path / "none.yaml").write_text(f"data_dir: {populated['dir']}\n")
    r = subprocess.run(
        [str(exe), "--output", "json", "alerts", "list", "--priority", "Warning"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert [d["rule"] for d in json_lines(r.stdout)] == ["Read sensitive file untrusted", "Attach to pod"]
    r = subprocess.run(
        [str(exe), "events", "list", "--where", "proc.name=bash"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "execve" in r.stdout and "bash" in r.stdout and "openat" not in r.stdout
    r = subprocess.run(
        [str(exe), "alerts", "show", "nonexistent"], capture_output=True, text=True, env=env, timeout=60
    )
    assert r.returncode == 3
    assert r.stderr.strip() == "stockade: error: no alert with id 'nonexistent'"


def test_bad_values_are_usage_errors_not_tracebacks(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    """typer's own validation errors (here --limit's minimum) are usage errors with exit 2."""
    got, _, err = run(capsys, "alerts", "list", "-n", "0", "--db", populated["url"])
    assert got == 2
    assert "--limit" in err and "Traceback" not in err


def test_a_duration_longer_than_the_epoch_means_from_the_beginning(
    capsys: pytest.CaptureFixture[str], populated: dict[str, Any]
) -> None:
    got, out, err = run(
        capsys, "alerts", "list", "--since", "1000000d", "--db", populated["url"], "-o", "json"
    )
    assert got == 0, err
    assert len(json_lines(out)) == len(populated["alerts"])
    got, out, err = run(capsys, "alerts", "list", "--until", "1000000d", "--db", populated["url"])
    assert got == 0 and "Traceback" not in err
