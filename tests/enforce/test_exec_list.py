"""The exec killer as Protect's exec enforcer (zero_trust.enforcement.exec_enforcer: kill, and the
node without fanotify permission events): the allow-list made from a policy's paths and globs in
the container's root (stockade.enforce.execlist), then Enforcement arming it for a real podman
container: what the policy allows runs, a freshly written binary is killed at exec and reported,
opens are only audited, and the node says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from containers import PodmanFactory
from helpers import busy_cores, wait_until
from stockade.config import EnforcementConfig
from stockade.enforce.cgroup2 import cgroup_dir_of, cgroup_id
from stockade.enforce.execlist import allowed_executables
from stockade.enforce.interface import Denial
from stockade.policy.compile import CompiledPolicy
from stockade.policy.load import parse_policy
from stockade.runtime.enforcement import Enforcement
from stockade.sensor.containers.discover import RunningContainer


def policy(*rules: str, action: str = "block") -> CompiledPolicy:
    body = "\n".join(f"    - {r}" for r in rules)
    return CompiledPolicy(
        parse_policy(
            "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: web}\n"
            f"spec:\n  workload: container/localhost/web/web\n  action: {action}\n"
            f"  process:\n{body}\n",
            "test.yaml",
        )
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for p in (
        "usr/bin/app",
        "usr/bin/helper",
        "usr/bin/nc",
        "usr/sbin/sshd",
        "opt/x/bin/tool",
        "opt/y/lib/so",
    ):
        f = tmp_path / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("#!/bin/true\n")
    os.symlink("app", tmp_path / "usr/bin/app-link")
    return tmp_path


def test_the_allow_list_is_the_files_the_policy_lets_run(root: Path) -> None:
    got = allowed_executables(
        str(root),
        policy(
            "{path: /usr/bin/*}",
            "{path: /usr/bin/nc, action: block}",
            "{path: /opt/**/bin/*}",
            "{path: /usr/sbin/sshd}",
            "{path: /bin/not-there}",
        ),
    )
    assert sorted(got.paths) == [
        "/bin/not-there",  # an exact path is kept: the killer says it is missing
        "/opt/x/bin/tool",
        "/usr/bin/app",
        "/usr/bin/app-link",
        "/usr/bin/helper",
        "/usr/sbin/sshd",
    ]
    assert got.problems == []


def test_a_glob_too_broad_to_list_is_reported(root: Path) -> None:
    got = allowed_executables(str(root), policy("{path: /**}"), limit=3)
    assert len(got.paths) <= 3
    assert got.problems and "'/**' is not fully listed" in got.problems[0]


@pytest.fixture
def cores_busy() -> Iterator[None]:
    with busy_cores():
        yield


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.containers
@pytest.mark.usefixtures("cores_busy")
def test_protect_with_the_exec_killer_kills_what_the_policy_does_not_allow(
    podman_container: PodmanFactory, tmp_path: Path
) -> None:
    got: list[Denial] = []
    enf = Enforcement(
        EnforcementConfig(exec_enforcer="kill", network=False, pin_dir=str(tmp_path)), got.append
    )
    enf.start()
    try:
        assert enf.support["exec"]["support"] == "block", enf.support
        assert enf.support["exec"]["mechanism"] == "bpf_send_signal"
        assert (
            enf.support["open"]["support"] == "audit"
            and "exec_enforcer is kill" in enf.support["open"]["reason"]
        )
        c = podman_container()
        cg = cgroup_dir_of(c.pid)
        running = RunningContainer(c.id, "podman", cg, cgroup_id(cg), (c.pid,))
        assert enf.apply(running, policy("{path: /bin/busybox}", "{path: /bin/*}")) == []
        applied = enf.enforced(c.id)
        assert applied is not None and applied.decides("exec") and not applied.decides("open")
        # busybox's applets are links to it: they run; a copy of it written now is killed at exec
        r = c.exec(["sh", "-c", "cp /bin/busybox /tmp/echo && /tmp/echo ran; echo rc=$?"])
        assert "ran" not in r.stdout and "rc=137" in r.stdout, r
        assert wait_until(lambda: any(d.target == "/tmp/echo" for d in got), 10), got
        d = next(d for d in got if d.target == "/tmp/echo")
        assert (d.kind, d.blocked, d.verdict.policy) == ("exec", True, "web")
        assert enf.status()["exec_killer"] == {"armed": 1}
        enf.release(c.id)
        assert enf.status()["exec_killer"] == {"armed": 0}
        assert c.exec(["/tmp/echo", "ran"]).stdout.strip() == "ran"
    finally:
        enf.close()
