"""A file rule's ``except``: loading it, deciding with it (against a reference), and the policy a
profile gives, whose patterns never allow a credential file that was not itself seen."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.behavior.generalise import EXCLUDE, Thresholds
from stockade.behavior.learn import Learner
from stockade.behavior.model import FileAccess, Profile, Seen
from stockade.behavior.ops import FileOp
from stockade.model.clock import FakeClock
from stockade.model.event import Event
from stockade.policy.compile import ACTION_ORDER, CompiledPolicy
from stockade.policy.decision import Action, Verdict
from stockade.policy.dryrun import dry_run
from stockade.policy.generate import generate_policy
from stockade.policy.globs import path_match
from stockade.policy.load import dump_policy, parse_policy
from stockade.policy.model import FileRule, Metadata, PolicyError, PolicySpec, WorkloadPolicy


def learned_rules(policy: WorkloadPolicy) -> list[FileRule]:
    """The file rules generated from what was learned (not those every container policy gets for
    the runtime's own reads: generate.RUNTIME_READS)."""
    return [r for r in policy.spec.file if not (r.name or "").startswith("runtime-read-")]


def spec(body: str) -> str:
    return (
        "apiVersion: stockade.dev/v1alpha1\nkind: WorkloadPolicy\nmetadata: {name: p}\n"
        f"spec:\n  workload: host\n  action: block\n{body}"
    )


# -- loading --------------------------------------------------------------------------------------


def test_except_loads_dumps_and_loads_back() -> None:
    p = parse_policy(spec("  file:\n    - path: /srv/www/*\n      except: [/**/*.key, /srv/www/private]\n"))
    assert p.spec.file[0].except_ == ["/**/*.key", "/srv/www/private"]
    text = dump_policy(p)
    assert "      except: [/**/*.key, /srv/www/private]\n" in text
    assert parse_policy(text) == p


def test_an_invalid_exception_is_named_where_it_is() -> None:
    with pytest.raises(PolicyError) as ei:
        parse_policy(
            spec(
                "  file:\n    - path: /srv/*\n      except:\n        - /srv/ok\n        - srv/x.key\n        - /srv/[a\n"
            ),
            "p.yaml",
        )
    assert list(ei.value.details) == [
        "p.yaml:11:11 (spec.file[0].except[1]): invalid glob 'srv/x.key': not an absolute path "
        "(it must start with '/')",
        "p.yaml:12:11 (spec.file[0].except[2]): invalid glob '/srv/[a': '[' without its ']' in '[a'",
    ]


def test_a_misspelt_except_is_named_with_the_fields_a_file_rule_has() -> None:
    with pytest.raises(PolicyError) as ei:
        parse_policy(spec("  file:\n    - path: /srv/*\n      excpet: [/srv/x]\n"), "p.yaml")
    assert (
        "unknown field 'excpet' (did you mean 'except'?); known fields: access, action, except, name, path"
        in str(ei.value)
    )


# -- deciding, against a reference --------------------------------------------------------------

_COMP = st.sampled_from(["a", "b", "ab", "*", "a*", "?", "[ab]", "**"])
_GLOB = st.lists(_COMP, min_size=1, max_size=3).map(lambda cs: "/" + "/".join(cs))
_EXACT = st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1, max_size=3).map(
    lambda cs: "/" + "/".join(cs)
)
_PATH = st.lists(st.sampled_from(["a", "b", "ab", "ba", "c"]), min_size=1, max_size=4).map(
    lambda cs: "/" + "/".join(cs)
)
_ACCESSES: list[FileAccess] = ["read", "write", "exec"]


@st.composite
def file_rules(draw: st.DrawFn) -> list[FileRule]:
    rules = []
    for i in range(draw(st.integers(1, 5))):
        rules.append(
            FileRule(
                name=f"r{i}",
                path=draw(st.one_of(_GLOB, _EXACT)),
                except_=draw(st.none() | st.lists(st.one_of(_GLOB, _EXACT), min_size=1, max_size=2)),
                access=draw(st.lists(st.sampled_from(_ACCESSES), min_size=1, max_size=3, unique=True)),
                action=draw(st.sampled_from(["allow", "allow", "audit", "block"])),
            )
        )
    return rules


def reference(rules: list[FileRule], path: str, access: FileAccess | None, default: Verdict) -> Verdict:
    """The documented meaning: block, then audit, then allow rules; the first (in order) whose
    path matches and none of whose exceptions matches; else the default. `access` None: any."""
    for action in ACTION_ORDER:
        for r in rules:
            if r.action != action or (access is not None and access not in r.access):
                continue
            if path_match(r.path, path) and not any(path_match(e, path) for e in r.except_ or ()):
                return Verdict(action, "p", r.name or "")
    return default


def _policy(rules: list[FileRule], action: Action = "block") -> WorkloadPolicy:
    return WorkloadPolicy(
        apiVersion="stockade.dev/v1alpha1",
        kind="WorkloadPolicy",
        metadata=Metadata(name="p"),
        spec=PolicySpec(workload="host", action=action, file=rules),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_rules(), st.lists(_PATH, min_size=1, max_size=12), st.data())
