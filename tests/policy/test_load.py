"""Loading WorkloadPolicy files: every problem of a file at once, each with file, line, column and
field; other kinds skipped; names given to unnamed rules; canonical YAML that loads back equal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.behavior.model import PRIVILEGED_OPS
from stockade.errors import Location
from stockade.policy.decision import Action
from stockade.policy.load import dump_policies, dump_policy, load_policies, parse_policies, parse_policy
from stockade.policy.model import (
    FileRule,
    Metadata,
    NetworkRule,
    Peer,
    PolicyError,
    PolicySpec,
    PrivilegedRule,
    ProcessRule,
    WorkloadPolicy,
)

GOOD = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata:
  name: web
spec:
  workload: k8s/shop/deployment/web
  process:
    - name: nginx
      path: /usr/sbin/nginx
    - path: /usr/bin/run*
      parent: /usr/bin/**
  file:
    - path: /etc/nginx/**
      access: [read]
  network:
    - direction: egress
      peer: {cidr: 10.0.0.0/8}
      ports: [443, "8000-8080"]
      protocol: tcp
  privileged:
    - operation: setuid
  syscalls: [read, write]
"""

# every line numbered for the expectations below
BAD = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata:
  name: web
spec:
  workload: k8s/shop/deployment/web
  actoin: block
  process:
    - name: nginx
      path: usr/sbin/nginx
  file:
    - path: /etc/**conf
      access: [read, reed]
    - path: /tmp/x
      access: []
  network:
    - direction: egress
      peer: {cidr: 10.0.0.1/8}
      ports: [443, 70000, "9-3", http]
    - direction: listen
      peer: {dns: example.com}
    - direction: sideways
      peer: {cidr: 10.0.0.0/8, dns: example.com}
  privileged:
    - operation: teleport
    - name: nginx
      operation: mount
    - name: default
      operation: bpf
  syscalls: [read, openatt, read]
"""


def _problems(text: str, origin: str = "bad.yaml") -> list[str]:
    with pytest.raises(PolicyError) as ei:
        parse_policies(text, origin)
    return list(ei.value.details)


def test_every_problem_of_a_file_is_reported_at_once_with_where() -> None:
    assert _problems(BAD) == [
        "bad.yaml:7:11 (spec.actoin): unknown field 'actoin' (did you mean 'action'?); known fields: "
        "action, file, network, privileged, process, syscalls, workload",
        "bad.yaml:10:13 (spec.process[0].path): invalid glob 'usr/sbin/nginx': not an absolute path "
        "(it must start with '/')",
        "bad.yaml:12:13 (spec.file[0].path): invalid glob '/etc/**conf': '**' must be a whole path "
        "component (in '**conf'); use '*' within a component",
        "bad.yaml:13:22 (spec.file[0].access[1]): 'reed' is not one of read, write, exec",
        "bad.yaml:15:15 (spec.file[1].access): lists no access: the rule would match nothing",
        "bad.yaml:18:20 (spec.network[0].peer.cidr): '10.0.0.1/8' has host bits set (did you mean 10.0.0.0/8?)",
        "bad.yaml:19:20 (spec.network[0].ports[1]): '70000' is not within 1-65535",
        "bad.yaml:19:27 (spec.network[0].ports[2]): '9-3' is an empty range (9 > 3)",
        "bad.yaml:19:34 (spec.network[0].ports[3]): 'http' is not a port or a range LOW-HIGH",
        "bad.yaml:21:13 (spec.network[1].peer): a listen rule has no peer (it matches the local port)",
        "bad.yaml:22:18 (spec.network[2].direction): 'sideways' is not one of egress, ingress, listen",
        "bad.yaml:23:13 (spec.network[2].peer): a peer names exactly one of cidr, workload, dns",
        "bad.yaml:25:18 (spec.privileged[0].operation): 'teleport' is not one of "
        + ", ".join(PRIVILEGED_OPS),
        "bad.yaml:26:13 (spec.privileged[1].name): rule name 'nginx' is already used by spec.process[0]",
        "bad.yaml:28:13 (spec.privileged[2].name): 'default' names the policy's own action; pick another",
        "bad.yaml:30:20 (spec.syscalls[1]): 'openatt' is not an x86-64 system call (did you mean 'openat'?)",
        "bad.yaml:30:29 (spec.syscalls[2]): 'read' is listed twice",
    ]


def test_the_error_names_the_first_problem_and_how_many_more() -> None:
    with pytest.raises(PolicyError) as ei:
        parse_policies(BAD, "bad.yaml")
    e = ei.value
    assert e.location == Location("bad.yaml", 7, 11, "spec.actoin")
    assert str(e).startswith("bad.yaml:7:11 (spec.actoin): unknown field 'actoin'")
    assert str(e).endswith("(and 16 more)")


def test_a_missing_field_is_named_where_its_mapping_is() -> None:
    text = "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: w}\nspec:\n  file:\n    - access: [read]\n"
    assert _problems(text) == [
        "bad.yaml:5:3 (spec.workload): 'workload' is required",
        "bad.yaml:6:7 (spec.file[0].path): 'path' is required",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: stockade.dev/v1\nkind: WorkloadPolicy\n",
            "bad.yaml:1:13 (apiVersion): 'stockade.dev/v1' is not a supported apiVersion "
            "(this Stockade reads stockade.dev/v1alpha1)",
        ),
        (
            "apiVersion: stockade.dev/v1alpha1\nmetadata: {}\n",
            "bad.yaml:1:1 (kind): 'kind' is required (kind: WorkloadPolicy)",
        ),
        (
            "- a\n- b\n",
            "bad.yaml:1:1: document 1 is not a mapping (a WorkloadPolicy has apiVersion, kind, metadata, spec)",
        ),
        (
            "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: w}\n"
            "spec: {workload: web, process: [{path: /x, action: deny}]}\n",
            "bad.yaml:4:18 (spec.workload): 'web' is not a workload id (host, k8s/NAMESPACE/KIND/NAME or "
            "container/REPOSITORY/NAME)",
        ),
    ],
)
def test_document_level_mistakes(text: str, expected: str) -> None:
    assert _problems(text)[0] == expected


def test_wrong_shapes_say_what_was_expected() -> None:
    text = (
        "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: w}\n"
        "spec:\n  workload: host\n  process: {path: /x}\n  file:\n    - path: [/a, /b]\n"
    )
    assert _problems(text) == [
        "bad.yaml:6:12 (spec.process): expected a list",
        "bad.yaml:8:13 (spec.file[0].path): expected a single value",
    ]


def test_invalid_yaml_names_its_line_and_column() -> None:
    with pytest.raises(PolicyError) as ei:
        parse_policies("spec:\n  a: [1, 2\n", "bad.yaml")
    assert ei.value.location is not None
    assert (ei.value.location.file, ei.value.location.line) == ("bad.yaml", 3)
    assert str(ei.value).startswith("bad.yaml:3:1: invalid YAML:")


def test_unnamed_rules_get_names_by_section_and_position() -> None:
    p = parse_policy(GOOD)
    assert [r.name for r in p.spec.process] == ["nginx", "process-2"]
    assert [r.name for r in p.spec.file] == ["file-1"]
    assert [r.name for r in p.spec.network] == ["network-1"]
    assert [r.name for r in p.spec.privileged] == ["privileged-1"]
    assert p.spec.network[0].ports == [443, "8000-8080"]


def test_a_given_name_that_clashes_with_a_generated_one_is_an_error() -> None:
    text = GOOD.replace("    - name: nginx\n", "    - name: process-2\n")
    assert _problems(text) == [
        "bad.yaml:10:7 (spec.process[1].name): rule name 'process-2' (the name this unnamed rule gets) "
        "is already used by spec.process[0]"
    ]


def test_other_kinds_are_skipped_with_a_note(tmp_path: Path) -> None:
    f = tmp_path / "mixed.yaml"
    f.write_text(
        "apiVersion: security.kubearmor.com/v1\nkind: KubeArmorPolicy\nmetadata: {name: k}\n---\n"
        + GOOD
        + "---\n---\napiVersion: stockade.dev/v1alpha1\nkind: ResponsePlaybook\n"
    )
    notes: list[str] = []
    loaded = load_policies([f], notes=notes)
    assert [lp.policy.metadata.name for lp in loaded] == ["web"]
    assert (loaded[0].origin, loaded[0].line) == (str(f), 5)
    assert notes == [
        f"{f}:1: skipped a KubeArmorPolicy (security.kubearmor.com/v1): not a WorkloadPolicy",
        f"{f}:29: skipped a ResponsePlaybook (stockade.dev/v1alpha1): not a WorkloadPolicy",
    ]


def test_a_directory_is_its_yaml_files_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(GOOD.replace("name: web", "name: web-b").replace("/web", "/b"))
    (tmp_path / "a.yml").write_text(GOOD.replace("name: web", "name: web-a").replace("/web", "/a"))
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not yaml: [")
    loaded = load_policies([tmp_path])
    assert [Path(lp.origin).name for lp in loaded] == ["a.yaml", "b.yaml", "a.yml"]


def test_two_policies_with_one_name_or_workload_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD.replace("/web", "/other"))
    (tmp_path / "c.yaml").write_text(GOOD.replace("name: web", "name: web-c"))
    with pytest.raises(PolicyError) as ei:
        load_policies([tmp_path])
    a, b, c = (tmp_path / n for n in ("a.yaml", "b.yaml", "c.yaml"))
    assert ei.value.details == (
        f"{b}:1:1 (policy 'web'): name 'web' is already that of the policy at {a}:1:1 (policy 'web')",
        f"{c}:1:1 (policy 'web-c'): workload 'k8s/shop/deployment/web' is already that of the policy at "
        f"{a}:1:1 (policy 'web')",
    )


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as ei:
        load_policies([tmp_path / "nope.yaml"])
    assert str(ei.value) == f"{tmp_path / 'nope.yaml'}: cannot read policy file: No such file or directory"


def test_parse_policy_wants_exactly_one() -> None:
    with pytest.raises(PolicyError, match="expected one WorkloadPolicy document, found 2"):
        parse_policy(GOOD + "---\n" + GOOD.replace("name: web", "name: web2"))


def test_dump_is_canonical_and_loads_back_equal() -> None:
    p = parse_policy(GOOD)
    text = dump_policy(p)
    assert parse_policy(text) == p
    assert dump_policy(parse_policy(text)) == text
    assert text.splitlines()[:12] == [
        "apiVersion: stockade.dev/v1alpha1",
        "kind: WorkloadPolicy",
        "metadata:",
        "  name: web",
        "spec:",
        "  workload: k8s/shop/deployment/web",
        "  action: block",
        "  process:",
        "    - name: nginx",
        "      path: /usr/sbin/nginx",
        "      action: allow",
        "    - name: process-2",
    ]
    assert "      peer: {cidr: 10.0.0.0/8}" in text
    assert "      ports: [443, 8000-8080]" in text
    two = parse_policies(dump_policies([p, p.model_copy(update={"metadata": Metadata(name="w2")})]))
    assert [lp.policy.metadata.name for lp in two] == ["web", "w2"]


# -- the round trip over generated policies ------------------------------------------------------
_NAME = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True).filter(lambda s: s != "default")
_WORD = st.text(alphabet="abcxyz09._-", min_size=1, max_size=6)
_COMP = st.one_of(_WORD, st.just("*"), _WORD.map(lambda w: w + "*"), st.just("**"))
_GLOB = st.lists(_COMP, min_size=1, max_size=4).map(lambda cs: "/" + "/".join(cs))
_ACTIONS: list[Action] = ["allow", "audit", "block"]
_ACTION = st.sampled_from(_ACTIONS)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


def _proc(name: str | None) -> st.SearchStrategy[ProcessRule]:
    return st.builds(
        ProcessRule,
        name=st.just(name),
        path=_GLOB,
        parent=st.none() | _GLOB,
        args=st.none() | _TEXT.filter(bool),
        action=_ACTION,
    )


def _file(name: str | None) -> st.SearchStrategy[FileRule]:
    access = st.lists(st.sampled_from(["read", "write", "exec"]), min_size=1, max_size=3, unique=True)
    return st.builds(
        FileRule,
        name=st.just(name),
        path=_GLOB,
        except_=st.none() | st.lists(_GLOB, max_size=2),
        access=access,
        action=_ACTION,
    )


_PEER = st.one_of(
    st.none(),
    st.sampled_from(["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]).map(lambda c: Peer(cidr=c)),
    st.sampled_from(["host", "k8s/a/deployment/b", "container/docker.io/x/y"]).map(
        lambda w: Peer(workload=w)
    ),
    st.sampled_from(["example.com", "*.svc.cluster.local"]).map(lambda d: Peer(dns=d)),
)
_PORT = st.one_of(
    st.integers(1, 65535),
    st.tuples(st.integers(1, 999), st.integers(0, 999)).map(lambda t: f"{t[0]}-{t[0] + t[1]}"),
)


def _net(name: str | None) -> st.SearchStrategy[NetworkRule]:
    return st.builds(
        NetworkRule,
        name=st.just(name),
        direction=st.sampled_from(["egress", "ingress"]),
        peer=_PEER,
        ports=st.none() | st.lists(_PORT, min_size=1, max_size=3),
        protocol=st.sampled_from(["tcp", "udp", "any"]),
        action=_ACTION,
    )


def _priv(name: str | None) -> st.SearchStrategy[PrivilegedRule]:
    return st.builds(
        PrivilegedRule, name=st.just(name), operation=st.sampled_from(PRIVILEGED_OPS), action=_ACTION
    )


@st.composite
def policies(draw: st.DrawFn) -> WorkloadPolicy:
    names = iter(draw(st.lists(_NAME, min_size=16, max_size=16, unique=True)))

    def some(make: Any) -> Any:
        return [draw(make(next(names))) for _ in range(draw(st.integers(0, 4)))]

    syscalls = draw(
        st.none() | st.lists(st.sampled_from(["read", "write", "openat", "execve", "bpf"]), unique=True)
    )
    return WorkloadPolicy(
        apiVersion="stockade.dev/v1alpha1",
        kind="WorkloadPolicy",
        metadata=Metadata(
            name=draw(_NAME),
            labels=draw(st.dictionaries(_NAME, _TEXT, max_size=2)),
            annotations=draw(st.dictionaries(_NAME, _TEXT, max_size=2)),
        ),
        spec=PolicySpec(
            workload=draw(st.sampled_from(["host", "k8s/shop/deployment/web"])),
            action=draw(_ACTION),
            process=some(_proc),
            file=some(_file),
            network=some(_net),
            privileged=some(_priv),
            syscalls=syscalls,
        ),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_any_valid_policy_round_trips_through_yaml(p: WorkloadPolicy) -> None:
    text = dump_policy(p)
    assert parse_policy(text, "round.yaml") == p
    assert dump_policy(parse_policy(text)) == text
