"""WorkloadPolicy -> OCI / Docker seccomp profile (JSON), for ``podman run --security-opt seccomp=FILE``,
``docker run --security-opt seccomp=FILE`` or a Kubernetes ``seccompProfile: {type: Localhost}``.

The allowed syscalls are ``spec.syscalls`` (the ones the workload was seen to use) plus
:data:`RUNTIME_SYSCALLS`: runc installs the filter in its own init process *before* it sets up the
user, capabilities, working directory and file descriptors and calls ``execve``, so those calls
(and the Go runtime's, which its threads make at any time) must be allowed whatever the workload
does; and :data:`PROCESS_START_SYSCALLS`, what every program does to start and exit (the sensor may
not see a process's first calls). A policy without ``spec.syscalls`` has no seccomp export.

``spec.action`` is the default action: ``block`` -> ``SCMP_ACT_ERRNO`` with ``defaultErrnoRet: 1``
(EPERM); ``audit`` (and ``allow``, with a warning) -> ``SCMP_ACT_LOG`` (the call goes ahead and the
kernel's audit log records it). Privileged operations the policy blocks or audits
(:data:`stockade.behavior.ops.PRIVILEGED_SYSCALLS`) leave the allowed list for an explicit
``SCMP_ACT_ERRNO`` / ``SCMP_ACT_LOG`` group, except those the runtime itself needs (a warning says
so). ``raw_socket`` cannot be expressed (``socket`` is one syscall for every type).
"""

from __future__ import annotations

import json
import re
from typing import Any

from stockade.behavior.ops import PRIVILEGED_SYSCALLS
from stockade.policy.export._common import privileged_actions
from stockade.policy.export.interface import ExportError, ExportResult
from stockade.policy.model import WorkloadPolicy

__all__ = ["ARCHITECTURES", "PROCESS_START_SYSCALLS", "RUNTIME_SYSCALLS", "export"]

ARCHITECTURES = ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")

#: What runc's init needs after it installs the filter, found by experiment (runc 1.1, podman 4.3,
#: 2026-12): starting from every syscall, each one removed in turn from the profile of ``cat
#: /etc/passwd`` in the busybox test image, kept when ``podman run`` then failed ("unable to setup
#: user" -> setuid, setgid, setgroups, fstat, newfstatat; "unable to apply caps" -> capget,
#: capset, prctl; "chdir to cwd" -> chdir, getcwd; "error closing exec fds" -> openat,
#: getdents64, fstatfs, close; read /proc/self/status -> read; the exec fifo -> write; Go's exec
#: lookup -> getegid, geteuid, faccessat, faccessat2). The Go runtime's own calls fail the start
#: only now and then (futex, tgkill were caught so): every call its threads make is allowed.
RUNTIME_SYSCALLS = frozenset(
    {
        # runc init: user, capabilities, working directory, file descriptors, exec
        "capget",
        "capset",
        "chdir",
        "close",
        "execve",
        "faccessat",
        "faccessat2",
        "fchdir",
        "fcntl",
        "fstat",
        "fstatfs",
        "getcwd",
        "getdents64",
        "getegid",
        "geteuid",
        "getgid",
        "getppid",
        "getuid",
        "newfstatat",
        "openat",
        "prctl",
        "read",
        "setgid",
        "setgroups",
        "setuid",
        "write",
        # the Go runtime of runc's init (scheduler, signals, memory, timers)
        "clone",
        "clone3",
        "epoll_create1",
        "epoll_ctl",
        "epoll_pwait",
        "futex",
        "getpid",
        "gettid",
        "madvise",
        "mmap",
        "munmap",
        "nanosleep",
        "pipe2",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "sched_yield",
        "sigaltstack",
        "tgkill",
    }
)
#: what every program does to start (the loader, the C library's set-up) and to exit
PROCESS_START_SYSCALLS = frozenset(
    {
        "arch_prctl",
        "brk",
        "execve",
        "exit",
        "exit_group",
        "getrandom",
        "mmap",
        "mprotect",
        "munmap",
        "prlimit64",
        "rseq",
        "rt_sigreturn",
        "set_robust_list",
        "set_tid_address",
    }
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_DEFAULT = {"block": "SCMP_ACT_ERRNO", "audit": "SCMP_ACT_LOG", "allow": "SCMP_ACT_LOG"}


def _privileged(policy: WorkloadPolicy, allowed: set[str], warnings: list[str]) -> dict[str, set[str]]:
    """Move the syscalls of blocked and audited privileged operations from `allowed` into their
    own groups (action -> names); a rule's allowed operation adds its syscalls."""
    groups: dict[str, set[str]] = {"SCMP_ACT_ERRNO": set(), "SCMP_ACT_LOG": set()}
    default = _DEFAULT[policy.spec.action]
    for op, (action, rule) in privileged_actions(policy.spec).items():
        calls = {s for s, o in PRIVILEGED_SYSCALLS.items() if o == op}
        if op == "raw_socket" and action != "allow" and "socket" in allowed:
            warnings.append(
                f"privileged operation raw_socket ({rule}): socket types cannot be told apart: not {action}ed"
            )
        if action == "allow":
            if rule != "default":
                allowed |= calls
            continue
        kept = calls & RUNTIME_SYSCALLS
        if kept:
            warnings.append(
                f"privileged operation {op} ({rule}): the container runtime needs {', '.join(sorted(kept))}: "
                f"allowed, not {action}ed"
            )
        calls -= RUNTIME_SYSCALLS
        dropped = calls & set(policy.spec.syscalls or ())
        if dropped:
            warnings.append(
                f"privileged operation {op} ({rule}) is {action}ed: {', '.join(sorted(dropped))} "
                "taken out of the allowed syscalls"
            )
        allowed -= calls
        wanted = "SCMP_ACT_ERRNO" if action == "block" else "SCMP_ACT_LOG"
        if wanted != default:
            groups[wanted] |= calls
    return groups


def export(policy: WorkloadPolicy, *, runtime: bool = True) -> ExportResult:
    """`policy`'s syscalls as a seccomp profile (module docstring); `runtime=False` leaves out the
    runtime's and the process start's syscalls (for a filter installed by the program itself)."""
    spec = policy.spec
    if spec.syscalls is None:
        raise ExportError(
            f"seccomp: policy {policy.metadata.name} has no spec.syscalls (the syscalls the workload uses): "
            "nothing to restrict"
        )
    bad = [s for s in spec.syscalls if not _NAME.match(s)]
    if bad:
        raise ExportError(f"seccomp: spec.syscalls: {', '.join(map(repr, bad))} are not syscall names")
    warnings: list[str] = []
    if spec.action == "allow":
        warnings.append(
            "spec.action allow: calls outside spec.syscalls are logged (SCMP_ACT_LOG), not denied"
        )
    allowed = set(spec.syscalls) | (RUNTIME_SYSCALLS | PROCESS_START_SYSCALLS if runtime else set())
    groups = _privileged(policy, allowed, warnings)
    profile: dict[str, Any] = {"defaultAction": _DEFAULT[spec.action]}
    if spec.action == "block":
        profile["defaultErrnoRet"] = 1
    profile["architectures"] = list(ARCHITECTURES)
    syscalls: list[dict[str, Any]] = [{"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"}]
    for action, names in groups.items():
        if names:
            syscalls.append(
                {
                    "names": sorted(names),
                    "action": action,
                    **({"errnoRet": 1} if action == "SCMP_ACT_ERRNO" else {}),
                }
            )
    profile["syscalls"] = syscalls
    return ExportResult(json.dumps(profile, indent=2) + "\n", tuple(warnings))
