"""The pieces of "loaded" and "exposed": a file's package, a process's mapped files, the files the
sensor saw opened, listening ports, version ranges; on real processes and sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockade.errors import UsageError
from stockade.inventory.exposure import listening_ports
from stockade.inventory.fileindex import FileIndex
from stockade.inventory.loaded import used_files
from stockade.inventory.opens import OpenTracker, code_like
from stockade.inventory.versionspec import VersionSpec
from stockade.model.package import Package

SITE = "/usr/lib/python3/dist-packages"


def _py(name: str, files: tuple[str, ...]) -> Package:
    return Package(
        name, "1.0", "PyPI", f"pkg:pypi/{name}@1.0", f"{SITE}/{name}-1.0.dist-info/METADATA", files=files
    )


def test_file_index_files_directories_and_pyc() -> None:
    bottle = _py("bottle", (f"{SITE}/bottle.py", f"{SITE}/bottle-1.0.dist-info/RECORD"))
    django = _py("django", (f"{SITE}/django/__init__.py", f"{SITE}/django/http/request.py"))
    libc = Package(
        "libc6", "2.36-9", "Debian", "pkg:deb/debian/libc6@2.36-9", "/var/lib/dpkg/status",
        files=("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6"),
    )  # fmt: skip
    jar = Package(
        "log4j-core", "2.14.1", "Maven", "pkg:maven/x/log4j-core@2.14.1", "/app/lib.jar!/log4j-core.jar"
    )
    idx = FileIndex([bottle, django, libc, jar])
    assert idx.lookup(f"{SITE}/bottle.py") == [bottle]
    assert idx.lookup(f"{SITE}/__pycache__/bottle.cpython-311.pyc") == [bottle]
    # a file RECORD does not list, in the package's own directory
    assert idx.lookup(f"{SITE}/django/__pycache__/shortcuts.cpython-311.pyc") == [django]
    assert idx.lookup("/lib/x86_64-linux-gnu/libc.so.6") == [libc]
    assert idx.lookup("/app/lib.jar") == [jar]
    assert idx.lookup(f"{SITE}/other.py") == [] and idx.lookup("/usr/bin/true") == []


def test_used_files_of_a_real_process() -> None:
    files = list(used_files(os.getpid()))
    vias = {f.via for f in files}
    assert vias == {"exe", "maps"}
    assert files[0].via == "exe" and os.path.realpath(sys.executable) == files[0].path
    assert any("libc" in f.path for f in files)
    assert list(used_files(2**22 + 7)) == []  # no such process: nothing


def test_open_tracker_keeps_code_files_bounded() -> None:
    t = OpenTracker(per_container=2, containers=2)
    ev = {"evt.type": "openat", "evt.rawres": 3, "proc.pid": 9, "proc.name": "python3"}
    t.observe({**ev, "fd.name": "/etc/passwd", "container.full_id": "c1"})
    t.observe({**ev, "fd.name": f"{SITE}/a.py", "container.full_id": "c1", "evt.rawres": -2})
    assert t.opened("c1") == {}
    for name in ("a", "b", "c"):
        t.observe({**ev, "fd.name": f"{SITE}/{name}.py", "container.full_id": "c1"})
    assert sorted(t.opened("c1")) == [f"{SITE}/b.py", f"{SITE}/c.py"]
    assert t.stats["paths_dropped"] == 1
    t.observe({**ev, "fd.name": "/srv/node_modules/x/index.js", "container.id": "host"})
    assert list(t.opened("host")) == ["/srv/node_modules/x/index.js"]
    t.forget(set(), time.monotonic())
    assert t.opened("c1") == {} and t.opened("host")
    assert code_like("/x/y.jar") and not code_like("/etc/ld.so.cache")


def test_a_container_that_started_after_the_list_is_not_forgotten() -> None:
    """The vulnerability watch lists the running containers, catalogs them (seconds on a busy
    node), then forgets the opens of those not listed. A container that started meanwhile opened
    its modules once, at its start: they must survive until the next round lists it."""
    t = OpenTracker()
    ev = {"evt.type": "openat", "evt.rawres": 3, "proc.pid": 9, "proc.name": "python3"}
    t.observe({**ev, "fd.name": f"{SITE}/gone.py", "container.full_id": "old"})
    listed_at = time.monotonic()  # the round lists the containers: "new" is not running yet
    t.observe({**ev, "fd.name": f"{SITE}/certifi/core.py", "container.full_id": "new"})
    t.forget({"other"}, listed_at)
    assert t.opened("old") == {}
    assert list(t.opened("new")) == [f"{SITE}/certifi/core.py"]
    t.forget({"other"}, time.monotonic())  # the next round: gone for good
    assert t.opened("new") == {}


def test_listening_ports_of_a_real_socket() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        assert f"tcp/{port}" in listening_ports(os.getpid())
    with socket.socket() as lo:
        lo.bind(("127.0.0.1", 0))
        lo.listen()
        assert f"tcp/{lo.getsockname()[1]}" not in listening_ports(os.getpid())


def _cmp(_eco: str, a: str, b: str) -> int:
    from packaging.version import Version

    va, vb = Version(a), Version(b)
    return (va > vb) - (va < vb)


@pytest.mark.parametrize(
    ("spec", "version", "ok"),
    [
        ("<2.17", "2.14.1", True),
        ("<2.17", "2.17.0", False),
        (">=1.0,<2.0", "1.5", True),
        (">=1.0,<2.0", "2.0", False),
        ("==1.2 || >=3", "3.1", True),
        ("1.2", "1.2.0", True),
        ("introduced:2.0,fixed:2.17", "2.16", True),
        ("introduced:0,last_affected:1.4", "1.4", True),
        ("!=1.4", "1.4", False),
        ("<2", "not a version", False),
    ],
)
def test_version_spec(spec: str, version: str, ok: bool) -> None:
    assert VersionSpec.parse(spec).matches("PyPI", version, _cmp) is ok


@pytest.mark.parametrize("bad", ["<", ">=1.0,<<2", "fixed:"])
def test_version_spec_errors_name_the_part(bad: str) -> None:
    with pytest.raises(UsageError, match="--version"):
        VersionSpec.parse(bad)


def test_scan_child_reports_a_bad_root(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "stockade.inventory.scanchild", str(tmp_path / "nope")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 1 and "not a directory" in r.stderr


def test_the_kernel_filter_keeps_module_opens_and_little_else() -> None:
    from stockade.config import StockadeConfig
    from stockade.engine.build import build_engine
    from stockade.inventory.opens import INTEREST_CONDITION
    from stockade.rules.interest import READ_OK, TYPICAL_PATHS, plan_interest
    from stockade.rules.parser import parse_condition
    from stockade.sensor.ebpf.syscalls import PATH_TARGETS

    engine, _ = build_engine(StockadeConfig(), None)
    targets = {n: t.target for n, t in PATH_TARGETS.items()}
    rules = plan_interest(engine.conditions("syscall"), targets)
    both = plan_interest([*engine.conditions("syscall"), parse_condition(INTEREST_CONDITION)], targets)
    module = b"/usr/local/lib/python3.11/dist-packages/bottle.py"
    assert not rules.keeps("openat", READ_OK, module)
    assert both.keeps("openat", READ_OK, module)
    assert both.keeps("openat", READ_OK, b"/app/lib/log4j-core-2.14.1.jar")
    # the cost: of a node's typical opens, only the code files are kept besides the rules' own
    extra = [
        p for p in TYPICAL_PATHS if both.keeps("openat", READ_OK, p) and not rules.keeps("openat", READ_OK, p)
    ]
    assert all(code_like(p.decode()) for p in extra) and len(extra) <= 3
