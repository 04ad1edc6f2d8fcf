"""A compiled policy's decisions: per event (Monitor), per exec and open (fanotify), and as the
network rules of the cgroup programs."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import pytest

from stockade.behavior.ops import FileOp, NetOp, PrivOp, ProcessOp
from stockade.model.event import Event
from stockade.policy.compile import MEMO_SIZE, CompiledPolicy, Network
from stockade.policy.decision import NetRule, Verdict
from stockade.policy.load import parse_policy
from stockade.policy.model import Peer
from stockade.sources.jsonl import JsonlSource

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"

#: nginx's processes and files, scratch space, any egress: the shell, cat, curl and the
#: /etc/shadow read of the recording are what it does not allow
NGINX = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: web}
spec:
  workload: k8s/shop/deployment/web
  action: block
  process:
    - {name: nginx, path: /usr/sbin/nginx}
    - {name: runtime-init, path: /usr/bin/runc}
  file:
    - {name: nginx-files, path: /etc/nginx/**, access: [read]}
    - {name: scratch, path: /tmp/*, access: [read, write]}
  network:
    - {name: any-egress, direction: egress}
"""


def recording() -> list[Event]:
    return list(JsonlSource(str(RECORDING)).events())


def policy(text: str, **kw: Any) -> CompiledPolicy:
    return CompiledPolicy(parse_policy(text), **kw)


def spec(body: str, action: str = "block") -> str:
    return (
        "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: p}\n"
        f"spec:\n  workload: host\n  action: {action}\n{body}"
    )


def test_a_policy_allowing_nginx_denies_exactly_the_intrusion() -> None:
    compiled = policy(NGINX)
    events = [ev for ev in recording() if ev.data.get("container.id") != "host"]
    verdicts = [(ev.origin, compiled.evaluate(ev.data)) for ev in events]
    denied = [
        (str(origin).rsplit(":", 1)[1], v.rule) for origin, v in verdicts if v is not None and not v.allowed
    ]
    assert denied == [("4", "default"), ("5", "default"), ("6", "default"), ("8", "default")]
    names = {
        ev.origin: (ev.data.get("proc.exepath"), ev.data.get("fd.name"))
        for ev in events
        if ev.origin is not None
    }
    assert [names[f"{RECORDING}:{n}"] for n, _ in denied] == [
        ("/usr/bin/bash", None),
        ("/usr/bin/cat", None),
        ("/usr/bin/cat", "/etc/shadow"),
        ("/usr/bin/curl", None),
    ]
    allowed = [v.rule for _, v in verdicts if v is not None and v.allowed]
    assert allowed == ["runtime-init", "any-egress", "scratch"]
    # the exits decide nothing
    assert [v for _, v in verdicts].count(None) == 2


def test_block_and_audit_rules_win_over_allow_rules_wherever_they_are() -> None:
    c = policy(
        spec(
            "  file:\n"
            "    - {name: all, path: /**}\n"
            "    - {name: secrets, path: /etc/shadow, access: [read], action: block}\n"
            "    - {name: watch, path: /etc/*, action: audit}\n",
            action="allow",
        )
    )
    assert c.decide(FileOp("/etc/shadow", ("read",))) == Verdict("block", "p", "secrets")
    assert c.decide(FileOp("/etc/shadow", ("write",))) == Verdict("audit", "p", "watch")
    assert c.decide(FileOp("/etc/hosts", ("read",))) == Verdict("audit", "p", "watch")
    assert c.decide(FileOp("/var/x", ("read",))) == Verdict("allow", "p", "all")


def test_the_first_matching_rule_of_an_action_names_the_verdict() -> None:
    c = policy(
        spec(
            "  file:\n"
            "    - {name: one, path: /a/*}\n"
            "    - {name: two, path: /a/b}\n"
            "    - {name: three, path: /a/**}\n"
            "    - {name: four, path: /c}\n"
            "    - {name: five, path: /c}\n"
        )
    )
    assert c.decide(FileOp("/a/b", ("read",))).rule == "one"
    assert c.decide(FileOp("/a/b/c", ("read",))).rule == "three"
    assert c.decide(FileOp("/c", ("read",))).rule == "four"
    assert c.decide(FileOp("/d", ("read",))) == Verdict("block", "p", "default")


def test_an_open_for_several_accesses_needs_each_allowed() -> None:
    c = policy(
        spec(
            "  file:\n    - {name: r, path: /data/*, access: [read]}\n    - {name: w, path: /data/log, access: [write]}\n"
        )
    )
    assert c.decide(FileOp("/data/x", ("read", "write"))) == Verdict("block", "p", "default")
    assert c.decide(FileOp("/data/log", ("read", "write"))).action == "allow"


