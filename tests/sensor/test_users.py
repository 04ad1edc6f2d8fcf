"""user.name / group.name come from the passwd and group files the process itself sees."""

from __future__ import annotations

import os
from typing import Any

import pytest

from stockade.sensor.users import UserNames, parse_id_file


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
    # the busybox image knows root and nobody only; the host knows many more (daemon is uid 1)
    assert users == {0: "root", 65534: "nobody"}
    assert groups == {0: "root", 65534: "nogroup"}
    # cached: the same answer without reading again, even once the process is gone
    assert names.names(c.id, None) == (users, groups) and names.reads == 1


def test_an_unreadable_root_gives_no_names_and_keeps_what_was_known() -> None:
    names = UserNames(ttl_s=0.0)
    assert names.names("gone", 2**22 + 12345) == ({}, {})
    users, _ = names.names("mine", os.getpid())
    assert users.get(0) == "root"
    # the process disappears: what was read stays
    assert names.names("mine", 2**22 + 12345)[0] == users
