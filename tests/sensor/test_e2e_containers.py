"""End to end on this host: the native sensor, enrichment, Stockade's default rules and real
containers (runc with a busybox bundle, podman with an image made by `podman import`). Behaviour in a
container raises an alert attributed to that container (id, image, ancestry); the same behaviour on
the host is attributed to the host."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.runtime.offline import build_engine
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import SensorRunner

pytestmark = [pytest.mark.root, pytest.mark.containers]
REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "src" / "stockade" / "rules" / "builtin" / "stockade.yaml"


class Node:
    """Sensor + default rules + a pipeline that keeps the alerts."""

    def __init__(self, watch: list[str]) -> None:
        cfg = load_config(
            None,
            {"sensor": {"backend": "auto", "watch_paths": watch}, "engine": {"falco_rules_paths": []}},
            environ={},
        )
        self.engine, _ = build_engine(cfg, [str(PACK)], rule_matching="all")
        self.alerts: list[Alert] = []
        self.pipeline = Pipeline(self.engine, [self.alerts.append])
        self.sensor = SensorRunner(cfg, self.pipeline, self.engine.evttypes("syscall"))

    def wait_for(
        self, pred: Callable[[Alert], bool], timeout: float = 30.0, again: Callable[[], Any] | None = None
    ) -> Alert:
        """The first alert matching `pred`; `again` repeats the behaviour every 10 s meanwhile (on this
        shared machine a burst elsewhere can make the kernel drop a message: counted, tested elsewhere)."""
        deadline = time.monotonic() + timeout
        next_try = time.monotonic() + 10
        while time.monotonic() < deadline:
            if again is not None and time.monotonic() >= next_try:
                again()
                next_try = time.monotonic() + 10
            for a in list(self.alerts):
                if pred(a):
                    return a
            time.sleep(0.2)
        got = sorted({(a.rule, a.output_fields.get("container.id")) for a in self.alerts})
        raise AssertionError(f"no such alert; got {got[:30]}")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node([str(tmp_path)])
    n.sensor.start()
    time.sleep(0.5)
    try:
        yield n
    finally:
        n.sensor.close()


def _fields(a: Alert) -> dict[str, Any]:
    return a.output_fields


def test_shell_in_a_runc_container_is_attributed_to_it(node: Node, runc_container: Any) -> None:
    c = runc_container()

    def act() -> None:
        c.exec(["sh", "-c", "id; sleep 0.2"])

    act()
    a = node.wait_for(
        lambda a: a.rule == "Shell Spawned in Container" and _fields(a).get("container.id") == c.id[:12],
        again=act,
    )
    assert _fields(a)["proc.name"] == "sh"
    # exec'd by the runtime: "runc", or the kernel's name for its stage, "runc:[0:PARENT]" (eBPF)
    assert str(_fields(a)["proc.pname"]).startswith("runc")


def test_shell_and_credential_read_in_a_podman_container(node: Node, podman_container: Any) -> None:
    c = podman_container()
    short = c.id[:12]
    c.exec(["sh", "-c", "echo 'root:*:19000:0:99999:7:::' > /etc/shadow"])
    time.sleep(1.0)  # the container's root filesystem is watched from its first event on

    def act() -> None:
        c.exec(["sh", "-c", "cat /etc/shadow >/dev/null; sleep 0.3"])

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


def test_the_same_behaviour_on_the_host_is_attributed_to_the_host(node: Node, tmp_path: Path) -> None:
    subprocess.run(["sh", "-c", "cat /etc/shadow > /dev/null"], check=True)
    # Falco-compatible pack rules are container-focused: on the host the credential read is not a
    # container alert; if any alert names this read, it must say host
    time.sleep(2.0)
    for a in node.alerts:
        if _fields(a).get("fd.name") == "/etc/shadow" and _fields(a).get("proc.name") == "cat":
            assert _fields(a).get("container.id") in ("host", None)


#: rule family -> (commands run in a podman container, the rule that must name that container)
FAMILIES = {
    "drift": (
        ["sh", "-c", "cp /bin/busybox /tmp/bb && /tmp/bb true"],
        "Binary Not in Image Executed in Container",
    ),
    "write below /etc": (["sh", "-c", "echo x > /etc/stockade-test"], "Write Below Etc in Container"),
    "setuid bit": (["sh", "-c", "touch /tmp/s && chmod u+s /tmp/s"], "Setuid Bit Set in Container"),
    "cron persistence": (
        ["sh", "-c", "mkdir -p /etc/cron.d && echo '* * * * * root true' > /etc/cron.d/stk"],
        "Cron Job Modified in Container",
    ),
    "namespace tool": (
        ["sh", "-c", "ln -sf /bin/busybox /tmp/nsenter && /tmp/nsenter --help; true"],
        "Namespace Tool Run in Container",
    ),
    "network scanner": (
        ["sh", "-c", "ln -sf /bin/busybox /tmp/nmap && /tmp/nmap -h; true"],
        "Network Scanner Run in Container",
    ),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_rule_family_in_a_podman_container(node: Node, podman_container: Any, family: str) -> None:
    cmd, rule = FAMILIES[family]
    c = podman_container()
    short = c.id[:12]

    def act() -> None:
        c.exec(cmd)

    time.sleep(0.5)  # the container is seen (and its root watched) from its first event
    act()
    a = node.wait_for(lambda a: a.rule == rule and _fields(a).get("container.id") == short, again=act)
    # the image, when known at that event (podman may not describe a container in its first
    # instants: a known gap, see the notes), is the container's
    assert _fields(a).get("container.image.repository") in (None, "localhost/stockade-test-busybox")
