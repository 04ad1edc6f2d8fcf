"""user.name / group.name come from the passwd and group files the process itself sees."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from stockade.sensor import procfs
from stockade.sensor.enrich import Enricher
from stockade.sensor.users import UserNames, parse_id_file, read_id_files


def test_parse_id_file() -> None:
    text = "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken\nweb:x:33:33::/var/www:/bin/false\nalias:x:0:0::/:/bin/sh\nbad:x:NaN:1\n"
    assert parse_id_file(text) == {0: "root", 33: "web"}  # the first name of an id wins


def test_host_names_come_from_the_hosts_files() -> None:
    users, groups = UserNames().names("host", None)
    assert users.get(0) == "root" and groups.get(0) == "root"


@pytest.mark.root
@pytest.mark.containers
def test_a_containers_names_come_from_its_own_files(podman_container: Any) -> None:
    c = podman_container()
    names = UserNames()
    users, groups = names.names(c.id, c.pid)
    # the busybox image knows root, nobody and stk; the host knows many more (daemon is uid 1)
    assert users == {0: "root", 65534: "nobody", 4242: "stk"}
    assert groups == {0: "root", 65534: "nogroup", 4242: "stk"}
    # cached: the same answer without reading again, even once the process is gone
    assert names.names(c.id, None) == (users, groups) and names.reads == 1


def test_an_unreadable_root_gives_no_names() -> None:
    names = UserNames()
    assert names.names("gone", 2**22 + 12345) == ({}, {})
    # a process whose root is the host's is not read for a container (the runtime before pivot_root)
    assert names.names("not-yet", os.getpid()) == ({}, {})


@pytest.mark.root
@pytest.mark.containers
def test_what_was_known_is_kept_when_the_process_is_gone(podman_container: Any) -> None:
    c = podman_container()
    names = UserNames(ttl_s=0.0)
    users, _ = names.names(c.id, c.pid)
    assert users.get(65534) == "nobody"
    assert names.names(c.id, 2**22 + 12345)[0] == users


def test_the_files_are_resolved_inside_the_root_and_must_be_regular(tmp_path: Path) -> None:
    """The container controls its /etc: a symlink to /etc/shadow stays inside its root, a FIFO
    does not hang the sensor."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "shadow").write_text("inside:x:7:7::/:/bin/sh\n")
    (root / "etc" / "passwd").symlink_to("/etc/shadow")  # absolute: the container's /etc/shadow
    os.mkfifo(root / "etc" / "group")
    t0 = time.monotonic()
    users, groups = read_id_files(str(root))
    assert time.monotonic() - t0 < 2.0
    assert users == {7: "inside"}  # not the host's /etc/shadow
    assert groups == {}


@pytest.mark.root
@pytest.mark.containers
def test_an_event_of_a_container_user_the_host_does_not_know_is_named(podman_container: Any) -> None:
    """uid 4242 is "stk" in the image and nobody on the host: the event says stk."""
    c = podman_container(user="4242")
    cg = procfs.read_cgroup_path(c.pid)
    raw = {
        "evt.type": "openat",
        "evt.time": time.time_ns(),
        "proc.pid": c.pid,
        "thread.tid": c.pid,
        "user.uid": 4242,
        "group.gid": 4242,
        "_cgroup_path": cg,
    }
    ev = Enricher().enrich(raw)
    assert ev["container.full_id"] == c.id
    assert ev["user.name"] == "stk" and ev["group.name"] == "stk"
    host = Enricher().enrich({"evt.type": "openat", "proc.pid": os.getpid(), "user.uid": 0, "group.gid": 0})
    assert host["container.id"] == "host" and host["user.name"] == "root"
