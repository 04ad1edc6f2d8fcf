"""The Falco export: the golden file, loading in Stockade's engine with and without Falco's rules,
and the alerts on a recording and on events made for the workload and path matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import FALCO_RULES, need_file
from stockade.behavior.ops import FileOp
from stockade.engine import Engine
from stockade.model.alert import Alert
from stockade.policy.compile import CompiledPolicy
from stockade.policy.export import ExportError, export
from stockade.policy.export.falco import FALCO_MACROS
from stockade.policy.model import WorkloadPolicy
from stockade.rules.ruleset import RuleLoadError
from stockade.sources.jsonl import JsonlSource

DATA = Path(__file__).parent / "data" / "export"
RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"
WEB = "k8s/shop/deployment/web"


def policy(**spec: Any) -> WorkloadPolicy:
    spec.setdefault("workload", WEB)
    return WorkloadPolicy.model_validate(
        {
            "apiVersion": "stockade.dev/v1alpha1",
            "kind": "WorkloadPolicy",
            "metadata": {"name": "web"},
            "spec": spec,
        }
    )


def engine(p: WorkloadPolicy, *, standalone: bool) -> Engine:
    text = export(p, "falco", standalone=standalone).text
    if standalone:
        return Engine.from_files([("web.falco.yaml", text)], rule_matching="all")
    return Engine.from_files([need_file(FALCO_RULES), ("web.falco.yaml", text)], rule_matching="all")


def ours(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if "stockade" in a.tags]


def replay(e: Engine) -> list[tuple[str, str]]:
    """(rule, process name) of each of the export's alerts on the recording."""
    out = []
    for ev in JsonlSource(str(RECORDING)).events():
        out += [(a.rule, str(ev.data.get("proc.name"))) for a in ours(e.process(ev))]
    return out


def event(**fields: Any) -> dict[str, Any]:
    base = {
        "evt.type": "execve",
        "evt.dir": "<",
        "evt.rawres": 0,
        "proc.name": "x",
        "proc.exepath": "/usr/bin/x",
        "container.id": "3ad7b26ded6d",
        "container.name": "web",
        "container.image.repository": "docker.io/library/nginx",
        "k8s.ns.name": "shop",
        "k8s.pod.name": "web-7d4b9c5f6d-x2x9q",
    }
    return {**base, **fields}


#: a successful open for reading, for event(): add its "fd.name"
OPENED = {"evt.type": "openat", "evt.is_open_read": True, "fd.typechar": "f", "fd.num": 3, "evt.rawres": 3}


def rules_hit(e: Engine, data: dict[str, Any]) -> list[str]:
    return [a.rule for a in ours(e.process_data("syscall", data))]


ONLY_NGINX = policy(
    process=[{"path": "/usr/sbin/nginx"}, {"path": "/docker-entrypoint.sh"}],
    file=[{"path": "/**", "access": ["read", "write"]}],
    network=[{"direction": d} for d in ("egress", "ingress", "listen")],
    privileged=[{"operation": op} for op in ("setuid", "setgid")],
)


def test_golden() -> None:
    p = WorkloadPolicy.model_validate(yaml.safe_load((DATA / "web.policy.yaml").read_text()))
    r = export(p, "falco")
    assert r.text == (DATA / "web.falco.yaml").read_text()
    assert r.warnings == (
        "network rule from-frontend: workload k8s/shop/deployment/frontend has no address Falco knows: any peer",
    )


@pytest.mark.parametrize("standalone", [False, True])
def test_the_golden_policy_loads_with_and_without_falcos_rules(standalone: bool) -> None:
    p = WorkloadPolicy.model_validate(yaml.safe_load((DATA / "web.policy.yaml").read_text()))
    e = engine(p, standalone=standalone)
    names = {r["name"] for r in e.rules_info()}
    assert f"Unexpected process in {WEB}" in names
    assert f"Blocked outbound connection in {WEB} (rule no-metadata)" in names
    # no error nor warning (an unused macro or list, an unknown field) about the export
    assert [str(pr) for pr in e.problems if pr.location and pr.location.file == "web.falco.yaml"] == []


def test_without_falcos_macros_it_needs_falcos_rules_or_standalone() -> None:
    text = export(ONLY_NGINX, "falco").text
    with pytest.raises(RuleLoadError, match="spawned_process"):
        Engine.from_files([("web.falco.yaml", text)])
    standalone = export(ONLY_NGINX, "falco", standalone=True).text
    items = yaml.safe_load(standalone)
    # only the default macros it uses (open_read/open_write: every file is allowed)
    assert [i["macro"] for i in items if i.get("macro") in FALCO_MACROS] == ["spawned_process", "container"]


@pytest.mark.parametrize("standalone", [False, True])
def test_on_the_recording_only_the_shell_cat_and_curl_execs_alert(standalone: bool) -> None:
    hits = replay(engine(ONLY_NGINX, standalone=standalone))
    rule = f"Unexpected process in {WEB}"
    # the runtime's runc:[2:INIT] exec in the container is not the workload's; nothing else alerts
    assert hits == [(rule, "bash"), (rule, "cat"), (rule, "curl")]


