"""stdout sink: Falco text and JSON Lines, closed pipes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from stockade.model.alert import Alert
from stockade.sinks.lines import format_text_line
from stockade.sinks.stdout import StdoutSink

REPO = Path(__file__).resolve().parents[2]


def test_json_lines(make_alert: Callable[..., Alert]) -> None:
    buf = io.BytesIO()
    sink = StdoutSink("json", stream=buf)
    alerts = [make_alert(i) for i in range(3)]
    for a in alerts:
        sink.emit(a)
    sink.close()
    lines = buf.getvalue().split(b"\n")
    assert lines[-1] == b""
    docs = [orjson.loads(x) for x in lines[:-1]]
    assert docs == [orjson.loads(orjson.dumps(a.to_falco_json())) for a in alerts]
    assert docs[0]["time"] == "2024-11-22T18:13:20.123456789Z"
    assert Alert.from_falco_json(docs[1]).id == alerts[1].id
    assert sink.stats.sent == 3


def test_text_format(make_alert: Callable[..., Alert]) -> None:
    buf = io.BytesIO()
    sink = StdoutSink("text", stream=buf)
    a = make_alert(0)
    sink.emit(a)
    sink.emit(make_alert(1, count=42))
    sink.emit(make_alert(2, output="line1\nline2"))
    lines = buf.getvalue().decode().split("\n")
    hhmmss = time.strftime("%H:%M:%S", time.localtime(a.time_ns // 1_000_000_000))
    assert lines[0] == f"{hhmmss}.123456789: Warning {a.output}"
    assert lines[1].endswith(" (repeated 42 times)")
    assert lines[2].endswith(": Warning line1\\nline2")
    assert len(lines) == 4 and lines[3] == ""


def test_text_iso8601(make_alert: Callable[..., Alert]) -> None:
    line = format_text_line(make_alert(0, priority="Critical", output="x"), iso8601=True)
    assert line == b"2024-11-22T18:13:20.123456789Z: Critical x\n"


def test_broken_pipe_is_counted_not_raised(make_alert: Callable[..., Alert]) -> None:
    r, w = os.pipe()
    os.close(r)
    with open(w, "wb") as stream:
        sink = StdoutSink("json", stream=stream)
        sink.emit(make_alert(0))
        sink.emit(make_alert(1))
        sink.close()
        assert sink.stats.failed == 2 and sink.stats.sent == 0
        assert any("broken pipe" in e for e in sink.errors.errors)
        try:
            stream.close()
        except BrokenPipeError:
            pass


def test_stdout_into_head_exits_cleanly(tmp_path: Path) -> None:
    """`stockade ... | head -1`: no traceback, no 'Exception ignored' noise."""
    script = tmp_path / "emit.py"
    script.write_text(
        "from stockade.model.alert import Alert\n"
        "from stockade.sinks.stdout import StdoutSink\n"
        "s = StdoutSink('text')\n"
        "for i in range(20000):\n"
        "    s.emit(Alert(i, 'r', 'Warning', 'out %d' % i, {}, 'syscall', [], 'h'))\n"
        "s.close()\n"
        "import sys; sys.stderr.write('failed=%d\\n' % s.stats.failed)\n"
    )
    p1 = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    p2 = subprocess.run(["head", "-n", "1"], stdin=p1.stdout, capture_output=True, timeout=60)
    assert p1.stdout is not None
    p1.stdout.close()
    _, err = p1.communicate(timeout=60)
    assert p2.stdout.decode().endswith(": Warning out 0\n")
    assert p1.returncode == 0, err
    assert b"Traceback" not in err and b"Exception ignored" not in err
    assert int(err.decode().split("failed=")[1]) > 0
