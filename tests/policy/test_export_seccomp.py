"""The seccomp export: the golden file, the mappings, and podman running with the profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockade.policy.export import ExportError, export
from stockade.policy.export.seccomp import PROCESS_START_SYSCALLS, RUNTIME_SYSCALLS
from stockade.policy.model import WorkloadPolicy

DATA = Path(__file__).parent / "data" / "export"

#: what busybox's ``cat /etc/passwd`` calls: ``strace -f -qq /bin/busybox cat /etc/passwd`` with
#: Debian's busybox-static 1.35 on this machine kind (the policy a profile of it would give)
CAT = [
    "arch_prctl",
    "brk",
    "close",
    "execve",
    "exit_group",
    "getrandom",
    "getuid",
    "mprotect",
    "openat",
    "prctl",
    "prlimit64",
    "readlink",
    "rseq",
    "sendfile",
    "set_robust_list",
    "set_tid_address",
]


def policy(**spec: Any) -> WorkloadPolicy:
    spec.setdefault("workload", "container/localhost/stockade-test-busybox/cat")
    return WorkloadPolicy.model_validate(
        {
            "apiVersion": "stockade.dev/v1alpha1",
            "kind": "WorkloadPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


def profile(p: WorkloadPolicy, **options: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(export(p, "seccomp", **options).text)
    return out


def test_golden() -> None:
    p = WorkloadPolicy.model_validate(yaml.safe_load((DATA / "web.policy.yaml").read_text()))
    r = export(p, "seccomp")
    assert r.text == (DATA / "web.seccomp.json").read_text()
    assert r.warnings == ()


def test_without_syscalls_there_is_nothing_to_export() -> None:
    with pytest.raises(ExportError, match=r"policy p has no spec\.syscalls"):
        export(policy(), "seccomp")
    with pytest.raises(ExportError, match="'open at', 'x;y' are not syscall names"):
        export(policy(syscalls=["read", "open at", "x;y"]), "seccomp")


def test_the_default_action_follows_spec_action() -> None:
    block = profile(policy(syscalls=["read"]))
    assert (block["defaultAction"], block["defaultErrnoRet"]) == ("SCMP_ACT_ERRNO", 1)
    audit = profile(policy(action="audit", syscalls=["read"]))
    assert audit["defaultAction"] == "SCMP_ACT_LOG" and "defaultErrnoRet" not in audit
    r = export(policy(action="allow", syscalls=["read"]), "seccomp")
    assert json.loads(r.text)["defaultAction"] == "SCMP_ACT_LOG"
    assert r.warnings[0].startswith("spec.action allow: calls outside spec.syscalls are logged")


def test_the_runtime_and_the_process_start_are_allowed_unless_asked_not_to() -> None:
    names = profile(policy(syscalls=["sendfile"]))["syscalls"][0]["names"]
    assert names == sorted(RUNTIME_SYSCALLS | PROCESS_START_SYSCALLS | {"sendfile"})
    bare = profile(policy(syscalls=["sendfile", "read"], privileged=[{"operation": "setuid"}]), runtime=False)
    assert bare["syscalls"] == [
        {"names": ["read", "sendfile", "setresuid", "setreuid", "setuid"], "action": "SCMP_ACT_ALLOW"}
    ]


def test_blocked_and_audited_privileged_operations_leave_the_allowed_list() -> None:
    r = export(
        policy(
            action="audit",
            syscalls=["read", "ptrace", "mount", "setuid", "setresuid", "socket"],
            privileged=[
                {"name": "no-ptrace", "operation": "ptrace", "action": "block"},
                {"operation": "setuid", "action": "block"},
                {"operation": "raw_socket", "action": "block"},
            ],
        ),
        "seccomp",
    )
    prof = json.loads(r.text)
    allowed = set(prof["syscalls"][0]["names"])
    # mount is audited (spec.action), so logged by the default action; ptrace and setuid blocked
    assert {"mount", "ptrace", "setresuid", "setreuid"}.isdisjoint(allowed)
    assert {"read", "setuid", "setgid", "socket"} <= allowed  # runc needs setuid and setgid
    assert prof["syscalls"][1:] == [
        {"names": ["ptrace", "setresuid", "setreuid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    ]
    assert r.warnings == (
        "privileged operation setuid (privileged-2): the container runtime needs setuid: allowed, not blocked",
        "privileged operation setuid (privileged-2) is blocked: setresuid taken out of the allowed syscalls",
        "privileged operation setgid (default): the container runtime needs setgid: allowed, not audited",
        "privileged operation mount (default) is audited: mount taken out of the allowed syscalls",
        "privileged operation ptrace (no-ptrace) is blocked: ptrace taken out of the allowed syscalls",
        "privileged operation raw_socket (privileged-3): socket types cannot be told apart: not blocked",
    )
    logged = profile(policy(syscalls=["read"], privileged=[{"operation": "bpf", "action": "audit"}]))
    assert logged["syscalls"][1:] == [{"names": ["bpf"], "action": "SCMP_ACT_LOG"}]


# -- for real: podman runs the workload with the profile -------------------------------------------
def _podman_run(prof: str, tmp_path: Path, image: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / f"seccomp-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(prof)
    cmd = ["podman", "run", "--rm", "--network", "none", "--security-opt", f"seccomp={path}", image, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, env=os.environ.copy()
    )


@pytest.mark.root
@pytest.mark.containers
def test_podman_runs_what_the_profile_allows_and_denies_the_rest_with_eperm(
    podman_image: str, tmp_path: Path
) -> None:
    assert shutil.which("podman")
    cat = export(policy(syscalls=CAT), "seccomp").text
    ok = _podman_run(cat, tmp_path, podman_image, "cat", "/etc/passwd")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("root:x:0:0:")
    # mkdir and socket are outside the profile: the kernel refuses them with EPERM
    mkdir = _podman_run(cat, tmp_path, podman_image, "mkdir", "/tmp/x")
    assert mkdir.returncode == 1
    assert "can't create directory '/tmp/x': Operation not permitted" in mkdir.stderr
    nc = _podman_run(cat, tmp_path, podman_image, "nc", "127.0.0.1", "1")
    assert nc.returncode == 1
    assert "socket: Operation not permitted" in nc.stderr
    # the same profile with mkdir added lets mkdir run: the refusal was the missing syscall
    with_mkdir = export(policy(syscalls=[*CAT, "mkdir"]), "seccomp").text
    again = _podman_run(with_mkdir, tmp_path, podman_image, "mkdir", "/tmp/x")
    assert again.returncode == 0, again.stderr
    # in audit mode the same calls are logged, not refused
    audit = export(policy(action="audit", syscalls=CAT), "seccomp").text
    logged = _podman_run(audit, tmp_path, podman_image, "mkdir", "/tmp/x")
    assert logged.returncode == 0, logged.stderr