def test_process_rules_match_path_parent_and_args() -> None:
    c = policy(
        spec(
            "  process:\n"
            "    - {name: sh-from-cron, path: /bin/sh, parent: /usr/sbin/cron}\n"
            "    - {name: nginx-test, path: /usr/sbin/nginx, args: '-t *'}\n"
            "    - {name: no-curl, path: /usr/bin/curl, action: block}\n"
            "    - {name: tools, path: /usr/bin/*}\n"
        )
    )
    assert c.decide(ProcessOp("/bin/sh", "/usr/sbin/cron", "-c backup")).rule == "sh-from-cron"
    assert c.decide(ProcessOp("/bin/sh", "/usr/sbin/nginx", "-c id")).rule == "default"
    assert c.decide(ProcessOp("/bin/sh", "", "-c id")).rule == "default"  # unknown parent
    assert c.decide(ProcessOp("/usr/sbin/nginx", "", "-t -c /etc/nginx.conf")).rule == "nginx-test"
    assert c.decide(ProcessOp("/usr/sbin/nginx", "", "-g daemon off;")).rule == "default"
    assert c.decide(ProcessOp("/usr/bin/curl", "", "")) == Verdict("block", "p", "no-curl")
    assert c.decide(ProcessOp("/usr/bin/id", "", "")).rule == "tools"


def test_network_rules_match_direction_peer_port_and_protocol() -> None:
    c = policy(
        spec(
            "  network:\n"
            "    - {name: api, direction: egress, peer: {cidr: 10.0.0.0/8}, ports: [443, 8000-8080], protocol: tcp}\n"
            "    - {name: dns, direction: egress, peer: {cidr: 192.0.2.53/32}, ports: [53], protocol: udp}\n"
            "    - {name: v6, direction: egress, peer: {cidr: '2001:db8::/32'}}\n"
            "    - {name: web, direction: ingress, ports: [80]}\n"
            "    - {name: serve, direction: listen, ports: [80], protocol: tcp}\n"
        )
    )

    def rule(op: NetOp) -> str:
        return c.decide(op).rule

    assert rule(NetOp("egress", "10.1.2.3", 443, "tcp")) == "api"
    assert rule(NetOp("egress", "10.1.2.3", 8080, "tcp")) == "api"
    assert rule(NetOp("egress", "10.1.2.3", 8081, "tcp")) == "default"
    assert rule(NetOp("egress", "10.1.2.3", 443, "udp")) == "default"
    assert rule(NetOp("egress", "10.1.2.3", 443, "")) == "api"  # unknown protocol: either
    assert rule(NetOp("egress", "11.1.2.3", 443, "tcp")) == "default"
    assert rule(NetOp("egress", "192.0.2.53", 53, "udp")) == "dns"
    assert rule(NetOp("egress", "2001:db8::1", 22, "tcp")) == "v6"
    assert rule(NetOp("egress", "not-an-ip", 22, "tcp")) == "default"
    assert rule(NetOp("ingress", "203.0.113.9", 80, "tcp")) == "web"
    assert rule(NetOp("ingress", "203.0.113.9", 81, "tcp")) == "default"
    assert rule(NetOp("listen", "0.0.0.0", 80, "tcp")) == "serve"
    assert rule(NetOp("listen", "0.0.0.0", 8080, "tcp")) == "default"


def test_workload_and_dns_peers_need_a_resolver() -> None:
    text = spec(
        "  network:\n"
        "    - {name: db, direction: egress, peer: {workload: k8s/shop/statefulset/db}, ports: [5432]}\n"
        "    - {name: api, direction: egress, peer: {dns: api.example.com}, ports: [443]}\n"
    )
    op = NetOp("egress", "10.244.3.7", 5432, "tcp")
    unresolved = policy(text)
    assert unresolved.decide(op).rule == "default"
    assert unresolved.net_rules().extra == {"unresolved": "db,api"}

    asked: list[Peer] = []

    def resolve(peer: Peer) -> list[Network]:
        asked.append(peer)
        return [ipaddress.ip_network("10.244.3.7/32")] if peer.workload else []

    resolved = policy(text, resolve=resolve)
    assert resolved.decide(op).rule == "db"
    assert asked == [Peer(workload="k8s/shop/statefulset/db"), Peer(dns="api.example.com")]
    rules = resolved.net_rules()
    assert rules.egress == (NetRule("db", ipaddress.ip_network("10.244.3.7/32"), (5432, 5432)),)
    assert rules.extra == {"unresolved": "api"}
    assert unresolved.net_rules(resolve=resolve).egress == rules.egress


def test_net_rules_for_the_cgroup_programs() -> None:
    c = policy(
        spec(
            "  network:\n"
            "    - {name: api, direction: egress, peer: {cidr: 10.0.0.0/8}, ports: [443, 8000-8080], protocol: tcp}\n"
            "    - {name: meta, direction: egress, peer: {cidr: 169.254.169.254/32}, action: block}\n"
            "    - {name: web, direction: ingress, ports: [80]}\n"
            "    - {name: serve, direction: listen, ports: [80], protocol: tcp}\n"
            "  privileged:\n"
            "    - {name: ping, operation: raw_socket, action: audit}\n",
            action="audit",
        )
    )
    ten = ipaddress.ip_network("10.0.0.0/8")
    any4, any6 = ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")
    r = c.net_rules()
    assert r.policy == "p" and r.default_action == "audit"
    assert r.egress == (
        NetRule("meta", ipaddress.ip_network("169.254.169.254/32"), (0, 65535), "any", "block"),
        NetRule("api", ten, (443, 443), "tcp"),
        NetRule("api", ten, (8000, 8080), "tcp"),
    )
    assert r.bind == (NetRule("serve", any4, (80, 80), "tcp"), NetRule("serve", any6, (80, 80), "tcp"))
    assert (r.raw_sockets, r.raw_rule) == ("audit", "ping")


