"""Path patterns: generated names, matching, intersection, and the credential files no pattern covers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.behavior.generalise import (
    CREDENTIALS,
    EXCLUDE,
    SYSTEM_CREDENTIALS,
    PathIndex,
    Thresholds,
    arg_shape,
    covers,
    exclusions,
    exclusions_of,
    generalise_path,
    glob_match,
    intersects,
    is_credential,
    is_pattern,
    may_generalise,
)
from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile
from stockade.model.clock import FakeClock
from stockade.policy.compile import CompiledPolicy
from stockade.policy.generate import generate_policy
from stockade.policy.globs import check_path_glob, path_match

BUILTIN_RULES = (
    Path(__file__).resolve().parents[2] / "src" / "stockade" / "rules" / "builtin" / "stockade.yaml"
)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("/tmp/tmp.Xa3bQ9k2Lm", "/tmp/tmp.*"),  # mktemp
        ("/tmp/tmp.a8B2c9", "/tmp/tmp.*"),  # busybox mktemp
        ("/tmp/tmpab12cd", "/tmp/tmp*"),  # Python tempfile
        ("/tmp/tmp_k2x9wq1.json", "/tmp/tmp*.json"),
        ("/tmp/build.Xa3bQ9", "/tmp/build.*"),  # a mktemp template
        ("/proc/1234/status", "/proc/*/status"),
        ("/proc/self/fd/3", "/proc/*/fd/*"),
        ("/proc/thread-self/attr/current", "/proc/*/attr/current"),
        ("/proc/77/task/78/stat", "/proc/*/task/*/stat"),
        ("/var/log/app.log.1", "/var/log/app.log.*"),
        ("/var/log/app.log.gz", "/var/log/app.log.*"),
        ("/var/log/app.log.3.gz", "/var/log/app.log.*"),
        ("/var/log/app-2026-12-06.log", "/var/log/app-*.log"),
        ("/var/log/app-20261206T101500.log", "/var/log/app-*.log"),
        ("/run/550e8400-e29b-41d4-a716-446655440000.sock", "/run/*.sock"),
        ("/var/lib/containers/overlay/3f2a9b8c7d6e5f4a3b2c1d0e/diff", "/var/lib/containers/overlay/*/diff"),
        ("/tmp/core.12345", "/tmp/core.*"),
        ("/dev/pts/3", "/dev/pts/*"),
        # names that are not generated stay as they are
        ("/usr/lib/python3.11/os.py", "/usr/lib/python3.11/os.py"),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
        ("/etc/ld.so.cache", "/etc/ld.so.cache"),
        ("/tmp/tmpfiles.d", "/tmp/tmpfiles.d"),
        ("/var/log/app.log", "/var/log/app.log"),
        ("/srv/backup.tar.gz", "/srv/backup.tar.gz"),
        # credential files are never generalised, whatever their name looks like
        ("/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key"),
        ("/tmp/tmpab12cd.key", "/tmp/tmpab12cd.key"),
        ("/proc/1234/environ", "/proc/1234/environ"),
        (
            "/var/run/secrets/kubernetes.io/serviceaccount/..2026_12_06_10_15_00.123/token",
            "/var/run/secrets/kubernetes.io/serviceaccount/..2026_12_06_10_15_00.123/token",
        ),
    ],
)
def test_generalise_path(path: str, want: str) -> None:
    assert generalise_path(path) == want
    assert glob_match(want, path)


@pytest.mark.parametrize(
    ("args", "want"),
    [
        ("30", "*"),
        ("31", "*"),
        ("--id=1234 -v", "--id=* -v"),
        ("-n 5 -t 1.5s --mem 512M", "-n * -t * --mem *"),
        ("run 550e8400-e29b-41d4-a716-446655440000", "run *"),
        ("--token=deadbeef12 key=7", "--token=* key=*"),
        ("-c /tmp/tmp.Xa3bQ9k2/run.sh", "-c /tmp/tmp.*/run.sh"),
        ("cat /proc/1234/status", "cat /proc/*/status"),
        ("-f /etc/httpd.conf 10.0.0.5", "-f /etc/httpd.conf 10.0.0.5"),
        ("", ""),
    ],
)
def test_arg_shape(args: str, want: str) -> None:
    assert arg_shape(args) == want


@pytest.mark.parametrize(
    ("pattern", "path", "want"),
    [
        ("/a/*", "/a/b", True),
        ("/a/*", "/a/b/c", False),
        ("/a/*", "/a/", True),
        ("/a/**", "/a/b/c", True),
        ("/a/**", "/a", False),
        ("/a/**/b", "/a/b", True),
        ("/a/**/b", "/a/x/y/b", True),
        ("/a/**/b", "/a/xb", False),
        ("**/*.key", "/srv/tls/x.key", True),
        ("**/*.key", "/x.key", True),
        ("/a/x**y", "/a/x/1/y", True),
        ("/a/**", "/a/", True),  # everything below /a
        ("/a/b?c[d]", "/a/bxcd", True),  # ? one character, [d] a set
        ("/a/b?c", "/a/b/c", False),  # neither matches "/"
        ("/a/[!x]", "/a//", False),
        ("/a/b[?]c[[]d]", "/a/b?c[d]", True),  # escaped: ? and [ are themselves
        ("/a/b[?]c", "/a/bxc", False),
    ],
)
def test_glob_match(pattern: str, path: str, want: bool) -> None:
    assert glob_match(pattern, path) is want


@pytest.mark.parametrize(
    ("a", "b", "want"),
    [
        ("/etc/*", "/etc/shadow", True),
        ("/etc/*", "/etc/sudoers.d/**", False),
        ("/etc/**", "/etc/sudoers.d/**", True),
        ("/proc/*/status", "/proc/*/environ", False),
        ("/tmp/tmp.*", "**/*.key", True),
        ("/tmp/tmp.*", "**/.ssh/**", False),
        ("/home/u/**", "**/.ssh/**", True),
        ("/var/log/app.log.*", "**/id_rsa*", False),
        ("/a/*/c", "/a/b/*", True),
        ("/a/*", "/a/b/*", False),
        ("**", "/x", True),
    ],
)
def test_intersects(a: str, b: str, want: bool) -> None:
    assert intersects(a, b) is want
    assert intersects(b, a) is want


# -- properties -----------------------------------------------------------------------------------

_word = st.from_regex(r"[a-z][a-z0-9_.-]{0,7}", fullmatch=True)
_generated = st.one_of(
    st.integers(0, 4_000_000).map(str),
    st.uuids().map(str),
    st.from_regex(r"tmp\.[A-Za-z0-9]{6,10}", fullmatch=True),
    st.from_regex(r"tmp[a-z0-9_]{5}[0-9_]", fullmatch=True),
    st.from_regex(r"[0-9a-f]{12,40}", fullmatch=True),
    st.from_regex(r"[a-z]{1,6}\.log(\.[0-9]{1,2})?(\.gz)?", fullmatch=True),
    st.from_regex(r"[a-z]{1,6}-20[0-9]{2}-[01][0-9]-[0-3][0-9]\.log", fullmatch=True),
)
_component = st.one_of(
    _word, _generated, st.sampled_from(["self", "proc", "etc", "tmp", ".ssh", "id_rsa", "x.key"])
)
_path = st.lists(_component, min_size=1, max_size=5).map(lambda cs: "/" + "/".join(cs))
#: directories where credentials live, so that collapses happen next to them
_ROOTS = [
    "/etc",
    "/etc/ssh",
    "/root",
    "/home/u",
    "/home/u/.config",
    "/var/run/secrets/kubernetes.io",
    "/proc/1",
    "/srv/tls",
]
_near_credentials = st.tuples(st.sampled_from(_ROOTS), st.lists(_component, min_size=1, max_size=3)).map(
    lambda t: t[0] + "/" + "/".join(t[1])
)


def _instance(draw: st.DrawFn, pattern: str) -> str:
    """A path that `pattern` (a credential pattern) matches."""
    name = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
    out = pattern
    if out.startswith("**/"):
        dirs = draw(st.lists(st.sampled_from(["etc", "home", "u", "root", "srv", "tmp", "app"]), max_size=3))
        out = "/" + "".join(d + "/" for d in dirs) + out[3:]
    if out.endswith("/**"):
        out = out[:-3] + "/" + "/".join(draw(st.lists(name, min_size=1, max_size=2)))
    while "*" in out:
        out = out.replace("*", draw(name), 1)
    assert glob_match(pattern, out), (pattern, out)
    return out


@st.composite
def credential_paths(draw: st.DrawFn) -> str:
    return _instance(draw, draw(st.sampled_from(CREDENTIALS)))


@given(_path)
def test_a_generalised_path_matches_the_path(path: str) -> None:
    pattern = generalise_path(path)
    assert glob_match(pattern, path)
    if is_credential(path):
        assert pattern == path


@given(credential_paths())
def test_credential_instances_are_credentials(path: str) -> None:
    assert is_credential(path)
    assert generalise_path(path) == path


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(_path, _near_credentials), min_size=1, max_size=120),
    st.lists(credential_paths(), min_size=1, max_size=8),
    st.integers(2, 40),
)
def test_a_learned_file_section_covers_what_it_saw_and_no_credential_it_did_not(
    paths: list[str], credentials: list[str], max_entries: int
) -> None:
    """The HARD RULE: whatever the collapses (thresholds crossed, or forced by a full section),
    every path seen is covered, or reported as not recorded, and no credential file not itself
    seen is."""
    clock = FakeClock()
    learner = Learner(
        Profile("w"), clock=clock, max_entries=max_entries, thresholds=Thresholds(siblings=3, subdirs=2)
    )
    dropped: set[str] = set()
    for i, path in enumerate(paths):
        said = learner.observe(
            {"evt.type": "openat", "evt.time": i, "fd.name": path, "evt.arg.flags": "O_RDONLY"}
        )
        if any(s.startswith("overflow") for s in said):
            dropped.add(path)
    read = [p for p, a in learner.profile.files if a == "read"]
    for path in paths:
        assert path in dropped or covers(read, path), path
    for cred in credentials:
        if cred not in paths:
            assert not covers(read, cred), (cred, sorted(read))
    for pattern in (p for p in read if "*" in p and not p.startswith(EXCLUDE)):
        assert not any(intersects(pattern, c) for c in SYSTEM_CREDENTIALS), pattern


@given(st.lists(_path, min_size=2, max_size=40))
def test_a_path_index_collapse_covers_its_members(paths: list[str]) -> None:
    idx = PathIndex(Thresholds(siblings=2, subdirs=2))
    for p in paths:
        idx.add(generalise_path(p))
    found = idx.roomiest()
    if found is None:
        return
    pattern, members = found
    assert len(members) > 1
    for m in members:
        assert intersects(pattern, m)
        if "*" not in m:
            assert glob_match(pattern, m)


@given(
    st.lists(st.sampled_from(["/a", "/b", "/a/b", "x", "y", "*", "**", "/"]), min_size=1, max_size=5), _path
)
def test_intersection_is_sound(parts: list[str], path: str) -> None:
    """A path two patterns both match means they intersect (against a reference: the path itself)."""
    a = "".join(parts)
    for b in (path, generalise_path(path), "/**", "/*"):
        if glob_match(a, path) and glob_match(b, path):
            assert intersects(a, b), (a, b, path)


# -- the credential list --------------------------------------------------------------------------


def test_exclusions_name_the_credentials_a_pattern_could_cover() -> None:
    assert (
        not may_generalise("/etc/*") and not may_generalise("/proc/*/*") and may_generalise("/proc/*/status")
    )
    # /etc/kubernetes/x.* could be /etc/kubernetes/x.conf, a kubeconfig: the path stays exact
    assert generalise_path("/etc/kubernetes/x.12345") == "/etc/kubernetes/x.12345"
    assert generalise_path("/etc/app/x.12345") == "/etc/app/x.*"
    etc = exclusions("/etc/*")
    assert {"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "**/*.key"} <= set(etc)
    assert "/etc/sudoers.d/**" not in etc  # /etc/* covers no file below /etc/sudoers.d
    assert "/var/run/secrets/**" not in etc
    # only the credential directories a component of any name could be
    assert exclusions("/proc/*/status") == ("**/.ssh/**", "**/.azure/**")
    assert exclusions("/etc/hosts") == ()
    assert exclusions_of("/etc/*", ["/etc/shadow", "/var/run/secrets/**", "**/*.key"]) == [
        "/etc/shadow",
        "**/*.key",
    ]


def test_covers_exact_first_then_patterns_without_exclusions() -> None:
    entries = ["/etc/*", EXCLUDE + "/etc/shadow", EXCLUDE + "**/*.key", "/etc/ssl/x.key"]
    assert covers(entries, "/etc/hosts")
    assert not covers(entries, "/etc/shadow")
    assert not covers(entries, "/etc/y.key")
    assert covers(entries, "/etc/ssl/x.key")  # seen itself
    assert not covers(entries, "/etc/ssl/z")


def _rule_pack_list(name: str) -> list[str]:
    doc = yaml.safe_load(BUILTIN_RULES.read_text())
    for item in doc:
        if isinstance(item, dict) and item.get("list") == name:
            return [str(x) for x in item["items"]]
    raise AssertionError(f"no list {name} in {BUILTIN_RULES}")


def test_the_rule_packs_credential_files_are_in_the_one_list() -> None:
    for path in _rule_pack_list("stk_password_files"):
        assert is_credential(path), path
    secrets = set(_rule_pack_list("stk_account_files")) - {"/etc/passwd", "/etc/group"}
    assert secrets and all(is_credential(p) for p in secrets)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        "/etc/sudoers.d/90-cloud-init",
        "/etc/ssh/ssh_host_rsa_key",
        "/root/.ssh/authorized_keys",
        "/home/u/.ssh/id_ed25519",
        "/srv/app/id_rsa",
        "/etc/ssl/private/server.pem",
        "/srv/tls/tls.key",
        "/srv/tls/client-key.pem",
        "/etc/letsencrypt/live/x/privkey.pem",
        "/var/run/secrets/kubernetes.io/serviceaccount/token",
        "/run/secrets/db_password",
        "/root/.kube/config",
        "/etc/kubernetes/admin.conf",
        "/home/u/.aws/credentials",
        "/root/.docker/config.json",
        "/proc/1/environ",
        "/proc/self/environ",
    ],
)
def test_credentials(path: str) -> None:
    assert is_credential(path)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/etc/hosts",
        "/etc/ssh/ssh_config",
        "/etc/ssl/certs/ca-certificates.crt",
        "/proc/1/status",
    ],
)
def test_not_credentials(path: str) -> None:
    assert not is_credential(path)


def test_every_credential_pattern_is_well_formed() -> None:
    assert len(set(CREDENTIALS)) == len(CREDENTIALS)
    for p in CREDENTIALS:
        assert p.startswith(("/", "**/")), p
        re.compile(p.replace("*", "x"))


def test_path_index() -> None:
    idx = PathIndex(Thresholds(siblings=2, subdirs=2))
    for e in ("/srv/a/x", "/srv/a/y", "/srv/b/*", "/etc/shadow", EXCLUDE + "**/*.key"):
        idx.add(e)
    assert "/etc/shadow" not in idx.entries  # a credential file is never part of a pattern
    assert idx.covering("/srv/b/z") == "/srv/b/*"
    assert idx.covering("/srv/b/z.key") is None  # excluded
    assert idx.covering("/srv/a/x") is None and idx.covering("relative") is None
    assert idx.collapse_for("/srv/a/y") is None  # two entries: not more than two
    idx.add("/srv/a/w")
    assert idx.collapse_for("/srv/a/w") == ("/srv/a/*", ["/srv/a/w", "/srv/a/x", "/srv/a/y"])
    idx.add("/srv/c/d/e")
    assert idx.collapse_for("/srv/c/d/e") is None  # /srv has 3 subdirectories but is too high for **
    low = PathIndex(Thresholds(siblings=9, subdirs=2, min_depth_tree=1))
    for e in ("/srv/a/x", "/srv/b/*", "/srv/c/d/e", "/srv/top"):
        low.add(e)
    assert low.collapse_for("/srv/c/d/e") == ("/srv/**", ["/srv/a/x", "/srv/b/*", "/srv/c/d/e", "/srv/top"])


@settings(max_examples=50, deadline=None)
@given(st.lists(_path, min_size=1, max_size=30), st.lists(st.one_of(_path, _near_credentials), max_size=10))
def test_the_policy_reads_a_learned_pattern_as_the_profile_does(paths: list[str], others: list[str]) -> None:
    """The patterns a profile makes mean the same to WorkloadPolicy file rules (stockade.policy.globs),
    which the enforcers decide with."""
    lr = Learner(
        Profile("w"), clock=FakeClock(), thresholds=Thresholds(siblings=2, subdirs=2, min_depth_tree=1)
    )
    for i, p in enumerate(paths):
        lr.observe({"evt.type": "openat", "evt.time": i, "fd.name": p, "evt.arg.flags": "O_RDONLY"})
    for pattern, _access in lr.profile.files:
        if pattern.startswith(EXCLUDE) or check_path_glob(pattern) is not None or not is_pattern(pattern):
            continue
        for x in [*paths, *others]:
            assert glob_match(pattern, x) is path_match(pattern, x), (pattern, x)


_special_name = st.text(alphabet="ab.*?[]!", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_special_name, min_size=1, max_size=3), min_size=1, max_size=6))
def test_a_path_with_glob_characters_is_learned_as_itself(names: list[list[str]]) -> None:
    """A file named with ``*``, ``?`` or ``[`` is an entry that covers that file and no other: its
    glob is escaped, so the profile, and the policy made from it, read it as the path it is."""
    paths = sorted({"/srv/" + "/".join(n) for n in names})
    lr = Learner(Profile("host"), clock=FakeClock())
    for i, p in enumerate(paths):
        lr.observe({"evt.type": "openat", "evt.time": i, "fd.name": p, "evt.arg.flags": "O_RDONLY"})
    read = [p for p, a in lr.profile.files if a == "read"]
    assert not any(is_pattern(e) for e in read)  # a few names of a's and b's: nothing generalised
    policy = CompiledPolicy(generate_policy(lr.profile))
    # each path seen, and what its characters would match as wildcards ("a" for "*", "?", "[")
    others = {p.translate(str.maketrans("*?[", "aaa")) for p in paths} | {p + "x" for p in paths}
    for x in [*paths, *others]:
        seen = x in paths
        assert covers(read, x) is seen, (x, read)
        assert policy.decide_file("open", x).allowed is seen, x