@pytest.mark.parametrize("standalone", [False, True])
def test_on_the_recording_file_and_network_deviations_alert_by_rule(standalone: bool) -> None:
    p = policy(
        process=[{"path": "/usr/**"}],
        file=[
            {"name": "shadow", "path": "/etc/shadow", "access": ["read"], "action": "block"},
            {"path": "/usr/**", "access": ["read"]},
        ],
        network=[{"peer": {"cidr": "10.0.0.0/8"}, "ports": [443]}],
        privileged=[{"operation": op} for op in ("setuid", "setgid")],
    )
    hits = replay(engine(p, standalone=standalone))
    assert hits == [
        (f"Blocked file access in {WEB} (rule shadow)", "cat"),
        (f"Unexpected outbound connection in {WEB}", "curl"),
        (f"Unexpected file write in {WEB}", "curl"),
    ]


def test_an_alert_names_the_policy_the_rule_and_the_workload() -> None:
    e = engine(ONLY_NGINX, standalone=True)
    (a,) = ours(e.process_data("syscall", event(**{"proc.exepath": "/bin/sh", "proc.cmdline": "sh -c id"})))
    assert f": Warning Unexpected process in {WEB} (policy=web rule=default process=/bin/sh " in a.output
    assert "command=sh -c id" in a.output
    assert a.priority == "Warning"


@pytest.mark.parametrize(
    ("workload", "yes", "no"),
    [
        (
            WEB,
            [{"k8s.pod.name": "web-7d4b9c5f6d-x2x9q"}],
            [
                {"k8s.pod.name": "web-api-7d4b9c5f6d-x2x9q"},
                {"k8s.pod.name": "web-x2x9q"},
                {"k8s.ns.name": "other"},
                {"container.id": "host", "k8s.ns.name": None, "k8s.pod.name": None},
            ],
        ),
        (
            "k8s/shop/statefulset/db",
            [{"k8s.pod.name": "db-0"}, {"k8s.pod.name": "db-12"}],
            [{"k8s.pod.name": "db-backup-0"}],
        ),
        ("k8s/shop/pod/debug", [{"k8s.pod.name": "debug"}], [{"k8s.pod.name": "debug-1"}]),
        (
            "container/docker.io/library/nginx/web",
            [{"container.name": "web"}, {"container.name": "web-2"}, {"container.name": "web_3"}],
            [{"container.name": "webx"}, {"container.image.repository": "docker.io/library/httpd"}],
        ),
        ("host", [{"container.id": "host"}], [{}]),
    ],
)
def test_the_workload_macro_selects_exactly_the_workloads_pods_or_containers(
    workload: str, yes: list[dict[str, Any]], no: list[dict[str, Any]]
) -> None:
    e = engine(policy(workload=workload, process=[{"path": "/usr/sbin/nginx"}]), standalone=True)
    unexpected = f"Unexpected process in {workload}"
    for fields in yes:
        assert rules_hit(e, event(**fields)) == [unexpected], fields
    for fields in no:
        assert rules_hit(e, event(**{k: v for k, v in fields.items()})) == [], fields


def test_globs_match_as_the_policy_means_them() -> None:
    p = policy(
        process=[{"path": "/usr/bin/*"}, {"path": "/opt/**"}, {"path": "/sbin/[[]"}, {"path": "/srv/a[*]/*"}],
        file=[
            {"path": "/tmp/nginx.*", "access": ["read"]},
            {"path": "/proc/*/status", "access": ["read"]},
            {"path": "/srv/[?]", "access": ["read"]},  # escaped: the file named "?"
        ],
        network=[{"direction": d} for d in ("egress", "ingress", "listen")],
        privileged=[{"operation": op} for op in ("setuid", "setgid")],
    )
    e = engine(p, standalone=True)
    proc, read = f"Unexpected process in {WEB}", f"Unexpected file read in {WEB}"
    for exe, alerts in [
        ("/usr/bin/ls", []),
        ("/usr/bin/x/y", [proc]),
        ("/opt/a/b/c", []),
        ("/usr/sbin/ls", [proc]),
        ("/sbin/[", []),
        ("/sbin/a", [proc]),
        ("/srv/a*/run", []),
        ("/srv/ab/run", [proc]),
    ]:
        assert rules_hit(e, event(**{"proc.exepath": exe})) == alerts, exe
    for path, alerts in [
        ("/srv/?", []),
        ("/srv/a", [read]),
        ("/tmp/nginx.abc", []),
        ("/tmp/nginx.a/b", [read]),
        ("/tmp/other", [read]),
        ("/proc/42/status", []),
        ("/proc/42/task/42/status", [read]),
    ]:
        assert rules_hit(e, event(**OPENED, **{"fd.name": path})) == alerts, path