def test_privileged_operations_are_decided_by_operation() -> None:
    c = policy(
        spec(
            "  privileged:\n    - {name: drop, operation: setuid}\n    - {name: nomount, operation: mount, action: block}\n"
        )
    )
    assert c.decide(PrivOp("setuid")).rule == "drop"
    assert c.decide(PrivOp("mount")) == Verdict("block", "p", "nomount")
    assert c.decide(PrivOp("ptrace")).rule == "default"
    event = {"evt.type": "setresuid", "evt.rawres": 0, "proc.exepath": "/usr/sbin/nginx"}
    assert c.evaluate(event) == Verdict("allow", "p", "drop")


def test_what_is_no_operation_gets_no_verdict() -> None:
    c = policy(NGINX)
    assert c.evaluate({"evt.type": "procexit"}) is None
    assert c.evaluate({"evt.type": "openat", "evt.rawres": -13, "fd.name": "/etc/shadow"}) is None
    assert c.evaluate({"evt.type": "read", "evt.rawres": 10}) is None


class TestFanotifyDecisions:
    POLICY = spec(
        "  process:\n"
        "    - {name: nginx, path: /usr/sbin/nginx}\n"
        "    - {name: cron-sh, path: /bin/sh, parent: /usr/sbin/cron}\n"
        "    - {name: no-bash, path: /usr/bin/bash, action: block}\n"
        "    - {name: maybe-block, path: /usr/bin/id, parent: /bin/sh, action: block}\n"
        "  file:\n"
        "    - {name: loader, path: /lib64/ld-linux-x86-64.so.2, access: [exec, read]}\n"
        "    - {name: libs, path: /usr/lib/**, access: [read]}\n"
        "    - {name: logs, path: /var/log/nginx/*, access: [write]}\n"
        "    - {name: no-shadow, path: /etc/shadow, access: [read], action: block}\n"
    )

    @pytest.mark.parametrize(
        ("path", "rule"),
        [
            ("/usr/sbin/nginx", "nginx"),
            ("/bin/sh", "cron-sh"),  # the parent cannot be checked at exec: left to Monitor
            ("/lib64/ld-linux-x86-64.so.2", "loader"),
            ("/usr/bin/bash", "no-bash"),
            ("/usr/bin/id", "default"),  # a block with a parent cannot be proved: not applied
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", "default"),  # read-only: no exec
            ("/tmp/payload", "default"),
        ],
    )
    def test_exec(self, path: str, rule: str) -> None:
        assert policy(self.POLICY).decide_file("exec", path).rule == rule

    @pytest.mark.parametrize(
        ("path", "rule"),
        [
            ("/usr/lib/x86_64-linux-gnu/libc.so.6", "libs"),
            ("/var/log/nginx/access.log", "logs"),  # open cannot tell read from write
            ("/etc/shadow", "no-shadow"),
            ("/usr/sbin/nginx", "nginx"),  # exec opens the executable too
            ("/usr/bin/bash", "no-bash"),  # ld.so /usr/bin/bash opens it without an exec
            ("/etc/passwd", "default"),
        ],
    )
    def test_open(self, path: str, rule: str) -> None:
        assert policy(self.POLICY).decide_file("open", path).rule == rule


def test_evaluate_cost_per_event_is_printed() -> None:
    """Not an assertion on time (benchmarks/policy_eval.py measures): the cost, for the log."""
    compiled = policy(NGINX)
    datas = [ev.data for ev in recording()] * 2000
    t0 = time.perf_counter()
    for d in datas:
        compiled.evaluate(d)
    per = (time.perf_counter() - t0) / len(datas)
    print(f"evaluate: {per * 1e6:.2f} us per event over {len(datas)} events")


def test_remembered_decisions_stay_right_past_the_memo_size() -> None:
    c = policy(
        spec(
            "  file:\n    - {name: data, path: /data/*}\n    - {name: secret, path: /data/secret, action: block}\n"
        )
    )
    for round_ in range(2):
        for i in range(MEMO_SIZE + 100):
            assert c.decide(FileOp(f"/data/{i}", ("read",))).rule == "data", (round_, i)
        assert c.decide(FileOp("/data/secret", ("read",))).rule == "secret"
        assert c.decide(FileOp("/data/x/y", ("write",))).rule == "default"
        assert c.decide_file("open", "/data/secret").rule == "secret"
