"""End to end on this host: the native sensor, enrichment, Stockade's default rules and real
containers (runc with a busybox bundle, podman with an image made by `podman import`). Behaviour in a
container raises an alert attributed to that container (id, image, ancestry); the same behaviour on
the host is attributed to the host."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from stockade.model.alert import Alert

pytestmark = [pytest.mark.root, pytest.mark.containers]


def _fields(a: Alert) -> dict[str, Any]:
    return a.output_fields


def test_shell_in_a_runc_container_is_attributed_to_it(node: Any, runc_container: Any) -> None:
    c = runc_container()

    def act() -> None:
        c.exec(["sh", "-i", "-c", "id; sleep 0.2"])

    act()
    a = node.wait_for(
        lambda a: a.rule == "Shell Spawned in Container" and _fields(a).get("container.id") == c.id[:12],
        again=act,
    )
    assert _fields(a)["proc.name"] == "sh"
    # exec'd by the runtime: "runc", or the kernel's name for its stage, "runc:[0:PARENT]" (eBPF)
    assert str(_fields(a)["proc.pname"]).startswith("runc")


def test_shell_and_credential_read_in_a_podman_container(node: Any, podman_container: Any) -> None:
    c = podman_container()
    short = c.id[:12]
    c.exec(["sh", "-c", "echo 'root:*:19000:0:99999:7:::' > /etc/shadow"])
    time.sleep(1.0)  # the container's root filesystem is watched from its first event on

    def act() -> None:
        c.exec(["sh", "-i", "-c", "cat /etc/shadow >/dev/null; sleep 0.3"])

    act()
    a = node.wait_for(
        lambda a: a.rule == "Shell Spawned in Container" and _fields(a).get("container.id") == short,
        again=act,
    )
    assert _fields(a).get("container.image.repository") == "localhost/stockade-test-busybox"
    b = node.wait_for(
        lambda a: (
            _fields(a).get("container.id") == short
            and _fields(a).get("fd.name") == "/etc/shadow"
            and "Read" in a.rule
        )
    )
    # busybox's sh runs `cat` inside itself (a NOFORK applet) or re-executes itself ("exe")
    assert b.output_fields.get("proc.name") in ("cat", "exe", "sh")
    assert b.output_fields.get("container.image.repository") == "localhost/stockade-test-busybox"


def test_the_same_behaviour_on_the_host_is_attributed_to_the_host(node: Any) -> None:
    """The real host this time (not a sandbox): a read of /etc/shadow by cat, with the pack extended
    to the host, is the host's."""
    mark = node.mark()

    def act() -> None:
        subprocess.run(["sh", "-c", "cat /etc/shadow > /dev/null; exit 0"], check=True)

    act()
    a = node.wait_for(
        lambda a: a.rule == "Password Database Read in Container" and _fields(a).get("proc.name") == "cat",
        since=mark,
        again=act,
    )
    assert _fields(a)["container.id"] == "host"
    assert _fields(a)["proc.pname"] == "sh"
    assert _fields(a)["proc.ppid"] > 1