def test_network_rules_by_peer_port_and_direction() -> None:
    p = policy(
        process=[{"path": "/**"}],
        file=[{"path": "/**", "access": ["read", "write"]}],
        network=[
            {"peer": {"cidr": "10.0.0.0/8"}, "ports": ["8000-8080"], "protocol": "tcp"},
            {"name": "meta", "peer": {"cidr": "169.254.169.254"}, "action": "audit"},
            {"direction": "ingress", "peer": {"cidr": "192.168.0.0/16"}, "ports": [80]},
            {"direction": "listen", "ports": [80]},
        ],
        privileged=[{"operation": op} for op in ("setuid", "setgid")],
    )
    e = engine(p, standalone=True)
    out, inb = f"Unexpected outbound connection in {WEB}", f"Unexpected inbound connection in {WEB}"
    connect = {"evt.type": "connect", "fd.typechar": "4", "fd.l4proto": "tcp", "evt.rawres": 0}
    for name, alerts in [
        ("10.244.1.17:43210->10.1.2.3:8080", []),
        ("10.244.1.17:43210->10.1.2.3:9090", [out]),
        ("10.244.1.17:43210->127.0.0.1:8080", [out]),  # loopback is not left out, unlike Falco's `outbound`
        ("10.244.1.17:43210->169.254.169.254:80", [f"Audited outbound connection in {WEB} (rule meta)"]),
    ]:
        assert rules_hit(e, event(**connect, **{"fd.name": name})) == alerts, name
    accept = {"evt.type": "accept4", "fd.typechar": "4", "fd.l4proto": "tcp", "evt.rawres": 5}
    for name, alerts in [
        ("192.168.3.4:5555->10.244.1.17:80", []),
        ("172.17.0.9:5555->10.244.1.17:80", [inb]),
    ]:
        assert rules_hit(e, event(**accept, **{"fd.name": name})) == alerts, name


def test_a_policy_that_allows_everything_has_no_rules() -> None:
    with pytest.raises(ExportError, match="allows everything"):
        export(policy(action="allow", process=[{"path": "/bin/sh"}]), "falco")
    text = export(policy(action="allow", process=[{"path": "/bin/sh", "action": "audit"}]), "falco").text
    rules = [i["rule"] for i in yaml.safe_load(text) if "rule" in i]
    assert rules == [f"Audited process in {WEB} (rule process-1)"]


def test_exceptions_are_left_out_as_the_policy_leaves_them_out() -> None:
    """Each file read alerts exactly when the compiled policy does not allow it (one documented
    difference: Falco's glob for ``/**/id_rsa*`` also crosses ``/``, so the rule allows less)."""
    p = policy(
        process=[{"path": "/usr/bin/x"}],
        file=[
            {
                "name": "www",
                "path": "/srv/www/**",
                "except": ["/**/*.key", "/srv/www/private/*", "/**/.ssh/**", "/**/id_rsa*", "/etc/*"],
                "access": ["read", "exec"],
            },
            {
                "name": "no-tmp",
                "path": "/tmp/*",
                "except": ["/tmp/ok"],
                "access": ["read"],
                "action": "block",
            },
            {"name": "gone", "path": "/srv/gone", "except": ["/srv/*"], "access": ["read"]},
        ],
        network=[{"direction": d} for d in ("egress", "ingress", "listen")],
        privileged=[{"operation": op} for op in ("setuid", "setgid")],
    )
    r = export(p, "falco", standalone=True)
    assert r.warnings == (
        "file rule www: except '/**/id_rsa*' matched with Falco's glob, where * also crosses /: "
        "the rule matches less",
    )
    e = engine(p, standalone=True)
    compiled = CompiledPolicy(p)
    read = f"Unexpected file read in {WEB}"
    for path in [
        "/srv/www/index.html",
        "/srv/www/a/b.css",
        "/srv/www/server.key",
        "/srv/www/a/tls.key",
        "/srv/www/private/a",
        "/srv/www/private/a/b",
        "/srv/www/u/.ssh/config",
        "/srv/www/.ssh/",
        "/srv/www/id_rsa",
        "/srv/www/a/id_rsa.pub",
        "/srv/gone",
        "/tmp/ok",
    ]:
        verdict = compiled.decide(FileOp(path, ("read",)))
        assert rules_hit(e, event(**OPENED, **{"fd.name": path})) == ([] if verdict.allowed else [read]), path
    hits = rules_hit(e, event(**OPENED, **{"fd.name": "/tmp/x"}))
    assert hits == [f"Blocked file access in {WEB} (rule no-tmp)"]
    # the difference the warning names: id_rsa_dir is a directory, its file no key
    assert compiled.decide(FileOp("/srv/www/id_rsa_dir/file", ("read",))).allowed
    assert rules_hit(e, event(**OPENED, **{"fd.name": "/srv/www/id_rsa_dir/file"})) == [read]
    # executions by the rule's exec access, its exceptions left out too
    proc = f"Unexpected process in {WEB}"
    for exe, alerts in [("/srv/www/app", []), ("/srv/www/run.key", [proc]), ("/usr/bin/x", [])]:
        assert rules_hit(e, event(**{"proc.exepath": exe})) == alerts, exe