def test_a_rule_with_exceptions_matches_what_its_path_does_and_no_exception_does(
    rules: list[FileRule], paths: list[str], data: st.DataObject
) -> None:
    c = CompiledPolicy(_policy(rules))
    # paths drawn, and the rules' own exact paths and exceptions (where lookups and regexes meet)
    candidates = paths + [r.path for r in rules] + [e for r in rules for e in r.except_ or () if "*" not in e]
    for path in data.draw(st.permutations(candidates)):  # any order: the memo must not matter
        for access in _ACCESSES:
            want = reference(rules, path, access, c.default)
            assert c.decide(FileOp(path, (access,))) == want, (path, access)
        want_exec = reference([r for r in rules if "exec" in r.access], path, None, c.default)
        assert c.decide_file("exec", path) == want_exec, path
        assert c.decide_file("open", path) == reference(rules, path, None, c.default), path
        assert c.decide(FileOp(path, ("read",))) == reference(rules, path, "read", c.default)


def test_an_exception_names_no_verdict_of_its_own() -> None:
    c = CompiledPolicy(
        parse_policy(
            spec(
                "  file:\n"
                "    - {name: www, path: /srv/www/**, except: [/**/*.key, /srv/www/private/**]}\n"
                "    - {name: tls, path: /srv/www/tls.key, access: [read]}\n"
                "    - {name: exact, path: /srv/a, except: [/srv/*]}\n"
                "    - {name: no-private, path: /srv/www/private/*, except: [/srv/www/private/ok], action: audit}\n"
            )
        )
    )
    read = {p: c.decide(FileOp(p, ("read",))).rule for p in ["/srv/www/index.html", "/srv/www/a/b.css"]}
    assert read == {"/srv/www/index.html": "www", "/srv/www/a/b.css": "www"}
    assert c.decide(FileOp("/srv/www/server.key", ("read",))).rule == "default"  # excepted, not seen
    assert c.decide(FileOp("/srv/www/tls.key", ("read",))).rule == "tls"  # seen itself
    assert c.decide(FileOp("/srv/www/tls.key", ("write",))).rule == "default"
    assert c.decide(FileOp("/srv/a", ("read",))).rule == "default"  # an exact path excepted: no match
    assert c.decide(FileOp("/srv/www/private/x", ("read",))) == Verdict("audit", "p", "no-private")
    assert c.decide(FileOp("/srv/www/private/ok", ("read",))).rule == "default"  # neither rule
    assert c.decide_file("open", "/srv/www/server.key").rule == "default"
    assert c.decide_file("open", "/srv/www/index.html").rule == "www"


# -- generated from a profile -------------------------------------------------------------------

WEB = "container/localhost/web/web"
PAGES = [
    "index.html",
    "about.html",
    "style.css",
    "app.js",
    "logo.png",
    "a.html",
    "b.html",
    "c.html",
    "d.html",
]


def _open(path: str, t: int) -> dict[str, Any]:
    return {"evt.type": "openat", "evt.time": t, "fd.name": path, "evt.arg.flags": "O_RDONLY"}


def learned(extra: list[str]) -> tuple[Profile, list[dict[str, Any]]]:
    """A web root learned from its pages (nine: /srv/www/* by the default thresholds), then `extra`."""
    events = [_open(f"/srv/www/{p}", i) for i, p in enumerate(PAGES)]
    events += [_open(p, 100 + i) for i, p in enumerate(extra)]
    lr = Learner(Profile(WEB), clock=FakeClock(), thresholds=Thresholds())
    for e in events:
        lr.observe(e)
    return lr.profile, events


def test_a_generated_pattern_excepts_the_credentials_it_was_not_seen_to_read() -> None:
    profile, _events = learned([])
    assert ("/srv/www/*", "read") in profile.files and (EXCLUDE + "**/*.key", "read") in profile.files
    policy = generate_policy(profile)
    (www,) = learned_rules(policy)
    assert (www.path, www.access) == ("/srv/www/*", ["read"])
    assert www.except_ is not None and "/**/*.key" in www.except_
    assert "/**/.ssh/**" not in www.except_  # /srv/www/* cannot reach below a .ssh directory
    c = CompiledPolicy(policy)
    assert c.decide(FileOp("/srv/www/index.html", ("read",))).allowed
    assert c.decide(FileOp("/srv/www/new.html", ("read",))).allowed  # the pattern, as learned
    for key in ["/srv/www/server.key", "/srv/www/id_rsa", "/srv/www/tls.p12"]:
        assert c.decide(FileOp(key, ("read",))) == Verdict("block", policy.metadata.name, "default"), key
        assert not c.decide_file("open", key).allowed, key
    assert parse_policy(dump_policy(policy)) == policy


def test_a_key_that_was_learned_itself_stays_allowed() -> None:
    profile, events = learned(["/srv/www/tls.key"])
    assert ("/srv/www/tls.key", "read") in profile.files  # a credential: exact, never generalised
    policy = generate_policy(profile)
    assert [(r.path, r.except_ is not None) for r in learned_rules(policy)] == [
        ("/srv/www/*", True),
        ("/srv/www/tls.key", False),
    ]
    c = CompiledPolicy(policy)
    assert c.decide(FileOp("/srv/www/tls.key", ("read",))).allowed
    assert c.decide_file("open", "/srv/www/tls.key").allowed
    assert not c.decide(FileOp("/srv/www/server.key", ("read",))).allowed
    # and nothing the workload did is denied
    report = dry_run(policy, (Event(source="syscall", data=e) for e in events))
    assert report.findings == []


def test_an_exclusion_no_policy_glob_can_write_leaves_the_pattern_out() -> None:
    p = Profile(WEB)
    for key in [("/srv/www/*", "read"), (EXCLUDE + "**/*.key", "read"), (EXCLUDE + "**/x**y.key", "read")]:
        p.files[key] = Seen(1, 1, 1)  # type: ignore[index]
    assert learned_rules(generate_policy(p)) == []  # denied whole rather than allowed with a key
