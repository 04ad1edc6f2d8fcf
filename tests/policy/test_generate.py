"""A policy generated from a profile allows what the profile saw, and names its rules from it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stockade.behavior.model import Profile, Seen
from stockade.behavior.ops import FileOp, NetOp, PrivOp, ProcessOp, operation_of, syscall_of
from stockade.behavior.workload import workload_of_event
from stockade.policy.dryrun import dry_run
from stockade.policy.generate import GENERATED_ANNOTATION, generate_policy, slug
from stockade.policy.load import dump_policy, parse_policy
from stockade.policy.model import FileRule, Peer, WorkloadPolicy
from stockade.sources.jsonl import JsonlSource

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"
WEB = "k8s/shop/deployment/web"


def learned(policy: WorkloadPolicy) -> list[FileRule]:
    """The file rules generated from what was learned (not those every container policy gets for
    the runtime's own reads: generate.RUNTIME_READS)."""
    return [r for r in policy.spec.file if not (r.name or "").startswith("runtime-read-")]


def _see(section: dict[Any, Seen], key: Any, t: int) -> None:
    section.setdefault(key, Seen()).add(t)


def profile_of(datas: Iterable[dict[str, Any]], workload: str) -> Profile:
    """Every operation of `workload`'s events as a profile entry, exact (no generalisation)."""
    p = Profile(workload)
    for d in datas:
        if workload_of_event(d).id != workload:
            continue
        t = int(d.get("evt.time", 0))
        p.observations += 1
        sc = syscall_of(d)
        if sc is not None:
            _see(p.syscalls, sc, t)
        op = operation_of(d)
        if isinstance(op, ProcessOp):
            _see(p.processes, (op.exe, op.parent, op.args), t)
        elif isinstance(op, FileOp):
            for a in op.access:
                _see(p.files, (op.path, a), t)
        elif isinstance(op, NetOp):
            peer = f"cidr:{op.ip}/32" if op.direction == "egress" else ""
            _see(p.network, (op.direction, peer, op.port, op.protocol), t)
        elif isinstance(op, PrivOp):
            _see(p.privileged, op.operation, t)
    return p


def recording() -> list[dict[str, Any]]:
    return [ev.data for ev in JsonlSource(str(RECORDING)).events()]


def test_the_generated_policy_denies_nothing_of_what_was_learned() -> None:
    profile = profile_of(recording(), WEB)
    policy = generate_policy(profile)
    report = dry_run(policy, JsonlSource(str(RECORDING)).events())
    assert report.considered == 9 and report.decided == 6  # the runtime's init is not decided
    assert report.findings == []


def test_what_it_generates_from_the_recording() -> None:
    policy = generate_policy(profile_of(recording(), WEB))
    assert policy.metadata.name == "k8s-shop-deployment-web"
    assert policy.metadata.annotations == {GENERATED_ANNOTATION: f"profile {WEB} version 1"}
    assert policy.spec.workload == WEB and policy.spec.action == "block"
    assert [(r.name, r.path, r.parent, r.args, r.action) for r in policy.spec.process] == [
        ("exec-usr-bin-bash", "/usr/bin/bash", None, None, "allow"),  # a runtime parent is unknown
        ("exec-usr-bin-cat", "/usr/bin/cat", "/usr/bin/bash", None, "allow"),
        ("exec-usr-bin-curl", "/usr/bin/curl", "/usr/bin/bash", None, "allow"),
        ("exec-usr-bin-runc", "/usr/bin/runc", None, None, "allow"),
    ]
    assert [(r.name, r.path, r.access) for r in learned(policy)] == [
        ("read-etc-shadow", "/etc/shadow", ["read"]),
        ("write-tmp-x-sh", "/tmp/x.sh", ["write"]),
    ]
    assert [(r.name, r.direction, r.peer, r.ports, r.protocol) for r in policy.spec.network] == [
        ("egress-tcp-cidr-203-0-113-7-32", "egress", Peer(cidr="203.0.113.7/32"), [8080], "tcp")
    ]
    assert policy.spec.syscalls == ["connect", "execve", "openat"]


def test_parents_ports_and_patterns() -> None:
    p = Profile("container/docker.io/library/nginx/web", image_digest="sha256:abc", version=3)
    for key in [
        ("/usr/sbin/nginx", "/usr/bin/containerd-shim", "-g *"),
        ("/usr/sbin/nginx", "/usr/sbin/nginx", ""),  # two parents: no parent in the rule
        ("/bin/sh", "/usr/sbin/cron", "-c *"),
        ("/bin/sh", "/usr/sbin/cron", "-c run-parts *"),  # one parent, two shapes
        ("/usr/bin/[", "/bin/sh", ""),  # a name with a glob character
        ("bash", "", ""),  # no absolute path: cannot be named
    ]:
        p.processes[key] = Seen(1, 1, 1)
    for path, access in [
        ("/var/log/nginx/*", "write"),
        ("/var/log/nginx/*", "read"),
        ("/proc/*/status", "read"),
        ("/srv/data/**", "read"),
    ]:
        p.files[(path, access)] = Seen(1, 1, 1)  # type: ignore[index]
    for net in [
        ("egress", "cidr:10.0.0.1/8", 443, "tcp"),
        ("egress", "cidr:10.0.0.0/8", 8443, "tcp"),
        ("egress", "workload:k8s/shop/statefulset/db", 5432, "tcp"),
        ("egress", "dns:api.example.com", 0, "tcp"),
        ("egress", "", 53, "udp"),
        ("ingress", "workload:k8s/shop/deployment/front", 80, "tcp"),
        ("ingress", "cidr:10.1.2.3/32", 80, "tcp"),
        ("ingress", "", 9090, "tcp"),
        ("listen", "", 80, "tcp"),
        ("listen", "", 9090, "tcp"),
        ("listen", "", 5353, ""),
    ]:
        p.network[net] = Seen(1, 1, 1)  # type: ignore[index]
    p.privileged["setuid"] = Seen(1, 1, 1)
    p.syscalls.update({"openat": Seen(1, 1, 1), "container": Seen(1, 1, 1), "bind": Seen(1, 1, 1)})

    policy = generate_policy(p, name="nginx", action="audit")
    assert policy.metadata.name == "nginx" and policy.spec.action == "audit"
    assert policy.metadata.annotations["stockade.dev/image-digest"] == "sha256:abc"
    assert [(r.path, r.parent) for r in policy.spec.process] == [
        ("/bin/sh", "/usr/sbin/cron"),
        ("/usr/bin/[[]", "/bin/sh"),
        ("/usr/sbin/nginx", None),
    ]
    assert [(r.name, r.path, r.access) for r in learned(policy)] == [
        ("read-proc-status", "/proc/*/status", ["read"]),
        ("read-srv-data", "/srv/data/**", ["read"]),
        ("read-write-var-log-nginx", "/var/log/nginx/*", ["read", "write"]),
    ]
    assert [(r.name, r.direction, r.peer, r.ports, r.protocol) for r in policy.spec.network] == [
        ("egress-udp", "egress", None, [53], "udp"),
        ("egress-tcp-cidr-10-0-0-0-8", "egress", Peer(cidr="10.0.0.0/8"), [443, 8443], "tcp"),
        ("egress-tcp-dns-api-example-com", "egress", Peer(dns="api.example.com"), None, "tcp"),
        (
            "egress-tcp-workload-k8s-shop-statefulset-db",
            "egress",
            Peer(workload="k8s/shop/statefulset/db"),
            [5432],
            "tcp",
        ),
        ("ingress-tcp", "ingress", None, [80, 9090], "tcp"),
        ("listen-any", "listen", None, [5353], "any"),
        ("listen-tcp", "listen", None, [80, 9090], "tcp"),
    ]
    assert [(r.name, r.operation) for r in policy.spec.privileged] == [("privileged-setuid", "setuid")]
    assert policy.spec.syscalls == ["bind", "openat"]  # "container" is no syscall
    # a generated policy is a valid document, and the same profile gives the same policy
    assert parse_policy(dump_policy(policy)) == policy
    assert dump_policy(generate_policy(p, name="nginx", action="audit")) == dump_policy(policy)


def test_rule_names_are_unique() -> None:
    p = Profile("host")
    for path in ("/a-b", "/a/b", "/a_b"):
        p.files[(path, "read")] = Seen(1, 1, 1)
    policy = generate_policy(p)
    assert [r.name for r in learned(policy)] == ["read-a-b", "read-a-b-2", "read-a-b-3"]
    assert policy.spec.syscalls is None  # nothing recorded: not restricted


def test_slug() -> None:
    assert slug("exec-/usr/sbin/httpd") == "exec-usr-sbin-httpd"
    assert slug("///") == "root"
    long = slug("read-" + "/very/long/path" * 10)
    assert len(long) == 63 and long.startswith("read-very-long-path")
    assert long != slug("read-" + "/very/long/path" * 11)
